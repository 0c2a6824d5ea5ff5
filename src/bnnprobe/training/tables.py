"""Tables and findings of the training study, from the runs' curves (torch-free).

``training_curves.csv``: one row per evaluation of every run (schedule, dim, seed, step,
estimator in use, train loss (mean batch loss since the last evaluation), validation loss,
cumulative loss evaluations, seconds, the run's switch step).
``training_final.csv``: per schedule x dim, the final and the best validation loss with mean,
std, n and Student-t 95% CI over seeds, the loss evaluations spent and the mean switch step.
Findings compare each switch ``A>B`` with ``A`` alone on the same seeds (paired: the same
initialisation and batches up to the switch) and state the difference with its CI either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import LARGER, SMALLER, Paired, ci95_halfwidth, paired, paired_difference

CURVES_COLUMNS = ["schedule", "dim", "seed", "step", "estimator", "train_loss", "val_loss", "cumulative_loss_evals",
                  "seconds", "switch_step"]


def curves_table(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    curves = pd.concat([f for f in frames if len(f)], ignore_index=True)[CURVES_COLUMNS]
    key = ["schedule", "dim", "seed", "step"]
    if curves.duplicated(key).any():
        raise ValueError(f"duplicate {key} rows in the training curves")
    return curves.sort_values(key, kind="stable").reset_index(drop=True)


def per_run(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per run: final and best validation loss, loss evaluations spent, switch step."""
    runs = curves.sort_values("step").groupby(["schedule", "dim", "seed"], sort=True)
    return pd.DataFrame({
        "final_val_loss": runs["val_loss"].last(),
        "best_val_loss": runs["val_loss"].min(),
        "loss_evals": runs["cumulative_loss_evals"].last(),
        "steps": runs["step"].last(),
        "switch_step": runs["switch_step"].first(),
    }).reset_index()


def _stats(values: pd.core.groupby.SeriesGroupBy, name: str) -> pd.DataFrame:
    out = values.agg(n="count", mean="mean", std="std")
    half = ci95_halfwidth(out["std"] / np.sqrt(out["n"]), out["n"])
    return pd.DataFrame({f"{name}_mean": out["mean"], f"{name}_std": out["std"],
                         f"{name}_ci95_low": out["mean"] - half, f"{name}_ci95_high": out["mean"] + half,
                         "n": out["n"]})


def final_table(curves: pd.DataFrame) -> pd.DataFrame:
    runs = per_run(curves)
    grouped = runs.groupby(["schedule", "dim"], sort=True)
    final = _stats(grouped["final_val_loss"], "final_val_loss")
    best = _stats(grouped["best_val_loss"], "best_val_loss").drop(columns="n")
    out = final.join(best)
    out["loss_evals_mean"] = grouped["loss_evals"].mean()
    out["switch_step_mean"] = grouped["switch_step"].mean()
    return out.reset_index()


def switch_comparisons(curves: pd.DataFrame) -> pd.DataFrame:
    """Each switch A>B against A alone at each dim: the paired difference of final validation losses
    (switch minus A alone, over the seeds both have), its mean and 95% CI."""
    runs = per_run(curves).set_index(["schedule", "dim", "seed"])["final_val_loss"]
    rows = []
    schedules = sorted(set(runs.index.get_level_values("schedule")))
    for schedule in schedules:
        if ">" not in schedule or schedule.split(">")[0] not in schedules:
            continue
        first = schedule.split(">")[0]
        for dim in sorted(set(runs.loc[schedule].index.get_level_values("dim"))):
            a, b = runs.loc[(first, dim)], runs.loc[(schedule, dim)]
            seeds = sorted(set(a.index) & set(b.index))
            d = paired([b[s] - a[s] for s in seeds])
            n = d.n
            rows.append({"schedule": schedule, "alone": first, "dim": dim, "n": n,
                         "final_val_loss_alone": float(a[seeds].mean()) if n else math.nan,
                         "final_val_loss_switch": float(b[seeds].mean()) if n else math.nan,
                         "difference_mean": d.mean, "difference_ci95_low": d.low,
                         "difference_ci95_high": d.high})
    return pd.DataFrame(rows, columns=["schedule", "alone", "dim", "n", "final_val_loss_alone", "final_val_loss_switch",
                                       "difference_mean", "difference_ci95_low", "difference_ci95_high"])


def _verdict(row) -> str:
    """The verdict of a row's difference (:mod:`bnnprobe.analysis.stats`), bold where the CI excludes 0."""
    word = Paired(row.difference_mean, row.difference_ci95_low, row.difference_ci95_high, row.n, 0, 0).verdict
    return f"**{word}**" if word in (LARGER, SMALLER) else word


def findings_markdown(comparisons: pd.DataFrame, final: pd.DataFrame) -> str:
    """The training study's findings, generated from the tables: true for any config."""
    lines = ["# Findings: training with a switch from an STE to another estimator", "",
             "Final validation loss of each switch `A>B` against `A` alone, paired over seeds (same initialisation "
             "and batches up to the switch); difference = switch - alone, mean and Student-t 95% CI.", ""]
    if comparisons.empty:
        lines.append("No schedule of this config switches from an estimator that also runs alone: nothing to compare.")
        return "\n".join(lines) + "\n"
    lines += ["| switch | dim | seeds | final loss alone | final loss with switch | difference (95% CI) | "
              "the switch's final loss is |", "|---|---|---|---|---|---|---|"]
    for row in comparisons.itertuples():
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.n} | {row.final_val_loss_alone:.4g} | "
                     f"{row.final_val_loss_switch:.4g} | {row.difference_mean:+.3g} "
                     f"[{row.difference_ci95_low:+.3g}, {row.difference_ci95_high:+.3g}] | {_verdict(row)} |")
    lower = comparisons[comparisons.difference_ci95_high < 0]
    higher = comparisons[comparisons.difference_ci95_low > 0]
    lines += ["", f"Of {len(comparisons)} (switch, dim) comparisons, the switch lowered the final validation loss "
              f"in {len(lower)} and raised it in {len(higher)} (95% CIs excluding 0); the rest are not clearly "
              "different at this number of seeds."]
    switched = final.dropna(subset=["switch_step_mean"])
    switched = switched[switched.schedule.str.contains(">")]
    if len(switched):
        lines.append(f"Switch steps (mean over seeds) ranged from {switched.switch_step_mean.min():.0f} to "
                     f"{switched.switch_step_mean.max():.0f}.")
    return "\n".join(lines) + "\n"


def init_phase_rows(init_sweeps: Iterable[pd.DataFrame], schedules: Iterable[str], seeds: Iterable[int]) -> list:
    """The MLP probe's sweep rows (steps of all coordinates) as phase ``init`` (step 0) of each probed
    schedule: every run starts from the probe's initialisation, so nothing is computed twice."""
    seeds = set(seeds)
    frames = [frame[frame["seed"].isin(seeds) & (frame["step_layer"].astype(str) == "all")] for frame in init_sweeps]
    return [frame.assign(schedule=schedule, phase="init", step=0) for schedule in schedules for frame in frames
            if len(frame)]


def cosine_trend(phase_runs: pd.DataFrame) -> pd.DataFrame:
    """Per probed schedule and dim: its own STE's cosine to CDG at the end minus at init, paired over
    (seed, batch) (the same batches at both phases), mean and 95% CI."""
    rows = []
    per_gradient = phase_runs.drop_duplicates(["schedule", "estimator", "phase", "dim", "seed", "batch"])
    for (schedule, dim), frame in per_gradient.groupby(["schedule", "dim"], sort=True):
        own = frame[frame["estimator"] == schedule]
        cos = own.set_index(["phase", "seed", "batch"])["cos_to_cdg"]
        if "init" not in cos.index.get_level_values(0) or "end" not in cos.index.get_level_values(0):
            continue
        init, end = cos.loc["init"], cos.loc["end"]
        pairs = init.index.intersection(end.index)
        d = paired_difference(end, init)
        rows.append({"schedule": schedule, "dim": dim, "n": d.n, "cos_init": float(init.loc[pairs].mean()),
                     "cos_end": float(end.loc[pairs].mean()), "difference_mean": d.mean,
                     "difference_ci95_low": d.low, "difference_ci95_high": d.high})
    return pd.DataFrame(rows)


def ste_rankings(phase_best: pd.DataFrame) -> pd.DataFrame:
    """Per probed schedule and dim: the STE variants ranked by best one-step loss decrease at init and
    at the end, and Kendall's tau between the two rankings."""
    from scipy import stats

    rows = []
    stes = phase_best[phase_best["estimator"].str.startswith("ste-")]
    for (schedule, dim), frame in stes.groupby(["schedule", "dim"], sort=True):
        by_phase = frame.pivot_table(index="estimator", columns="phase", values="loss_decrease_mean")
        if not {"init", "end"} <= set(by_phase.columns) or len(by_phase) < 2:
            continue
        init = by_phase["init"].sort_values(ascending=False)
        end = by_phase["end"].sort_values(ascending=False)
        tau = stats.kendalltau(by_phase["init"], by_phase["end"]).statistic
        rows.append({"schedule": schedule, "dim": dim, "ranking_init": " > ".join(init.index),
                     "ranking_end": " > ".join(end.index), "same_order": list(init.index) == list(end.index),
                     "kendall_tau": float(tau)})
    return pd.DataFrame(rows)


def phase_findings_markdown(trend: pd.DataFrame, rankings: pd.DataFrame) -> str:
    lines = ["# Findings: the one-step probe along STE training", ""]
    if trend.empty:
        lines.append("No STE run was probed at init and at the end: nothing to compare.")
    else:
        lines += ["Cosine of each run's own STE gradient to CDG's, at the end of training minus at initialisation, "
                  "paired over seeds x batches (the same batches at both phases), mean and Student-t 95% CI.", "",
                  "| schedule | dim | pairs | cos at init | cos at end | change (95% CI) | the cosine at the end is |",
                  "|---|---|---|---|---|---|---|"]
        for row in trend.itertuples():
            lines.append(f"| `{row.schedule}` | {row.dim} | {row.n} | {row.cos_init:.3f} | {row.cos_end:.3f} | "
                         f"{row.difference_mean:+.3f} [{row.difference_ci95_low:+.3f}, "
                         f"{row.difference_ci95_high:+.3f}] | {_verdict(row)} |")
        falls = int((trend.difference_ci95_high < 0).sum())
        rises = int((trend.difference_ci95_low > 0).sum())
        lines += ["", f"The STE's agreement with CDG fell as training proceeded at {falls} of {len(trend)} "
                  f"(schedule, dim) pairs and rose at {rises} (95% CIs excluding 0)."]
    lines.append("")
    if rankings.empty:
        lines.append("Fewer than two STE variants were probed at init and at the end: no ranking to compare.")
    else:
        lines += ["STE variants ranked by their best one-step loss decrease (best lr per variant), at "
                  "initialisation and at the end of the run:", "",
                  "| schedule | dim | at init | at the end | same order | Kendall tau |", "|---|---|---|---|---|---|"]
        for row in rankings.itertuples():
            lines.append(f"| `{row.schedule}` | {row.dim} | {row.ranking_init} | {row.ranking_end} | "
                         f"{'yes' if row.same_order else 'no'} | {row.kendall_tau:+.2f} |")
        same = int(rankings.same_order.sum())
        lines += ["", f"The ranking at the end matched the one at initialisation at {same} of {len(rankings)} "
                  "(schedule, dim) pairs."]
    return "\n".join(lines) + "\n"
