"""Learning-rate grids: tidy values and the fine grid chosen from a coarse sweep (no torch needed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def tidy_lr(lr: float) -> float:
    """Round to 6 significant digits so grids print and compare cleanly (1e-2 stays 0.01)."""
    return float(f"{lr:.6g}")


def fine_grid(coarse_rows: pd.DataFrame, mode: str, points: int, span_decades: float = 1.0,
              low: float | None = None, high: float | None = None) -> list[float]:
    """The fine lr grid for one (estimator, dim).

    ``auto``: ``points`` log-spaced lrs spanning ``span_decades`` either side of the
    coarse lr with the best mean loss decrease (over seeds and batches).
    ``fixed``: ``points`` log-spaced lrs in [low, high] (the log's scan: [1e-2, 1]).
    Values already on the coarse grid are left out: they are measured there.
    """
    if mode == "fixed":
        lo, hi = math.log10(low), math.log10(high)
    elif mode == "auto":
        means = coarse_rows.groupby("lr")["loss_decrease"].mean()
        best = float(means.idxmax())
        lo, hi = math.log10(best) - span_decades, math.log10(best) + span_decades
    elif mode == "none":
        return []
    else:
        raise ValueError(f"unknown fine grid mode {mode!r}; choose auto, fixed or none")
    coarse = coarse_rows["lr"].unique()
    grid = [tidy_lr(10**e) for e in np.linspace(lo, hi, points)]
    return [x for x in grid if not np.isclose(coarse, x, rtol=1e-6).any()]


def best_lr_edge(mean_by_lr: pd.Series) -> int:
    """+1 (-1) when the lr with the best mean loss decrease is the largest (smallest) tried, else 0.

    ``mean_by_lr`` is indexed by lr; on ties the first best in index order counts, and a best value that an
    lr inside the grid attains too is not at an edge (a decrease that is the same at every lr, e.g. exactly
    0 for a step of a binary layer that flips nothing, has its optimum inside the grid as much as anywhere).
    """
    means = mean_by_lr.dropna()
    best = float(means.idxmax())
    inside = means[(means.index > means.index.min()) & (means.index < means.index.max())]
    if (inside == means.max()).any():
        return 0
    if best == float(means.index.max()):
        return 1
    if best == float(means.index.min()):
        return -1
    return 0


def edge_directions(rows: pd.DataFrame, unit: str = "seed") -> set[int]:
    """The edges (+1 largest, -1 smallest lr tried) at which the best mean loss decrease lies: of the mean over
    every row, and (where ``rows`` have a ``unit`` column with more than one value) of the mean over every unit
    but one, for each unit left out: the choices a cross-fitted lr makes (:mod:`bnnprobe.analysis.crossfit`)."""
    directions = {best_lr_edge(rows.groupby("lr")["loss_decrease"].mean())}
    if unit in rows and rows[unit].nunique() > 1:
        per_unit = rows.groupby([unit, "lr"])["loss_decrease"].mean().unstack(unit)
        for left_out in per_unit.columns:
            directions.add(best_lr_edge(per_unit.drop(columns=left_out).mean(axis=1)))
    return directions - {0}


def extension_grid(rows: pd.DataFrame, points: int, span_decades: float = 1.0) -> list[float]:
    """More lrs beyond the edges of those tried where a best lr lies at one (:func:`edge_directions`): the
    optimum may lie beyond the grid. ``points // 2`` log-spaced lrs spanning ``span_decades`` beyond each such
    edge (the fine grid's spacing); empty where every optimum is bracketed."""
    lrs = rows["lr"]
    steps = max(points // 2, 1)
    out = []
    for direction in sorted(edge_directions(rows)):
        edge = float(lrs.max() if direction > 0 else lrs.min())
        exponents = math.log10(edge) + direction * span_decades * np.arange(1, steps + 1) / steps
        out += [tidy_lr(10**e) for e in exponents]
    return out
