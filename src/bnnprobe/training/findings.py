"""The training study's findings, generated from its tables (so they hold for any config) and stated either
way: whether the runs converge and how stationary they end, whether the identity STE settles less than the
clipped ones (Yin et al. 2019), whether the STE's gradient gets worse early or
late in training, whether another estimator's step still lowers the loss where the STE has converged,
whether switching estimator at convergence pays against a plain continued decay, a restart and a control,
and which schedule reaches the lowest test loss per unit cost. The unit of every CI is the seed (an
independent run); every loss compared is on the test batch, which no decision was made on.
"""

from __future__ import annotations

import math

import pandas as pd

from ..analysis.stats import paired, paired_difference, verdict
from .tables import CHANGES, edge_lrs, verdict_cell


def _fmt(value, digits=3) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}g}"


def _pct(value) -> str:
    return f"{100 * value:+.2g}%" if isinstance(value, float) and math.isfinite(value) else "-"


def _ci(row, prefix="difference") -> str:
    mean, low, high = row[f"{prefix}_mean"], row[f"{prefix}_ci95_low"], row[f"{prefix}_ci95_high"]
    return f"{mean:+.3g} [{low:+.3g}, {high:+.3g}]" if math.isfinite(mean) else "-"


def _setup(runs: pd.DataFrame, tuning: pd.DataFrame | None, rel_tol: float, precision: pd.DataFrame | None,
           final: pd.DataFrame, protocol: dict) -> list[str]:
    seeds = runs.groupby(["schedule", "dim"])["seed"].nunique()
    lines = ["## Setup", "",
             f"{runs['schedule'].nunique()} schedules x dims {sorted(int(d) for d in runs['dim'].unique())}, "
             f"{int(seeds.min())}-{int(seeds.max())} seeds each (the seed is the unit of every CI below). "
             "Each run starts from the MLP probe's initialisation of its (dim, seed). "
             f"Protocol: the lr is cut by {protocol['factor']:g} at each plateau of the validation loss "
             f"(averaged over {protocol['smooth']} evaluations, patience {protocol['patience']}, tolerance "
             f"{rel_tol:.2%}), up to {protocol['reductions']} times; the plateau after the last cut is the run's "
             "convergence; a switch's second estimator starts at the first one's convergence with its own lr "
             "(tuned there) and the same decay budget; the first estimator alone goes on after its convergence "
             "with that budget too (the control 'continued'). Losses compared are test-batch means over the last "
             f"{protocol['smooth']} evaluations.", ""]
    if tuning is not None and len(tuning):
        chosen = tuning[tuning["chosen"]].drop_duplicates(["estimator", "after", "dim"])
        dims = sorted(chosen["dim"].unique())
        lines += ["Learning rates, tuned per (estimator, dim) on the tuning seeds "
                  f"{sorted(int(s) for s in tuning['seed'].unique())} (disjoint from the reported ones) by the "
                  f"validation loss after {int(tuning['steps'].iloc[0])} steps at a constant lr, from the "
                  "initialisation or (`after A`) from A's converged weights; `edge`: still at the edge of the grid "
                  "after its extensions (comparisons that use it are undetermined):", "",
                  "| estimator | tuned | optimiser | " + " | ".join(f"dim {d}" for d in dims) + " |",
                  "|---|---|---|" + "---|" * len(dims)]
        for (name, after), frame in chosen.groupby(["estimator", "after"], sort=True):
            cells = {int(r.dim): f"{r.lr:g}{' (edge)' if r.at_edge else ''}" for r in frame.itertuples()}
            lines.append(f"| {name} | {'after ' + after if after else 'from init'} | {frame['optimizer'].iloc[0]} | "
                         + " | ".join(cells.get(int(d), "-") for d in dims) + " |")
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
        seed_spread = (float(spread["test_loss_end_std"].iloc[0] / spread["test_loss_end_mean"].iloc[0])
                       if len(spread) else math.nan)
        parts.append(f"{row.schedule} {row.final_rel_diff:.2%} (seeds: {_fmt(100 * seed_spread, 2)}%)")
    return ("Precision: the same run trained in float32 and in float64 for the same steps at the same lr ends with "
            "validation losses that differ by (relative, at dim " + ", ".join(
                str(d) for d in sorted(precision["dim"].unique())) + "): " + "; ".join(parts)
            + ". The relative std of the final loss over seeds is in brackets: a precision difference well below "
            "it is noise the seed-level CIs already carry.")


def _convergence(runs: pd.DataFrame) -> list[str]:
    singles = runs[~runs["schedule"].str.contains(">")]
    lines = ["## Do the runs converge, and how stationary are they there?", "",
             "Converged: the validation loss plateaued after the last lr cut (a run that reached the step cap first "
             "has not, and is left out of every comparison 'at convergence'). Expected gradient: the norm of the "
             "mean of the run's own estimate over fresh batches at its converged weights, relative to the same at "
             "its initialisation (its noise floor, the norm of that mean's standard error, relative likewise, in "
             "brackets): near 0, the weights are a stationary point of the estimator. Continued: the first "
             "estimator of a switch alone, after its convergence, with the switch's decay budget: how much the "
             "test loss still fell (CI over seeds).", "",
             "| schedule | dim | converged / runs | median converged step | lr cuts | expected gradient (noise) | "
             "test loss at convergence | continued: change after it |", "|---|---|---|---|---|---|---|---|"]
    for (schedule, dim), frame in singles.groupby(["schedule", "dim"], sort=True):
        conv = frame[frame["converged"]]
        ratio = conv["expected_grad_ratio"].median() if len(conv) else math.nan
        noise = conv["expected_grad_sem_ratio"].median() if len(conv) else math.nan
        change = frame["improvement_after_convergence"].dropna()
        cont = paired(-change.to_numpy()) if len(change) and (frame["end_step"] > frame["converged_step"]).any() \
            else None
        cont_text = "-" if cont is None or not cont.n else \
            f"{cont.mean:+.2%} [{cont.low:+.2%}, {cont.high:+.2%}] ({cont.verdict})"
        lines.append(f"| `{schedule}` | {dim} | {len(conv)}/{len(frame)} | {_fmt(conv['converged_step'].median())} | "
                     f"{_fmt(conv['decays'].median())} | {_fmt(ratio, 2)} ({_fmt(noise, 2)}) | "
                     f"{_fmt(conv['test_loss_converged'].mean(), 4)} | {cont_text} |")
    lines.append("")
    return lines


IDENTITY = "ste-identity"


def _identity_ste(runs: pd.DataFrame, tuning: pd.DataFrame | None) -> list[str]:
    """The identity STE against each clipped STE trained alone: is it the one that does not settle?"""
    singles = runs[~runs["schedule"].str.contains(">")]
    clipped = sorted(s for s in singles["schedule"].unique() if s.startswith("ste-") and s != IDENTITY)
    lines = ["## Is the identity STE unstable near its minimum where the clipped STEs are not?", ""]
    if IDENTITY not in set(singles["schedule"]) or not clipped:
        return lines + [f"Needs `{IDENTITY}` and a clipped STE among the single schedules: not in this config.", ""]
    edges = {(name, dim) for name, after, dim in edge_lrs(tuning) if not after}  # lrs tuned from the init
    lines += [f"`{IDENTITY}` (the surrogate's derivative is 1 everywhere) against each clipped STE (its derivative "
              "vanishes for large pre-activations), each trained alone at its own tuned lr: the share of runs "
              "that converged, and over the seeds where both converged, paired, the difference (identity - "
              "clipped) of the expected gradient at convergence (relative to its init norm: larger means further "
              "from a stationary point of its own estimator) and of the test loss there. The identity STE is "
              "'less stationary' where the first CI lies above 0.", "",
              "| clipped STE | dim | converged (identity / clipped) | expected gradient: identity - clipped "
              "(95% CI) | the identity's is | test loss: identity - clipped (95% CI) | the identity's is |",
              "|---|---|---|---|---|---|---|"]
    verdicts = []
    for other in clipped:
        for dim in sorted(int(d) for d in singles["dim"].unique()):
            ident = singles[(singles["schedule"] == IDENTITY) & (singles["dim"] == dim)].set_index("seed")
            clip = singles[(singles["schedule"] == other) & (singles["dim"] == dim)].set_index("seed")
            if ident.empty or clip.empty:
                continue
            both = ident.index[ident["converged"].astype(bool)].intersection(clip.index[clip["converged"].astype(bool)])
            undetermined = [name for name in (IDENTITY, other) if (name, dim) in edges]
            cells = []
            for column in ("expected_grad_ratio", "test_loss_converged"):
                p = paired_difference(ident.loc[both, column], clip.loc[both, column])
                word = verdict(p, undetermined)
                cells += [f"{p.mean:+.3g} [{p.low:+.3g}, {p.high:+.3g}] (n={p.n})" if p.n else "-", word]
            verdicts.append((other, dim, cells[1]))
            lines.append(f"| `{other}` | {dim} | {int(ident['converged'].sum())}/{len(ident)} / "
                         f"{int(clip['converged'].sum())}/{len(clip)} | " + " | ".join(cells) + " |")
    lines.append("")
    for word, phrase in (("larger", "larger than the clipped STE's"), ("smaller", "smaller than the clipped STE's"),
                         ("indistinguishable", "indistinguishable from the clipped STE's")):
        hits = [f"`{o}` at dim {d}" for o, d, w in verdicts if w == word]
        if hits:
            lines.append(f"- The identity STE's expected gradient at convergence is {phrase}: " + ", ".join(hits) + ".")
    undecided = [f"`{o}` at dim {d}" for o, d, w in verdicts if w.startswith("undetermined")]
    if undecided:
        lines.append("- Undetermined (a tuned lr at its grid's edge): " + ", ".join(undecided) + ".")
    lines.append("")
    return lines


def _gradient_quality(trend: pd.DataFrame) -> list[str]:
    lines = ["## Does the STE's gradient get worse along training: early, or late?", ""]
    if trend.empty:
        return lines + ["No single-STE run was probed along training: nothing to compare.", ""]
    (e0, e1), (l0, l1) = CHANGES["early"], CHANGES["late"]
    lines += ["Each run's own STE gradient, probed on the MLP probe's batches at fractions of the run's own "
              "converged step: its cosine to CDG and to the smoothed coordinate gradient, per stepped layer. The "
              f"*early* change ({e0} to {e1}: leaving the initialisation) and the *late* change ({l0} to {l1}: "
              "approaching convergence) are tested separately (paired over seeds; a seed's value is the mean "
              "over its batches); 'late in training' is answered by the late change alone.", "",
              "| schedule | dim | layer | measure | change | start | end | change (95% CI) | seeds down/up | "
              "sign test p | the cosine at the end is |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in trend.itertuples():
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.step_layer} | {row.measure} | {row.change} | "
                     f"{_fmt(row.at_start)} | {_fmt(row.at_end)} | {_ci(row._asdict())} | "
                     f"{row.seeds_lower}/{row.seeds_higher} | {_fmt(row.sign_test_p, 2)} | "
                     f"{verdict_cell(row._asdict())} |")
    for (measure, change), frame in trend.groupby(["measure", "change"], sort=True):
        counts = frame["verdict"].value_counts()
        lines += ["", f"{measure}, {change} change: smaller in {counts.get('smaller', 0)} of {len(frame)} "
                  f"(schedule, dim, layer) cells, larger in {counts.get('larger', 0)}, indistinguishable in "
                  f"{counts.get('indistinguishable', 0)}, identical in {counts.get('identical', 0)} (the output "
                  f"layer, where the STE is exact), undetermined in {counts.get('undetermined (one observation)', 0)}."]
    lines.append("")
    return lines


def _at_convergence(converged: pd.DataFrame) -> list[str]:
    lines = ["## Where the STE has converged, does another estimator's step still lower the loss?", ""]
    at = converged[(converged["phase"] == "converged") & (converged["step_layer"] == "all")]
    if at.empty:
        return lines + ["No single-STE run was probed at its convergence: nothing to compare.", ""]
    lines += ["At each STE run's converged weights, one step of each probed estimator (all layers), its lr chosen "
              "on the other seeds: its cross-fitted best loss decrease (does its CI lie above 0: its step still "
              "lowers the loss) and its difference to the run's own STE's step, paired over seeds.", "",
              "| schedule | dim | estimator | best decrease (95% CI) | its step lowers the loss | - the STE's "
              "(95% CI) | against the STE's step | gradient norm | cos to CDG |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in at.itertuples():
        r = row._asdict()
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.estimator} | {_ci(r, 'decrease')} | "
                     f"{_lowers(row.decreases)} | {_ci(r)} | {row.vs_ste or '(itself)'} | "
                     f"{_fmt(row.grad_norm_mean)} | {_fmt(row.cos_to_cdg_mean)} |")
    lines.append("")
    return lines


def _lowers(word: str) -> str:
    return {"larger": "yes", "smaller": "no: it raises it", "indistinguishable": "not distinguishable from 0",
            "identical": "no change"}.get(word, word)


def _switches(comparisons: pd.DataFrame) -> list[str]:
    lines = ["## Does switching at convergence pay?", ""]
    if comparisons.empty:
        return lines + ["No switch of this config has its first or second estimator alone, a restart or a "
                        "control among the schedules: nothing to compare.", ""]
    lines += ["Each switch against its first estimator alone continued with the same decay budget, its second "
              "estimator alone, the restart (the first estimator restarted at its convergence with the second's "
              "protocol) and the control switches, paired over seeds, on the test batch; difference = switch - "
              "other (negative: the switch is lower). `converged`: each at its own end, over the seeds where both "
              "converged; `steps`: both at the last step both reached (`at`: the median of that step over seeds); `cost` and "
              "`seconds`: the other at what the switch had spent at its end (`at`: its median).", "",
              "| switch | against | dim | axis | at | seeds | switch's loss | other's loss | difference (95% CI) | "
              "seeds lower/higher | sign test p | the switch's loss is |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in comparisons.itertuples():
        lines.append(f"| `{row.schedule}` | `{row.against}` ({row.role}) | {row.dim} | {row.axis} | "
                     f"{_fmt(row.compared_at)} | {row.n} | {_fmt(row.loss_schedule, 4)} | {_fmt(row.loss_against, 4)} | "
                     f"{_ci(row._asdict())} | {row.seeds_lower}/{row.seeds_higher} | {_fmt(row.sign_test_p, 2)} | "
                     f"{verdict_cell(row._asdict())} |")
    lines.append("")
    for (schedule, against, axis), frame in comparisons.groupby(["schedule", "against", "axis"], sort=True):
        counts = frame["verdict"].value_counts()
        undetermined = int(frame["verdict"].str.startswith("undetermined").sum())
        lines.append(f"- `{schedule}` against `{against}` ({frame['role'].iloc[0]}) at {axis}: lower in "
                     f"{counts.get('smaller', 0)} of {len(frame)} dims, higher in {counts.get('larger', 0)}, "
                     f"indistinguishable in {counts.get('indistinguishable', 0)}, identical in "
                     f"{counts.get('identical', 0)}, undetermined in {undetermined}.")
    n = int(comparisons["n"].max())
    lines += ["", f"With {n} seeds the exact sign test's smallest two-sided p is {2 / 2 ** n:.3g}"
              + (": it cannot reach 0.05 on its own; the t-interval can." if 2 / 2 ** n > 0.05 else "."), ""]
    return lines


def _leaders(leaders: pd.DataFrame) -> list[str]:
    lines = ["## Which schedule reaches the lowest loss per unit cost?", ""]
    if leaders.empty:
        return lines + ["No budget was reached by every seed of a schedule.", ""]
    lines += ["At each budget (one a decade), the schedules every seed of which spent that much, lowest first "
              "(mean over seeds of the test loss at the last evaluation within the budget; `=`: equal means, e.g. "
              "runs identical up to there):", ""]
    for (dim, axis), frame in leaders.groupby(["dim", "axis"], sort=True):
        parts = []
        for budget, at in frame.groupby("budget", sort=True):
            at = at.sort_values(["rank", "schedule"]).head(3)
            text = ""
            for i, r in enumerate(at.itertuples()):
                if i:
                    text += " = " if r.rank == previous else " < "
                text += f"`{r.schedule}` {r.test_loss_mean:.4g}"
                previous = r.rank
            parts.append(f"{budget:g}: {text}")
        lines.append(f"- dim {dim}, {axis}: " + "; ".join(parts))
    lines.append("")
    return lines


def _rankings(rankings: pd.DataFrame) -> list[str]:
    lines = ["## Does the STE ranking change along training?", ""]
    if rankings.empty:
        return lines + ["Fewer than three STE variants were probed at init and at convergence: a ranking of two "
                        "says nothing (Kendall's tau is +-1 by construction), so none is claimed.", ""]
    lines += ["Each variant ranked by its cross-fitted best one-step loss decrease (its lr chosen on the other "
              "seeds) at init and at the run's convergence, beside the order of its gradient norms: a ranking equal "
              "to the norm order, at lrs where the decrease is still near-linear, is a ranking of gradient scale, "
              "not of direction.", "",
              "| schedule | dim | variants | at init | at convergence | same order | Kendall tau (p) | norms at init | "
              "norms at convergence | near-linear |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rankings.itertuples():
        if row.undetermined:
            lines.append(f"| `{row.schedule}` | {row.dim} | {row.variants} | undetermined: the best lr of "
                         f"{row.undetermined} is at the edge of the grid | | | | {row.norm_order_init} | "
                         f"{row.norm_order_end} | {row.near_linear or '-'} |")
            continue
        lines.append(f"| `{row.schedule}` | {row.dim} | {row.variants} | {row.ranking_init} | {row.ranking_end} | "
                     f"{'yes' if row.same_order else 'no'} | {row.kendall_tau:+.2f} ({row.kendall_p:.2f}) | "
                     f"{row.norm_order_init} | {row.norm_order_end} | {row.near_linear or '-'} |")
    lines += ["", "A ranking comes from the mean over seeds of each variant's held-out best decrease at one phase; "
              "with few variants Kendall's p is large: read it as a description, not a test.", ""]
    return lines


def findings_markdown(runs, final, comparisons, leaders, trend, converged, rankings, *, protocol: dict,
                      tuning: pd.DataFrame | None = None, precision: pd.DataFrame | None = None) -> str:
    """``protocol``: factor, reductions, patience, rel_tol, smooth (the training section's)."""
    lines = ["# Findings: training with each estimator to convergence, and switching there", "",
             "Generated from `training_runs.csv`, `training_final.csv`, `training_comparisons.csv`, "
             "`training_budget_leaders.csv`, `training_lr.csv` and the probe along training; every claim is stated "
             "either way with its 95% CI over seeds.", ""]
    lines += _setup(runs, tuning, protocol["rel_tol"], precision, final, protocol)
    lines += _convergence(runs)
    lines += _identity_ste(runs, tuning)
    lines += _gradient_quality(trend)
    lines += _at_convergence(converged)
    lines += _switches(comparisons)
    lines += _leaders(leaders)
    lines += _rankings(rankings)
    return "\n".join(lines)
