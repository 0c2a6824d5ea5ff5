"""The training study's findings, generated from its tables (so they hold for any config) and stated
either way: whether STE runs reach a minimum, whether the STE's gradient gets worse on the way there,
whether switching estimator at the STE's plateau pays at equal steps, cost and time, and which
estimator reaches the lowest loss per unit cost. The unit of every CI is the seed (an independent run).
"""

from __future__ import annotations

import math

import pandas as pd

from .tables import verdict_cell


def _fmt(value, digits=3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}g}"


def _pct(value) -> str:
    return f"{100 * value:.2g}%" if isinstance(value, float) and math.isfinite(value) else "-"


def _ci(row) -> str:
    return (f"{row['difference_mean']:+.3g} [{row['difference_ci95_low']:+.3g}, {row['difference_ci95_high']:+.3g}]"
            if math.isfinite(row["difference_mean"]) else "-")


def _setup(runs: pd.DataFrame, tuning: pd.DataFrame | None, rel_tol: float, precision: pd.DataFrame | None,
           final: pd.DataFrame) -> list[str]:
    seeds = runs.groupby(["schedule", "dim"])["seed"].nunique()
    lines = ["## Setup", "",
             f"{runs['schedule'].nunique()} schedules x dims {sorted(int(d) for d in runs['dim'].unique())}, "
             f"{int(seeds.min())}-{int(seeds.max())} seeds each (the seed is the unit of every CI below). "
             "Each run starts from the MLP probe's initialisation of its (dim, seed).", ""]
    if tuning is not None and len(tuning):
        chosen = tuning[tuning["chosen"]].drop_duplicates(["estimator", "dim"])
        lines += ["Learning rates, tuned per (estimator, dim) on the tuning seeds "
                  f"{sorted(int(s) for s in tuning['seed'].unique())} (disjoint from the reported ones) by the "
                  "validation loss after "
                  f"{int(tuning['steps'].iloc[0])} steps; `edge` marks a choice still at the edge of the grid after "
                  "its extensions:", "", "| estimator | optimiser | " + " | ".join(
                      f"dim {d}" for d in sorted(chosen["dim"].unique())) + " |",
                  "|---|---|" + "---|" * chosen["dim"].nunique()]
        for name, frame in chosen.groupby("estimator", sort=True):
            cells = {int(r.dim): f"{r.lr:g}{' (edge)' if r.at_edge else ''}" for r in frame.itertuples()}
            lines.append(f"| {name} | {frame['optimizer'].iloc[0]} | "
                         + " | ".join(cells.get(int(d), "-") for d in sorted(chosen["dim"].unique())) + " |")
        lines.append("")
    noise = runs["val_noise_rel"].dropna()
    if len(noise):
        lines.append(f"Validation batch: its loss differs between independent batches of its size by "
                     f"{noise.median():.2%} (relative std, median over runs; max {noise.max():.2%}), "
                     f"{'below' if noise.max() < rel_tol else 'NOT below'} the plateau tolerance {rel_tol:.2%}.")
    if precision is not None and len(precision):
        lines.append(_precision(precision, final))
    lines.append("")
    return lines


def _precision(precision: pd.DataFrame, final: pd.DataFrame) -> str:
    """float32 against float64 training of the same run, against the spread between seeds."""
    parts = []
    for row in precision.itertuples():
        spread = final[(final["schedule"] == row.schedule) & (final["dim"] == row.dim)]
        seed_spread = (float(spread["final_val_loss_std"].iloc[0] / spread["final_val_loss_mean"].iloc[0])
                       if len(spread) else math.nan)
        parts.append(f"{row.schedule} {row.final_rel_diff:.2%} (seeds: {_fmt(100 * seed_spread, 2)}%)")
    return ("Precision: the same run trained in float32 and in float64 ends with final validation losses that "
            "differ by (relative, at dim " + ", ".join(str(d) for d in sorted(precision["dim"].unique())) + "): "
            + "; ".join(parts) + ". The relative std of the final loss over seeds is in brackets: a precision "
            "difference well below it is noise the seed-level CIs already carry.")


def _plateaus(runs: pd.DataFrame, rel_tol: float, patience: int, smooth: int) -> list[str]:
    singles = runs[~runs["schedule"].str.contains(">")]
    averaged = f" (the loss averaged over {smooth} evaluations)" if smooth > 1 else ""
    lines = ["## Do the runs reach a minimum?", "",
             f"Plateau: the best validation loss{averaged} of the last {patience} evaluations is not below the best "
             f"before them by more than {rel_tol:.2%}. A plateau is a real flattening when the best loss improves by less than "
             f"{rel_tol:.2%} over the {patience} evaluations after it (measured where the run trained on: the "
             "first estimator of a switch, alone, trains to the cap; other runs stop at their plateau).", "",
             "| schedule | dim | plateaus / runs | median plateau step | slope before (per 100 steps) | "
             "slope after | real flattenings | cap hit |", "|---|---|---|---|---|---|---|---|"]
    for (schedule, dim), frame in singles.groupby(["schedule", "dim"], sort=True):
        reached = frame[frame["plateau_reached"]]
        measured = reached["improvement_after"].notna()
        real = int((reached.loc[measured, "improvement_after"] < rel_tol).sum())
        flat = f"{real}/{int(measured.sum())}" if measured.any() else "- (stopped there)"
        lines.append(f"| `{schedule}` | {dim} | {len(reached)}/{len(frame)} | {_fmt(reached['plateau_step'].median())} | "
                     f"{_pct(reached['slope_before'].median())} | {_pct(reached['slope_after'].median())} | "
                     f"{flat} | {int(frame['cap_hit'].sum())} |")
    lines.append("")
    return lines


def _gradient_quality(trend: pd.DataFrame) -> list[str]:
    lines = ["## Does the STE's gradient get worse as its run approaches the plateau?", ""]
    if trend.empty:
        return lines + ["No single-STE run was probed along training: nothing to compare.", ""]
    at = trend[trend["phase"] == "plateau"]
    lines += ["Each run's own STE gradient, probed on the MLP probe's batches at its plateau against at "
              "initialisation: the change of its cosine to CDG and to the smoothed coordinate gradient, per stepped "
              "layer (paired over seeds; a seed's value is the mean over its batches).", "",
              "| schedule | dim | layer | measure | at init | at the plateau | change (95% CI) | seeds down/up | "
              "sign test p | the cosine at the plateau is |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in at.itertuples():
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.step_layer} | {row.measure} | {_fmt(row.at_init)} | "
                     f"{_fmt(row.at_phase)} | {_ci(row._asdict())} | {row.seeds_lower}/{row.seeds_higher} | "
                     f"{_fmt(row.sign_test_p, 2)} | {verdict_cell(row._asdict())} |")
    for measure, frame in at.groupby("measure", sort=True):
        counts = frame["verdict"].value_counts()
        lines += ["", f"{measure}: at the plateau it is smaller than at initialisation in {counts.get('smaller', 0)} "
                  f"of {len(frame)} (schedule, dim, layer) cells, larger in {counts.get('larger', 0)}, "
                  f"indistinguishable in {counts.get('indistinguishable', 0)}, identical in "
                  f"{counts.get('identical', 0)} (the output layer, where the STE is exact), undetermined in "
                  f"{counts.get('undetermined (one observation)', 0)}."]
    lines.append("")
    return lines


def _switches(comparisons: pd.DataFrame) -> list[str]:
    lines = ["## Does switching at the plateau pay?", ""]
    if comparisons.empty:
        return lines + ["No switch of this config has its first or second estimator alone, or a control, among "
                        "the schedules: nothing to compare.", ""]
    lines += ["Each switch against its first estimator alone, its second estimator alone and the control switches, "
              "paired over seeds; difference = switch - other in validation loss (negative: the switch is better). "
              "`steps`: the final loss of each run (a run that stopped at its plateau keeps its last loss); `cost` "
              "and `seconds`: in each seed, the switch's best loss against the best the other reached within what "
              "the switch spent (budget: the median over seeds).", "",
              "| switch | against | dim | axis | budget | seeds | switch's loss | other's loss | difference (95% CI) | "
              "seeds lower/higher | sign test p | the switch's loss is |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in comparisons.itertuples():
        lines.append(f"| `{row.schedule}` | `{row.against}` ({row.role}) | {row.dim} | {row.axis} | "
                     f"{_fmt(row.budget)} | {row.n} | {_fmt(row.loss_schedule, 4)} | {_fmt(row.loss_against, 4)} | "
                     f"{_ci(row._asdict())} | {row.seeds_lower}/{row.seeds_higher} | {_fmt(row.sign_test_p, 2)} | "
                     f"{verdict_cell(row._asdict())} |")
    lines.append("")
    for (schedule, against, axis), frame in comparisons.groupby(["schedule", "against", "axis"], sort=True):
        counts = frame["verdict"].value_counts()
        lines.append(f"- `{schedule}` against `{against}` at equal {axis}: lower in {counts.get('smaller', 0)} of "
                     f"{len(frame)} dims, higher in {counts.get('larger', 0)}, indistinguishable in "
                     f"{len(frame) - counts.get('smaller', 0) - counts.get('larger', 0)}.")
    n = int(comparisons["n"].max())
    lines += ["", f"With {n} seeds the exact sign test's smallest two-sided p is {2 / 2 ** n:.3g}"
              + (": it cannot reach 0.05 on its own; the t-interval can." if 2 / 2 ** n > 0.05 else "."), ""]
    return lines


def _leaders(leaders: pd.DataFrame) -> list[str]:
    lines = ["## Which estimator reaches the lowest loss per unit cost?", ""]
    if leaders.empty:
        return lines + ["No budget was reached by every seed of a schedule.", ""]
    lines += ["At each budget (one a decade), the schedules every seed of which spent that much, best first "
              "(mean over seeds of the best validation loss within the budget):", ""]
    for (dim, axis), frame in leaders.groupby(["dim", "axis"], sort=True):
        parts = []
        for budget, at in frame.groupby("budget", sort=True):
            at = at.sort_values("rank")
            parts.append(f"{budget:g}: " + " < ".join(f"`{r.schedule}` {r.val_loss_mean:.4g}" for r in at.head(3).itertuples()))
        lines.append(f"- dim {dim}, {axis}: " + "; ".join(parts))
    lines.append("")
    return lines


def _rankings(rankings: pd.DataFrame) -> list[str]:
    lines = ["## Does the STE ranking change along training?", ""]
    if rankings.empty:
        return lines + ["Fewer than three STE variants were probed at init and at the end: a ranking of two says "
                        "nothing (Kendall's tau is +-1 by construction), so none is claimed.", ""]
    lines += ["| schedule | dim | variants | at init | at the end | same order | Kendall tau (p) |",
              "|---|---|---|---|---|---|---|"]
    for row in rankings.itertuples():
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.variants} | {row.ranking_init} | {row.ranking_end} | "
                     f"{'yes' if row.same_order else 'no'} | {row.kendall_tau:+.2f} ({row.kendall_p:.2f}) |")
    lines += ["", "A ranking comes from the mean best loss decrease over seeds x batches at one phase; with few "
              "variants Kendall's p is large: read it as a description, not a test.", ""]
    return lines


def findings_markdown(runs, final, comparisons, leaders, trend, rankings, *, rel_tol: float, patience: int,
                      smooth: int = 1, tuning: pd.DataFrame | None = None,
                      precision: pd.DataFrame | None = None) -> str:
    lines = ["# Findings: training with each estimator, and switching at the STE's plateau", "",
             "Generated from `training_runs.csv`, `training_final.csv`, `training_comparisons.csv`, "
             "`training_budgets.csv`, `training_lr.csv` and the probe along training; every claim is stated either "
             "way with its 95% CI over seeds.", ""]
    lines += _setup(runs, tuning, rel_tol, precision, final)
    lines += _plateaus(runs, rel_tol, patience, smooth)
    lines += _gradient_quality(trend)
    lines += _switches(comparisons)
    lines += _leaders(leaders)
    lines += _rankings(rankings)
    return "\n".join(lines)
