"""Learning rates chosen out of sample: each estimator's best lr picked on some students and scored on another.

The in-sample best lr of a group (an estimator at one sigma/eps, stepping some coordinates, at one dim or
finetune run or training phase) is the lr with the largest mean loss decrease over every seed; its decrease
is then reported by the very rows that chose it, so it is biased upwards, and unequally: an estimator
whose decrease falls off a cliff just above its optimum gains more from picking the best of a noisy grid
than one with a flat optimum. *Cross-fitting* removes that bias. The seed (one student: its batches
averaged first) is the unit; for every seed ``s``

    lr_(-s)  = argmax_lr  mean_{s' != s} D_s'(lr)        (chosen without seed s; the smallest lr on ties)
    score_s  = D_s(lr_(-s))                               (scored on seed s alone)

and the cross-fitted decrease is the mean of the scores, with a Student-t 95% CI over them (the folds'
choices share seeds, so the scores are not quite independent; each score itself is out of sample).
``winner_bias`` = in-sample best mean - cross-fitted mean. Every fold chooses among the same lrs (the
coarse grid and the fine grid placed around the best coarse lr of all seeds: the placement decides which
lrs are candidates, never which one is chosen). A fold's choice at the smallest or largest lr tried is
flagged (:func:`~bnnprobe.analysis.lrgrid.best_lr_edge`): the optimum may lie beyond the grid, and
comparisons that use it are undetermined.

``linearity`` says whether a decrease is still proportional to the lr at the chosen one:
``(D(lr*) / lr*) / (D(lr_below) / lr_below)`` with ``lr_below`` the next smaller lr tried. Near 1 (at least
:data:`NEAR_LINEAR`) the decrease is still the first-order term ``lr <g, grad L>``: estimators compared
there are compared by the scale of their gradients as much as by their direction.

Torch-free: the table jobs run it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .lrgrid import best_lr_edge
from .stats import ci95_halfwidth

UNIT = "seed"
NEAR_LINEAR = 0.9  # D(lr)/lr at the chosen lr is at least this fraction of it one grid step below
# per-seed columns of a fold (besides the group's columns and the seed)
FOLD_COLUMNS = ["seed", "chosen_lr", "chosen_lr_at_edge", "loss_decrease", "in_sample_lr", "loss_decrease_in_sample",
                "grad_norm", "cos_to_cdg", "cos_to_smoothed"]
LR_INDEPENDENT = ["grad_norm", "cos_to_cdg", "cos_to_smoothed"]  # a gradient's, the same at every lr


def seed_means(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """One row per ``by`` x lr x seed: the means over that seed's batches."""
    columns = ["loss_decrease", *[c for c in LR_INDEPENDENT if c in runs]]
    return runs.groupby([*by, "lr", UNIT], sort=True, dropna=False)[columns].mean().reset_index()


def _argmax(means: pd.Series) -> float:
    """The lr of the largest mean (the smallest such lr on ties); NaN where every mean is NaN."""
    finite = means.dropna()
    return float(finite.idxmax()) if len(finite) else math.nan


def linearity(means: pd.Series, lr: float) -> float:
    """``(D(lr) / lr) / (D(below) / below)`` for ``below`` the next smaller lr of ``means`` (indexed by lr,
    sorted); NaN at the smallest lr or where the decrease below is not positive."""
    lrs = means.index.to_numpy(dtype=float)
    at = int(np.searchsorted(lrs, lr))
    if at == 0 or at >= len(lrs) or not lrs[at] == lr:
        return math.nan
    below = lrs[at - 1]
    if not means.iloc[at - 1] > 0:
        return math.nan
    return float((means.iloc[at] / lr) / (means.iloc[at - 1] / below))


def folds(runs: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group (``by``) and seed: the lr chosen on the other seeds, its score on this one, whether it is
    at an edge of the lrs tried, the in-sample best lr and this seed's decrease there, and the gradient's
    norm and cosines (this seed's batch means). With a single seed no fold exists: no rows."""
    by = list(by)
    per_seed = seed_means(runs, by)
    rows = []
    for key, group in per_seed.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        table = group.pivot_table(index="lr", columns=UNIT, values="loss_decrease", dropna=False).sort_index()
        seeds = list(table.columns)
        if len(seeds) < 2:
            continue
        in_sample = _argmax(table.mean(axis=1))
        gradient = group.drop_duplicates(UNIT).set_index(UNIT)
        for seed in seeds:
            others = table.drop(columns=seed).mean(axis=1)
            chosen = _argmax(others)
            rows.append({**dict(zip(by, key)), "seed": seed, "chosen_lr": chosen,
                         "chosen_lr_at_edge": bool(others.notna().any() and best_lr_edge(others) != 0),
                         "loss_decrease": float(table.at[chosen, seed]) if chosen == chosen else math.nan,
                         "in_sample_lr": in_sample, "loss_decrease_in_sample": float(table.at[in_sample, seed]),
                         **{c: float(gradient.at[seed, c]) for c in LR_INDEPENDENT if c in gradient}})
    return pd.DataFrame(rows, columns=[*by, *FOLD_COLUMNS])


def fold_summary(fold_rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per group: the cross-fitted decrease (mean, std, n, 95% CI over the held-out seeds), how many folds
    chose an lr at an edge, and the lrs the folds chose."""
    by = list(by)
    grouped = fold_rows.groupby(by, sort=True, dropna=False)
    out = grouped["loss_decrease"].agg(crossfit_n="count", crossfit_loss_decrease_mean="mean",
                                       crossfit_loss_decrease_std="std")
    half = ci95_halfwidth(out["crossfit_loss_decrease_std"] / np.sqrt(out["crossfit_n"]), out["crossfit_n"])
    out["crossfit_loss_decrease_ci95_low"] = out["crossfit_loss_decrease_mean"] - half
    out["crossfit_loss_decrease_ci95_high"] = out["crossfit_loss_decrease_mean"] + half
    out["crossfit_folds_at_edge"] = grouped["chosen_lr_at_edge"].sum().astype(int)
    out["crossfit_lrs"] = grouped["chosen_lr"].agg(lambda lrs: ";".join(f"{lr:g}" for lr in sorted(set(lrs))))
    return out.reset_index()


def with_crossfit(best: pd.DataFrame, summary: pd.DataFrame, fold_rows: pd.DataFrame, by: Sequence[str]
                  ) -> pd.DataFrame:
    """``best`` (one row per group, the in-sample best lr and its summary) with the cross-fitted columns,
    ``winner_bias`` (in-sample best mean - cross-fitted mean), ``linearity`` and ``near_linear`` at the
    in-sample best lr, and ``lr_undetermined``: the in-sample best lr or a fold's choice is at an edge."""
    by = list(by)
    key = [c for c in by]
    filled = {c: -1.0 for c in ("sigma", "eps") if c in by}  # NaN keys do not merge
    merged = best.fillna(filled).merge(fold_summary(fold_rows, by).fillna(filled), on=key, how="left")
    for column, value in filled.items():
        merged[column] = merged[column].replace(value, math.nan)
    merged["crossfit_n"] = merged["crossfit_n"].fillna(0).astype(int)
    merged["crossfit_folds_at_edge"] = merged["crossfit_folds_at_edge"].fillna(0).astype(int)
    merged["winner_bias"] = merged["loss_decrease_mean"] - merged["crossfit_loss_decrease_mean"]
    ratios = []
    for _, row in merged.iterrows():
        mask = np.ones(len(summary), dtype=bool)
        for column in key:
            values = summary[column]
            mask &= values.isna().to_numpy() if pd.isna(row[column]) else (values == row[column]).to_numpy()
        means = summary[mask].set_index("lr")["loss_decrease_mean"].sort_index()
        ratios.append(linearity(means, float(row["best_lr"])))
    merged["linearity"] = ratios
    merged["near_linear"] = merged["linearity"] >= NEAR_LINEAR
    merged["lr_undetermined"] = merged["best_lr_at_edge"].astype(bool) | (merged["crossfit_folds_at_edge"] > 0)
    return merged
