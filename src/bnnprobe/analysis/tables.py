"""Tidy tables of a probe: every run, summaries with error bars, best lr per method (any probe's key)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..io import remake_advice
from .crossfit import folds, with_crossfit
from .lrgrid import best_lr_edge
from .stats import ci95_halfwidth


def load_table(path) -> pd.DataFrame:
    """A probe table or sweep from CSV; ``step_layer`` ("all", "1", ...) stays text. An unreadable file
    is named."""
    try:
        return pd.read_csv(path, dtype={"step_layer": str})
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise ValueError(f"cannot read the table {path}: {error}; {remake_advice(path)}") from None


def runs_table(frames: Iterable[pd.DataFrame], key: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """All sweep rows, one per ``key`` (estimator, dim, seed, batch, lr for the MLP), in a stable order."""
    # header-only frames (an empty fine grid) would turn every numeric column into objects
    frames = [frame for frame in frames if len(frame)]
    runs = pd.concat(frames, ignore_index=True)[list(columns)]
    duplicated = runs.duplicated(list(key))
    if duplicated.any():
        raise ValueError(f"{int(duplicated.sum())} duplicate {tuple(key)} rows, e.g.\n{runs[duplicated].head()}")
    return runs.sort_values(list(key), kind="stable").reset_index(drop=True)


def unit_means(runs: pd.DataFrame, by: Sequence[str], unit: Sequence[str]) -> pd.DataFrame:
    """One row per ``by`` x lr x ``unit``: the mean of that unit's rows (its batches)."""
    grouped = runs.groupby([*by, "lr", *unit], sort=True, dropna=False)
    numeric = ["loss_before", "loss_after", "loss_decrease", "grad_norm", "cos_to_cdg", "cos_to_smoothed", "seconds"]
    out = grouped[[c for c in numeric if c in runs]].mean()
    out["smoothed_sigma"] = grouped["smoothed_sigma"].first()
    out["n_loss_evals"] = grouped["n_loss_evals"].max()
    out["grid"] = grouped["grid"].first()
    return out.reset_index()


def summary_table(runs: pd.DataFrame, by: Sequence[str], unit: Sequence[str] = ()) -> pd.DataFrame:
    """Mean, std, sem, n and Student-t 95% CI of the loss decrease per ``by`` x lr (estimator x dim x lr).

    The observations are the independent units: each (seed, batch) row where ``unit`` is empty, else each
    ``unit`` (a seed) with its rows averaged first; ``n`` counts them and ``ci_unit`` names them. std is the
    sample standard deviation (ddof = 1).
    """
    if unit:
        runs = unit_means(runs, by, unit)
    # dropna=False: an estimator without sigma or eps (an STE) has NaN there and is still a group
    grouped = runs.groupby([*by, "lr"], sort=True, dropna=False)
    out = grouped["loss_decrease"].agg(n="count", loss_decrease_mean="mean", loss_decrease_std="std")
    out["loss_decrease_sem"] = out["loss_decrease_std"] / np.sqrt(out["n"])
    half = ci95_halfwidth(out["loss_decrease_sem"], out["n"])
    out["loss_decrease_ci95_low"] = out["loss_decrease_mean"] - half
    out["loss_decrease_ci95_high"] = out["loss_decrease_mean"] + half
    out["loss_before_mean"] = grouped["loss_before"].mean()
    out["cos_to_cdg_mean"] = grouped["cos_to_cdg"].mean()
    out["cos_to_cdg_std"] = grouped["cos_to_cdg"].std()
    out["cos_to_smoothed_mean"] = grouped["cos_to_smoothed"].mean()
    out["cos_to_smoothed_std"] = grouped["cos_to_smoothed"].std()
    out["smoothed_sigma"] = grouped["smoothed_sigma"].first()
    out["grad_norm_mean"] = grouped["grad_norm"].mean()
    out["seconds_mean"] = grouped["seconds"].mean()
    out["n_loss_evals"] = grouped["n_loss_evals"].max()
    out["grid"] = grouped["grid"].first()
    out["ci_unit"] = " x ".join(unit) + " (its batches averaged)" if unit else "seed x batch"
    return out.reset_index()


def best_table(summary: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Per ``by`` (estimator x dim), the lr with the largest mean loss decrease (first one on ties).

    ``best_lr_at_edge`` flags a best lr that is the smallest or largest lr tried: the
    optimum may then lie outside the grid and the best decrease is a lower bound.
    """
    grouped = summary.groupby(list(by), sort=True, dropna=False)
    best = summary.loc[grouped["loss_decrease_mean"].idxmax()].rename(columns={"lr": "best_lr"})
    best = best.reset_index(drop=True)
    best["n_lrs_tried"] = grouped.size().to_numpy()
    best["best_lr_at_edge"] = [best_lr_edge(group.set_index("lr")["loss_decrease_mean"]) != 0
                               for _, group in grouped]
    return best


def mark_reference_settings(table: pd.DataFrame, reference_values: dict[str, float]) -> pd.DataFrame:
    """Add ``reference_setting``: True where the row's estimator runs at the reference value of its knob
    (``reference_values``: estimator -> its first sigma or eps; an estimator without a knob always is).
    The main figures and the other studies use these rows; the sigma/eps figures use all."""
    knob = table["sigma"].where(table["sigma"].notna(), table["eps"])
    reference = table["estimator"].map(reference_values)
    table["reference_setting"] = reference.isna() | np.isclose(knob, reference, rtol=1e-9, atol=0)
    return table


def main_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the main figures: every estimator at its reference sigma/eps, stepping all coordinates."""
    return table[table["reference_setting"].astype(bool) & (table["step_layer"].astype(str) == "all")]


def probe_tables(sweeps: Iterable[pd.DataFrame], columns, reference_values: dict[str, float] | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(runs, summary, best, crossfit) of any probe from its sweep rows; ``columns`` is its
    :class:`bnnprobe.probes.ProbeColumns`; ``reference_values`` see :func:`mark_reference_settings`.

    ``best`` has each group's in-sample best lr and, beside it, the lr chosen out of sample
    (:mod:`bnnprobe.analysis.crossfit`); ``crossfit`` has one row per group and held-out seed."""
    by = columns.summary_by
    runs = runs_table(sweeps, key=columns.row_key, columns=columns.run_columns)
    summary = summary_table(runs, by=by, unit=columns.ci_unit)
    fold_rows = folds(runs, by)
    best = with_crossfit(best_table(summary, by=by), summary, fold_rows, by)
    return tuple(mark_reference_settings(t, reference_values or {}) for t in (runs, summary, best, fold_rows))
