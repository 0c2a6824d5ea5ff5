"""Tables of the training study, from the runs' curves (torch-free).

The unit of every comparison here is the independent run: a seed. Every loss compared is measured on the
fixed *test* batch (never on the validation batch that decided the run's decays, convergence and switch),
as the mean over the averaging window (``smooth`` evaluations) ending at the step compared: not the
best-so-far, which would favour the noisier run. Schedules are compared by paired differences over the
seeds both ran (the same initialisation and, up to a switch, the same batches), with a Student-t 95% CI
and an exact sign test (:mod:`bnnprobe.analysis.stats`); a comparison that involves an lr chosen at the
edge of its tuning grid is undetermined.

* ``training_curves.csv``: every evaluation of every run (:data:`CURVES_COLUMNS`).
* ``training_runs.csv``: one row per run: its lrs, decays, convergence (or cap hit), switch, the test loss
  at its convergence and at its end, how far from stationary it ended (``expected_grad_ratio``), its cost.
* ``training_final.csv``: per schedule and dim: the test loss at the end over seeds (mean, std, 95% CI),
  convergences, steps, cost.
* ``training_budgets.csv``: per run, the test loss (window mean) at the last evaluation within each budget
  of cost and of wall time on a log grid; ``training_budget_leaders.csv``: per budget (one a decade), the
  schedules ranked by it (equal means share a rank).
* ``training_comparisons.csv``: each switch against its first estimator alone and continued with the same
  decay budget, its second estimator alone, the restart ``A>A`` and the control switches: at convergence
  (where both converged), at a step both reached, at equal cost and at equal wall time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import LARGER, SMALLER, Paired, ci95_halfwidth, paired, verdict
from .columns import CURVE_COLUMNS, RUN_COLUMNS

RUN = ["schedule", "dim", "seed"]
CURVES_COLUMNS = [*RUN, *CURVE_COLUMNS, *[c for c in RUN_COLUMNS if c not in RUN]]
# the cost axes of the comparisons: the column of the curves and how the tables name it
AXES = {"cost": "cumulative_cost", "seconds": "seconds"}


def curves_table(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    curves = pd.concat([f for f in frames if len(f)], ignore_index=True)[CURVES_COLUMNS]
    key = [*RUN, "step"]
    if curves.duplicated(key).any():
        raise ValueError(f"duplicate {key} rows in the training curves")
    return curves.sort_values(key, kind="stable").reset_index(drop=True)


def window_mean(run: pd.DataFrame, index: int, smooth: int, column: str = "test_loss") -> float:
    """The mean of ``column`` over the ``smooth`` evaluations of ``run`` (sorted by step) ending at row
    ``index`` (fewer at the start of the run)."""
    values = run[column].to_numpy()
    return float(values[max(0, index - smooth + 1):index + 1].mean())


def at_step(run: pd.DataFrame, step: float, smooth: int, column: str = "test_loss") -> float:
    """:func:`window_mean` at the last evaluation at or before ``step``."""
    steps = run["step"].to_numpy()
    index = int(np.searchsorted(steps, step, side="right")) - 1
    return window_mean(run, index, smooth, column) if index >= 0 else math.nan


def within(run: pd.DataFrame, column: str, budget: float, smooth: int) -> tuple[float, bool]:
    """The test loss (window mean) at the last evaluation that had spent at most ``budget`` of ``column``,
    and whether the run spent that much at all (else: its last evaluation)."""
    spent = run[column].to_numpy()
    index = int(np.searchsorted(spent, budget * (1 + 1e-12), side="right")) - 1
    return window_mean(run, max(index, 0), smooth), bool(spent[-1] >= budget * (1 - 1e-12))


def _split(curves: pd.DataFrame) -> dict:
    return {key: run.sort_values("step").reset_index(drop=True) for key, run in curves.groupby(RUN, sort=True)}


def runs_table(curves: pd.DataFrame, smooth: int = 1) -> pd.DataFrame:
    """One row per run (see the module docstring)."""
    rows = []
    for (schedule, dim, seed), run in _split(curves).items():
        first = run.iloc[0]
        switches = ">" in schedule
        converged = first["then_converged_step"] if switches else first["converged_step"]
        row = {**{c: first[c] for c in RUN_COLUMNS}, "schedule": schedule, "dim": dim, "seed": seed,
               "decays": 0 if pd.isna(first["decay_steps"]) or first["decay_steps"] == "" else
               len(str(first["decay_steps"]).split(";")),
               "converged": bool(pd.notna(converged)), "cap_hit": not bool(first["finished"]),
               "test_loss_converged": at_step(run, first["converged_step"], smooth)
               if pd.notna(first["converged_step"]) else math.nan,
               "test_loss_end": window_mean(run, len(run) - 1, smooth),
               "val_loss_end": window_mean(run, len(run) - 1, smooth, "val_loss"),
               "loss_evals": float(run["cumulative_loss_evals"].iloc[-1]),
               "cost": float(run["cumulative_cost"].iloc[-1]), "seconds": float(run["seconds"].iloc[-1])}
        # what the extra decay budget after convergence bought (the continued first estimator of a switch)
        row["improvement_after_convergence"] = ((row["test_loss_converged"] - row["test_loss_end"])
                                                / row["test_loss_converged"]) if not switches else math.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _stats(values, name: str) -> pd.DataFrame:
    out = values.agg(n="count", mean="mean", std="std")
    half = ci95_halfwidth(out["std"] / np.sqrt(out["n"]), out["n"])
    return pd.DataFrame({f"{name}_mean": out["mean"], f"{name}_std": out["std"],
                         f"{name}_ci95_low": out["mean"] - half, f"{name}_ci95_high": out["mean"] + half,
                         "n": out["n"]})


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per schedule and dim: the test loss at the end over seeds, convergences, steps, cost."""
    grouped = runs.groupby(["schedule", "dim"], sort=True)
    out = _stats(grouped["test_loss_end"], "test_loss_end")
    out["lr"] = grouped["lr"].first()
    out["lr_then"] = grouped["lr_then"].first()
    out["converged"] = grouped["converged"].sum()
    out["cap_hits"] = grouped["cap_hit"].sum()
    out["converged_step_median"] = grouped["converged_step"].median()
    out["switch_step_median"] = grouped["switch_step"].median()
    out["end_step_median"] = grouped["end_step"].median()
    out["expected_grad_ratio_median"] = grouped["expected_grad_ratio"].median()
    out["cost_mean"] = grouped["cost"].mean()
    out["loss_evals_mean"] = grouped["loss_evals"].mean()
    out["seconds_mean"] = grouped["seconds"].mean()
    return out.reset_index()


def budget_grid(low: float, high: float, per_decade: int = 4) -> np.ndarray:
    """Log-spaced budgets from ``low`` to ``high`` (both > 0), ``per_decade`` a decade, on round exponents."""
    start, stop = math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade)
    return 10.0 ** (np.arange(start, stop + 1) / per_decade)


def budgets_table(curves: pd.DataFrame, smooth: int = 1) -> pd.DataFrame:
    """Per run, axis (cost, seconds) and budget: the test loss (window mean) at the last evaluation within
    the budget, whether the run spent that much (``reached``) and whether it had trained at all by then."""
    rows = []
    runs = _split(curves)
    for dim, at_dim in curves.groupby("dim", sort=True):
        for axis, column in AXES.items():
            positive = at_dim.loc[at_dim[column] > 0, column]
            if positive.empty:
                continue
            grid = budget_grid(float(positive.min()), float(at_dim[column].max()))
            for (schedule, seed) in at_dim.groupby(["schedule", "seed"], sort=True).groups:
                run = runs[(schedule, dim, seed)]
                for budget in grid:
                    loss, reached = within(run, column, budget, smooth)
                    trained = bool(((run["step"] > 0) & (run[column] <= budget * (1 + 1e-12))).any())
                    rows.append({"schedule": schedule, "dim": dim, "seed": seed, "axis": axis, "budget": budget,
                                 "test_loss": loss, "reached": reached, "trained": trained})
    return pd.DataFrame(rows, columns=["schedule", "dim", "seed", "axis", "budget", "test_loss", "reached", "trained"])


def budget_leaders(budgets: pd.DataFrame) -> pd.DataFrame:
    """Per dim, axis and budget (one a decade): each schedule every seed of which spent that much and had
    been evaluated after a step within it, with its mean test loss there, best first; schedules with equal
    means (runs identical up to that budget, e.g. a switch before its switch) share a rank."""
    rows = []
    decade = np.log10(budgets["budget"]) % 1
    whole = budgets[np.isclose(decade, 0) | np.isclose(decade, 1)]
    for (dim, axis, budget), frame in whole.groupby(["dim", "axis", "budget"], sort=True):
        per = frame.groupby("schedule").agg(reached=("reached", "all"), trained=("trained", "all"),
                                            n=("seed", "count"), test_loss_mean=("test_loss", "mean"))
        per = per[per["reached"] & per["trained"]].sort_values("test_loss_mean", kind="stable")
        ranks = per["test_loss_mean"].rank(method="min").astype(int)
        for schedule, row in per.iterrows():
            rows.append({"dim": dim, "axis": axis, "budget": budget, "rank": int(ranks[schedule]),
                         "schedule": schedule, "n": int(row["n"]), "test_loss_mean": row["test_loss_mean"]})
    return pd.DataFrame(rows, columns=["dim", "axis", "budget", "rank", "schedule", "n", "test_loss_mean"])


COMPARISON_COLUMNS = ["schedule", "against", "role", "dim", "axis", "compared_at", "n", "loss_schedule", "loss_against",
                      "difference_mean", "difference_ci95_low", "difference_ci95_high", "seeds_lower",
                      "seeds_higher", "sign_test_p", "verdict"]
ROLES = {"first": "first alone, continued", "second": "second alone", "restart": "restart", "control": "control"}


def edge_lrs(tuning: pd.DataFrame | None) -> set[tuple[str, str, int]]:
    """(estimator, after, dim) whose tuned lr is at the edge of its grid."""
    if tuning is None or tuning.empty:
        return set()
    edge = tuning[tuning["chosen"].astype(bool) & tuning["at_edge"].astype(bool)]
    return {(r.estimator, "" if pd.isna(r.after) else r.after, int(r.dim)) for r in edge.itertuples()}


def _lr_choices(schedule: str) -> list[tuple[str, str]]:
    """The (estimator, after) whose tuned lrs a schedule runs at."""
    parts = schedule.split(">")
    return [(parts[0], "")] + ([(parts[1], parts[0])] if len(parts) == 2 else [])


NOT_COMPARED = "not compared: no seed converged in both"


def _difference(a: dict, b: dict, seeds, meta: dict, undetermined: list[str]) -> dict:
    d = paired([a[s] - b[s] for s in seeds])
    return {**meta, "n": d.n, "loss_schedule": float(np.mean([a[s] for s in seeds])) if seeds else math.nan,
            "loss_against": float(np.mean([b[s] for s in seeds])) if seeds else math.nan,
            "difference_mean": d.mean, "difference_ci95_low": d.low, "difference_ci95_high": d.high,
            "seeds_lower": d.below, "seeds_higher": d.above, "sign_test_p": d.sign_p,
            "verdict": verdict(d, undetermined) if seeds else NOT_COMPARED}


def comparisons_table(curves: pd.DataFrame, runs: pd.DataFrame, controls: Iterable[str] = (), smooth: int = 1,
                      tuning: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each switch ``A>B`` (not a control) against A alone (continued after its convergence with the decay
    budget B gets), B alone, the restart ``A>A`` and each control switch that starts with A, paired over seeds,
    on the test batch (window means; difference = switch - other, negative favours the switch):

    * ``converged``: each at its own end, over the seeds where both converged;
    * ``steps``: both at the last step both reached (``at``: its median over seeds);
    * ``cost`` / ``seconds``: the switch at its end; the other at the last evaluation within what the switch
      spent (its end, if it spent less).
    """
    controls = set(controls)
    split = _split(curves)
    run_rows = runs.set_index(RUN)
    schedules = sorted(set(curves["schedule"]))
    edges = edge_lrs(tuning)
    rows = []
    for schedule in schedules:
        if ">" not in schedule or schedule in controls:
            continue
        first, then = schedule.split(">")
        others = [(first, ROLES["first"]), (then, ROLES["second"]), (f"{first}>{first}", ROLES["restart"])]
        others += [(c, ROLES["control"]) for c in sorted(controls) if c.split(">")[0] == first
                   and c != schedule and c != f"{first}>{first}"]
        for other, role in others:
            if other not in schedules:
                continue
            for dim in sorted(set(curves.loc[curves["schedule"] == schedule, "dim"])):
                seeds = sorted(s for (sch, d, s) in split if sch == schedule and d == dim
                               and (other, dim, s) in split)
                if not seeds:
                    continue
                undetermined = sorted({f"{n}{' after ' + a if a else ''}" for n, a in
                                       _lr_choices(schedule) + _lr_choices(other) if (n, a, dim) in edges})
                meta = {"schedule": schedule, "against": other, "role": role, "dim": dim}
                mine = {s: split[(schedule, dim, s)] for s in seeds}
                theirs = {s: split[(other, dim, s)] for s in seeds}
                both = [s for s in seeds if run_rows.loc[(schedule, dim, s), "converged"]
                        and run_rows.loc[(other, dim, s), "converged"]]
                rows.append(_difference({s: window_mean(mine[s], len(mine[s]) - 1, smooth) for s in both},
                                        {s: window_mean(theirs[s], len(theirs[s]) - 1, smooth) for s in both},
                                        both, {**meta, "axis": "converged", "compared_at": math.nan}, undetermined))
                reach = {s: min(mine[s]["step"].iloc[-1], theirs[s]["step"].iloc[-1]) for s in seeds}
                rows.append(_difference({s: at_step(mine[s], reach[s], smooth) for s in seeds},
                                        {s: at_step(theirs[s], reach[s], smooth) for s in seeds}, seeds,
                                        {**meta, "axis": "steps", "compared_at": float(np.median(list(reach.values())))},
                                        undetermined))
                for axis, column in AXES.items():
                    spent = {s: float(mine[s][column].iloc[-1]) for s in seeds}
                    rows.append(_difference({s: window_mean(mine[s], len(mine[s]) - 1, smooth) for s in seeds},
                                            {s: within(theirs[s], column, spent[s], smooth)[0] for s in seeds}, seeds,
                                            {**meta, "axis": axis, "compared_at": float(np.median(list(spent.values())))},
                                            undetermined))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


# ---- the probe along training -------------------------------------------------------------------------

TREND_COLUMNS = ["schedule", "estimator", "dim", "step_layer", "measure", "change", "n", "at_start", "at_end",
                 "difference_mean", "difference_ci95_low", "difference_ci95_high", "seeds_lower", "seeds_higher",
                 "sign_test_p", "verdict"]
# the changes the findings test: early (leaving the initialisation) and late (approaching convergence)
CHANGES = {"early": ("init", "f25"), "late": ("f50", "converged")}


def cosine_trend(phase_runs: pd.DataFrame, measures=("cos_to_cdg", "cos_to_smoothed")) -> pd.DataFrame:
    """Per probed schedule, dim, step layer and change (:data:`CHANGES`): the run's own STE's cosine to CDG and
    to the smoothed gradient at the later phase minus at the earlier one, paired over seeds (each seed's mean
    over its batches: the seed is the independent run)."""
    rows = []
    per_gradient = phase_runs.drop_duplicates(["schedule", "estimator", "phase", "step_layer", "dim", "seed",
                                               "batch"])
    for (schedule, dim, layer), frame in per_gradient.groupby(["schedule", "dim", "step_layer"], sort=True):
        own = frame[frame["estimator"] == schedule]
        for measure in measures:
            per_seed = own.groupby(["phase", "seed"])[measure].mean()
            phases = set(per_seed.index.get_level_values(0))
            for change, (start, end) in CHANGES.items():
                if not {start, end} <= phases:
                    continue
                a, b = per_seed.loc[start], per_seed.loc[end]
                seeds = sorted(set(a.dropna().index) & set(b.dropna().index))
                d = paired([b[s] - a[s] for s in seeds])
                rows.append({"schedule": schedule, "estimator": schedule, "dim": dim, "step_layer": str(layer),
                             "measure": measure, "change": change, "n": d.n,
                             "at_start": float(a[seeds].mean()) if seeds else math.nan,
                             "at_end": float(b[seeds].mean()) if seeds else math.nan,
                             "difference_mean": d.mean, "difference_ci95_low": d.low, "difference_ci95_high": d.high,
                             "seeds_lower": d.below, "seeds_higher": d.above, "sign_test_p": d.sign_p,
                             "verdict": d.verdict})
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


CONVERGED_COLUMNS = ["schedule", "dim", "step_layer", "estimator", "phase", "n", "decrease_mean", "decrease_ci95_low",
                     "decrease_ci95_high", "decreases", "ste_decrease_mean", "difference_mean",
                     "difference_ci95_low", "difference_ci95_high", "seeds_lower", "seeds_higher", "sign_test_p",
                     "vs_ste", "grad_norm_mean", "cos_to_cdg_mean"]


def converged_probe(phase_best: pd.DataFrame, phase_crossfit: pd.DataFrame, phases=("init", "converged")
                    ) -> pd.DataFrame:
    """At the STE run's convergence (and at init, for contrast): each probed estimator's cross-fitted best
    one-step decrease over seeds (``decreases``: whether its CI lies above 0, i.e. its step still lowers the
    loss) and its paired difference to the run's own STE's (``vs_ste``; undetermined where either best lr is
    at the edge of the grid)."""
    rows = []
    folds = phase_crossfit[phase_crossfit["phase"].isin(phases)]
    best = phase_best.set_index(["schedule", "phase", "dim", "step_layer", "estimator"])
    for (schedule, phase, dim, layer), frame in folds.groupby(["schedule", "phase", "dim", "step_layer"], sort=True):
        own = frame[frame["estimator"] == schedule].set_index("seed")["loss_decrease"]
        for name, group in frame.groupby("estimator", sort=True):
            scores = group.set_index("seed")["loss_decrease"]
            p = paired(scores.to_numpy())
            meta = best.loc[(schedule, phase, dim, layer, name)]
            meta = meta.iloc[0] if isinstance(meta, pd.DataFrame) else meta
            edge = [name] if bool(meta["lr_undetermined"]) else []
            decreases = verdict(p, edge)
            if name == schedule:
                diff, vs = Paired(math.nan, math.nan, math.nan, 0, 0, 0), ""
            else:
                seeds = sorted(set(scores.index) & set(own.index))
                diff = paired([scores[s] - own[s] for s in seeds])
                own_meta = best.loc[(schedule, phase, dim, layer, schedule)]
                own_meta = own_meta.iloc[0] if isinstance(own_meta, pd.DataFrame) else own_meta
                vs = verdict(diff, edge + ([schedule] if bool(own_meta["lr_undetermined"]) else []))
            rows.append({"schedule": schedule, "dim": dim, "step_layer": str(layer), "estimator": name,
                         "phase": phase, "n": p.n, "decrease_mean": p.mean, "decrease_ci95_low": p.low,
                         "decrease_ci95_high": p.high, "decreases": decreases,
                         "ste_decrease_mean": float(own.mean()) if len(own) else math.nan,
                         "difference_mean": diff.mean, "difference_ci95_low": diff.low,
                         "difference_ci95_high": diff.high, "seeds_lower": diff.below, "seeds_higher": diff.above,
                         "sign_test_p": diff.sign_p, "vs_ste": vs, "grad_norm_mean": group["grad_norm"].mean(),
                         "cos_to_cdg_mean": group["cos_to_cdg"].mean()})
    return pd.DataFrame(rows, columns=CONVERGED_COLUMNS)


RANKING_COLUMNS = ["schedule", "dim", "variants", "ranking_init", "ranking_end", "same_order", "kendall_tau",
                   "kendall_p", "norm_order_init", "norm_order_end", "near_linear", "undetermined"]


def ste_rankings(phase_best: pd.DataFrame, start: str = "init", end: str = "converged") -> pd.DataFrame:
    """Per probed schedule and dim (all layers stepped): the STE variants ranked by their cross-fitted best
    one-step loss decrease at ``start`` and at ``end``, Kendall's tau between the rankings, and beside them the
    order of their gradient norms (a ranking equal to it may be one of scale: ``near_linear`` names the
    variants whose decrease is still proportional to the lr at their best lr). ``undetermined`` names the
    variants whose best lr is at the edge of the grid at either phase: then no ranking is claimed. With
    fewer than three variants a ranking says nothing (tau is +-1 by construction): no row."""
    from scipy import stats

    rows = []
    stes = phase_best[phase_best["estimator"].str.startswith("ste-")
                      & (phase_best["step_layer"].astype(str) == "all") & phase_best["phase"].isin([start, end])]
    for (schedule, dim), frame in stes.groupby(["schedule", "dim"], sort=True):
        by_phase = frame.pivot_table(index="estimator", columns="phase", values="crossfit_loss_decrease_mean")
        if not {start, end} <= set(by_phase.columns) or len(by_phase) < 3:
            continue
        norms = frame.pivot_table(index="estimator", columns="phase", values="grad_norm_mean")
        first = by_phase[start].sort_values(ascending=False)
        last = by_phase[end].sort_values(ascending=False)
        tau = stats.kendalltau(by_phase[start], by_phase[end])

        def flagged(column):
            return ", ".join(sorted(set(frame.loc[frame[column].astype(bool), "estimator"])))

        rows.append({"schedule": schedule, "dim": dim, "variants": len(by_phase),
                     "ranking_init": " > ".join(first.index), "ranking_end": " > ".join(last.index),
                     "same_order": list(first.index) == list(last.index), "kendall_tau": float(tau.statistic),
                     "kendall_p": float(tau.pvalue),
                     "norm_order_init": " > ".join(norms[start].sort_values(ascending=False).index),
                     "norm_order_end": " > ".join(norms[end].sort_values(ascending=False).index),
                     "near_linear": flagged("near_linear"), "undetermined": flagged("lr_undetermined")})
    return pd.DataFrame(rows, columns=RANKING_COLUMNS)


def verdict_cell(row) -> str:
    """A table row's verdict, bold where the CI excludes 0."""
    word = row["verdict"]
    return f"**{word}**" if word in (LARGER, SMALLER) else word


__all__ = ["AXES", "CURVES_COLUMNS", "budget_leaders", "budgets_table", "comparisons_table",
           "converged_probe", "cosine_trend", "curves_table", "final_table", "runs_table", "ste_rankings"]
