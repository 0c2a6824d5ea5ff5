"""The statistics every findings writer uses: a paired difference, its Student-t 95% CI, an exact
sign test, and one vocabulary for the verdict.

The unit of a paired difference is the independent run: a student (seed) in the one-step probes, its
batches averaged first, and a training run (seed) in the training study. A verdict is "larger" or
"smaller" when the 95% CI excludes 0, "indistinguishable" when it contains 0 (at this number of pairs),
"identical" when every difference is exactly 0, and "undetermined" with one pair, or when a choice the
comparison rests on sits at the edge of what was tried (:func:`at_edge`): then the value compared is
only a bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

LARGER, SMALLER = "larger", "smaller"
NOT_CLEAR = "indistinguishable"
IDENTICAL = "identical"
UNDETERMINED = "undetermined (one observation)"
VERDICTS = (LARGER, SMALLER, NOT_CLEAR, IDENTICAL, UNDETERMINED)


def at_edge(names) -> str:
    """The verdict of a comparison that involves a best lr at the edge of the grid tried."""
    return f"undetermined: the best lr of {' and of '.join(names)} is at the edge of the grid"


def ci95_halfwidth(sem, n):
    """Student-t 95% half-width from standard errors and counts (NaN where n < 2)."""
    n = np.asarray(n)
    t = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)), np.nan)
    return sem * t


@dataclass(frozen=True)
class Paired:
    """The mean of n paired differences, its 95% CI, and how many were above and below 0."""

    mean: float
    low: float
    high: float
    n: int
    above: int
    below: int

    @property
    def sign_p(self) -> float:
        """Two-sided exact sign test of "as many differences above 0 as below" (zeros dropped)."""
        m = self.above + self.below
        return float(stats.binomtest(self.above, m).pvalue) if m else math.nan

    @property
    def verdict(self) -> str:
        if self.n and self.low == 0 and self.high == 0:
            return IDENTICAL  # e.g. two estimators exact on the stepped layer: the same gradient there
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return UNDETERMINED
        if self.low > 0:
            return LARGER
        if self.high < 0:
            return SMALLER
        return NOT_CLEAR


def paired(differences) -> Paired:
    """:class:`Paired` of an array of differences (NaNs dropped)."""
    diff = np.asarray(differences, dtype=float)
    diff = diff[~np.isnan(diff)]
    n = len(diff)
    mean = float(diff.mean()) if n else math.nan
    sem = float(diff.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    half = float(ci95_halfwidth(sem, n))
    return Paired(mean, mean - half, mean + half, n, int((diff > 0).sum()), int((diff < 0).sum()))


def paired_difference(a: pd.Series, b: pd.Series) -> Paired:
    """``a - b`` over their common index (the pairing unit), as :class:`Paired`."""
    pairs = a.index.intersection(b.index)
    return paired((a.loc[pairs] - b.loc[pairs]).to_numpy())


def verdict(p: Paired, undetermined: list[str] = ()) -> str:
    """``p``'s verdict, or :func:`at_edge` where ``undetermined`` names estimators whose lr is at an edge."""
    return at_edge(undetermined) if undetermined else p.verdict
