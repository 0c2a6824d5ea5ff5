"""Tables of the training study, from the runs' curves (torch-free).

The unit of every comparison here is the independent run: a seed. Each run's curve is reduced to one
number per comparison (its final loss, or the best loss it reached within a budget), and schedules
are compared by paired differences over the seeds both ran (the same initialisation and, up to a
switch, the same batches), with a Student-t 95% CI and an exact sign test
(:mod:`bnnprobe.analysis.stats`).

* ``training_curves.csv``: every evaluation of every run (:data:`CURVES_COLUMNS`).
* ``training_runs.csv``: one row per run: its lrs, its first plateau (step, the slope of the averaged
  validation loss before and after it, the improvement over the ``patience`` evaluations after it),
  whether it hit the step cap without a plateau, the switch, its final and best loss, its cost.
* ``training_final.csv``: per schedule and dim, final and best validation loss over seeds (mean, std,
  95% CI), cost, plateau and switch steps.
* ``training_budgets.csv``: per run, the best validation loss reached within each budget of cost
  (loss evaluations, a backprop pass counted as two) and of wall time, on a log grid of budgets;
  ``training_budget_leaders.csv``: per budget (one a decade), the schedules ranked by it.
* ``training_comparisons.csv``: each switch against its first estimator alone, its second estimator
  alone and the control switches, at the step cap, at equal cost and at equal wall time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..analysis.stats import LARGER, SMALLER, Paired, ci95_halfwidth, paired
from .schedule import running_mean

RUN = ["schedule", "dim", "seed"]
CURVES_COLUMNS = ["schedule", "dim", "seed", "step", "estimator", "train_loss", "val_loss", "cumulative_loss_evals",
                  "cumulative_cost", "seconds", "sigma_median", "sigma_min", "sigma_max", "switch_step",
                  "plateau_step", "then_plateau_step", "lr", "lr_then", "val_noise_rel", "machine"]
# the cost axes of the comparisons: the column of the curves and how the tables name it
AXES = {"cost": "cumulative_cost", "seconds": "seconds"}


def curves_table(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    curves = pd.concat([f for f in frames if len(f)], ignore_index=True)[CURVES_COLUMNS]
    key = [*RUN, "step"]
    if curves.duplicated(key).any():
        raise ValueError(f"duplicate {key} rows in the training curves")
    return curves.sort_values(key, kind="stable").reset_index(drop=True)


def relative_slope(steps: np.ndarray, losses: np.ndarray) -> float:
    """The validation loss's relative change per 100 steps: a least-squares line through log(loss)."""
    if len(steps) < 2 or not (losses > 0).all():
        return math.nan
    return float(np.expm1(100 * np.polyfit(steps, np.log(losses), 1)[0]))


def runs_table(curves: pd.DataFrame, patience: int, smooth: int = 1) -> pd.DataFrame:
    """One row per run (see the module docstring); ``patience`` and ``smooth`` are the plateau rule's: the
    improvement after a plateau is measured like the rule measures it, on the averaged loss."""
    rows = []
    for (schedule, dim, seed), run in curves.groupby(RUN, sort=True):
        run = run.sort_values("step")
        steps, vals = run["step"].to_numpy(), run["val_loss"].to_numpy()
        first = run.iloc[0]
        plateau = first["plateau_step"]
        row = {"schedule": schedule, "dim": dim, "seed": seed, "lr": first["lr"], "lr_then": first["lr_then"],
               "plateau_step": plateau, "plateau_reached": bool(pd.notna(plateau)),
               "slope_before": math.nan, "slope_after": math.nan, "improvement_after": math.nan,
               "switch_step": first["switch_step"], "then_plateau_step": first["then_plateau_step"],
               "final_step": int(steps[-1]), "final_val_loss": float(vals[-1]), "best_val_loss": float(vals.min()),
               "loss_evals": float(run["cumulative_loss_evals"].iloc[-1]),
               "cost": float(run["cumulative_cost"].iloc[-1]), "seconds": float(run["seconds"].iloc[-1]),
               "val_noise_rel": first["val_noise_rel"], "machine": first["machine"]}
        if pd.notna(plateau):
            at = int(np.searchsorted(steps, plateau))
            averaged = np.asarray(running_mean(list(vals), smooth))  # what the plateau rule reads
            row["slope_before"] = relative_slope(steps[max(0, at - patience):at + 1],
                                                 averaged[max(0, at - patience):at + 1])
            if at + patience < len(steps):
                row["slope_after"] = relative_slope(steps[at:at + patience + 1], averaged[at:at + patience + 1])
                best = averaged[:at + 1].min()
                row["improvement_after"] = float((best - averaged[at + 1:at + patience + 1].min()) / best)
        row["cap_hit"] = not row["plateau_reached"]
        rows.append(row)
    return pd.DataFrame(rows)


def _stats(values, name: str) -> pd.DataFrame:
    out = values.agg(n="count", mean="mean", std="std")
    half = ci95_halfwidth(out["std"] / np.sqrt(out["n"]), out["n"])
    return pd.DataFrame({f"{name}_mean": out["mean"], f"{name}_std": out["std"],
                         f"{name}_ci95_low": out["mean"] - half, f"{name}_ci95_high": out["mean"] + half,
                         "n": out["n"]})


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per schedule and dim: final and best validation loss over seeds, cost, plateaus, switch steps."""
    grouped = runs.groupby(["schedule", "dim"], sort=True)
    out = _stats(grouped["final_val_loss"], "final_val_loss")
    out = out.join(_stats(grouped["best_val_loss"], "best_val_loss").drop(columns="n"))
    out["lr"] = grouped["lr"].first()
    out["lr_then"] = grouped["lr_then"].first()
    out["plateaus_reached"] = grouped["plateau_reached"].sum()
    out["plateau_step_median"] = grouped["plateau_step"].median()
    out["switch_step_mean"] = grouped["switch_step"].mean()
    out["cost_mean"] = grouped["cost"].mean()
    out["loss_evals_mean"] = grouped["loss_evals"].mean()
    out["seconds_mean"] = grouped["seconds"].mean()
    return out.reset_index()


def budget_grid(low: float, high: float, per_decade: int = 4) -> np.ndarray:
    """Log-spaced budgets from ``low`` to ``high`` (both > 0), ``per_decade`` a decade, on round exponents."""
    start, stop = math.floor(math.log10(low) * per_decade), math.ceil(math.log10(high) * per_decade)
    return 10.0 ** (np.arange(start, stop + 1) / per_decade)


def best_within(run: pd.DataFrame, column: str, budget: float) -> float:
    """The best validation loss a run had reached when it had spent ``budget`` of ``column``."""
    spent = run[run[column] <= budget * (1 + 1e-12)]
    return float(spent["val_loss"].min()) if len(spent) else math.nan


def budgets_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Per run, axis (cost, seconds) and budget: the best validation loss within the budget and whether
    the run spent that much (a run that stopped earlier keeps its best loss; ``reached`` says so)."""
    rows = []
    for dim, at_dim in curves.groupby("dim", sort=True):
        for axis, column in AXES.items():
            spent = at_dim[column]
            positive = spent[spent > 0]
            if positive.empty:
                continue
            grid = budget_grid(float(positive.min()), float(spent.max()))
            for (schedule, seed), run in at_dim.groupby(["schedule", "seed"], sort=True):
                total = float(run[column].max())
                for budget in grid:
                    trained = bool(((run["step"] > 0) & (run[column] <= budget * (1 + 1e-12))).any())
                    rows.append({"schedule": schedule, "dim": dim, "seed": seed, "axis": axis, "budget": budget,
                                 "val_loss": best_within(run, column, budget), "reached": total >= budget,
                                 "trained": trained})
    return pd.DataFrame(rows, columns=["schedule", "dim", "seed", "axis", "budget", "val_loss", "reached", "trained"])


def _difference(schedule, against, role, dim, axis, budget, a: pd.Series, b: pd.Series) -> dict:
    seeds = sorted(set(a.index) & set(b.index))
    d = paired([a[s] - b[s] for s in seeds])
    return {"schedule": schedule, "against": against, "role": role, "dim": dim, "axis": axis, "budget": budget,
            "n": d.n, "loss_schedule": float(a[seeds].mean()) if seeds else math.nan,
            "loss_against": float(b[seeds].mean()) if seeds else math.nan, "difference_mean": d.mean,
            "difference_ci95_low": d.low, "difference_ci95_high": d.high, "seeds_lower": d.below,
            "seeds_higher": d.above, "sign_test_p": d.sign_p, "verdict": d.verdict}


COMPARISON_COLUMNS = ["schedule", "against", "role", "dim", "axis", "budget", "n", "loss_schedule", "loss_against",
                      "difference_mean", "difference_ci95_low", "difference_ci95_high", "seeds_lower",
                      "seeds_higher", "sign_test_p", "verdict"]


def comparisons_table(curves: pd.DataFrame, controls: Iterable[str] = ()) -> pd.DataFrame:
    """Each switch ``A>B`` against ``A`` alone, ``B`` alone and each control switch that starts with A,
    paired over seeds: at the end of each run (its final loss; a run that stopped at its plateau keeps its
    last loss), and at equal cost and at equal wall time: in each seed, the best loss the other schedule
    reached within what the switch spent (all its run if it stopped earlier) against the switch's best
    (``budget``: the median over seeds of what the switch spent). Difference = switch - other: negative
    favours the switch."""
    controls = set(controls)
    runs = curves.sort_values("step").groupby(RUN, sort=True)
    run_curves = dict(iter(runs))  # (schedule, dim, seed) -> that run's rows, split once
    final = runs["val_loss"].last()
    spent = {axis: runs[column].max() for axis, column in AXES.items()}
    schedules = sorted(set(curves["schedule"]))
    rows = []
    for schedule in schedules:
        if ">" not in schedule or schedule in controls:
            continue
        first, then = schedule.split(">")
        others = [(first, "first alone"), (then, "second alone")]
        others += [(c, "control") for c in sorted(controls) if c.split(">")[0] == first and c != schedule]
        for other, role in others:
            if other not in schedules:
                continue
            for dim in sorted(set(curves.loc[curves["schedule"] == schedule, "dim"])):
                a, b = final.loc[(schedule, dim)], final.loc[(other, dim)] if (other, dim) in final.index else None
                if b is None:
                    continue
                rows.append(_difference(schedule, other, role, dim, "steps", math.nan, a, b))
                for axis, column in AXES.items():
                    seeds = sorted(set(a.index) & set(b.index))
                    if not seeds:
                        continue
                    # each seed at what the switch spent: the other's best within that much (all of it if it
                    # stopped before)
                    budgets = spent[axis].loc[(schedule, dim)][seeds]
                    within = {name: pd.Series({seed: best_within(run_curves[(name, dim, seed)], column,
                                                                 float(budgets[seed])) for seed in seeds})
                              for name in (schedule, other)}
                    rows.append(_difference(schedule, other, role, dim, axis, float(budgets.median()),
                                            within[schedule], within[other]))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def budget_leaders(budgets: pd.DataFrame) -> pd.DataFrame:
    """Per dim, axis and budget (one a decade): each schedule every seed of which spent that much and had
    been evaluated after a step within it, with its mean best loss within the budget, best first."""
    rows = []
    whole = budgets[np.isclose(np.log10(budgets["budget"]) % 1, 0) | np.isclose(np.log10(budgets["budget"]) % 1, 1)]
    for (dim, axis, budget), frame in whole.groupby(["dim", "axis", "budget"], sort=True):
        per = frame.groupby("schedule").agg(reached=("reached", "all"), trained=("trained", "all"),
                                            n=("seed", "count"), val_loss_mean=("val_loss", "mean"))
        per = per[per["reached"] & per["trained"]].sort_values("val_loss_mean")
        for rank, (schedule, row) in enumerate(per.iterrows(), start=1):
            rows.append({"dim": dim, "axis": axis, "budget": budget, "rank": rank, "schedule": schedule,
                         "n": int(row["n"]), "val_loss_mean": row["val_loss_mean"]})
    return pd.DataFrame(rows, columns=["dim", "axis", "budget", "rank", "schedule", "n", "val_loss_mean"])


# ---- the probe along training -------------------------------------------------------------------------

TREND_COLUMNS = ["schedule", "estimator", "dim", "step_layer", "measure", "phase", "n", "at_init", "at_phase",
                 "difference_mean", "difference_ci95_low", "difference_ci95_high", "seeds_lower", "seeds_higher",
                 "sign_test_p", "verdict"]


def cosine_trend(phase_runs: pd.DataFrame, measures=("cos_to_cdg", "cos_to_smoothed")) -> pd.DataFrame:
    """Per probed schedule, dim, step layer and later phase: the run's own STE's cosine to CDG and to the
    smoothed gradient at that phase minus at init, paired over seeds (each seed's mean over its batches:
    the seed is the independent run)."""
    rows = []
    per_gradient = phase_runs.drop_duplicates(["schedule", "estimator", "phase", "step_layer", "dim", "seed",
                                               "batch"])
    for (schedule, dim, layer), frame in per_gradient.groupby(["schedule", "dim", "step_layer"], sort=True):
        own = frame[frame["estimator"] == schedule]
        for measure in measures:
            per_seed = own.groupby(["phase", "seed"])[measure].mean()
            if "init" not in per_seed.index.get_level_values(0):
                continue
            init = per_seed.loc["init"]
            for phase in [p for p in dict.fromkeys(own["phase"]) if p != "init"]:
                at = per_seed.loc[phase]
                seeds = sorted(set(init.dropna().index) & set(at.dropna().index))
                d = paired([at[s] - init[s] for s in seeds])
                rows.append({"schedule": schedule, "estimator": schedule, "dim": dim, "step_layer": str(layer),
                             "measure": measure, "phase": phase, "n": d.n,
                             "at_init": float(init[seeds].mean()) if seeds else math.nan,
                             "at_phase": float(at[seeds].mean()) if seeds else math.nan,
                             "difference_mean": d.mean, "difference_ci95_low": d.low, "difference_ci95_high": d.high,
                             "seeds_lower": d.below, "seeds_higher": d.above, "sign_test_p": d.sign_p,
                             "verdict": d.verdict})
    return pd.DataFrame(rows, columns=TREND_COLUMNS)


def ste_rankings(phase_best: pd.DataFrame) -> pd.DataFrame:
    """Per probed schedule and dim (all layers stepped): the STE variants ranked by best one-step loss
    decrease at init and at the end, and Kendall's tau between the rankings. With fewer than three
    variants a ranking says nothing (tau is +-1 by construction): no row."""
    from scipy import stats

    rows = []
    stes = phase_best[phase_best["estimator"].str.startswith("ste-")
                      & (phase_best["step_layer"].astype(str) == "all")]
    for (schedule, dim), frame in stes.groupby(["schedule", "dim"], sort=True):
        by_phase = frame.pivot_table(index="estimator", columns="phase", values="loss_decrease_mean")
        if not {"init", "end"} <= set(by_phase.columns) or len(by_phase) < 3:
            continue
        init = by_phase["init"].sort_values(ascending=False)
        end = by_phase["end"].sort_values(ascending=False)
        tau = stats.kendalltau(by_phase["init"], by_phase["end"])
        rows.append({"schedule": schedule, "dim": dim, "variants": len(by_phase),
                     "ranking_init": " > ".join(init.index), "ranking_end": " > ".join(end.index),
                     "same_order": list(init.index) == list(end.index), "kendall_tau": float(tau.statistic),
                     "kendall_p": float(tau.pvalue)})
    return pd.DataFrame(rows, columns=["schedule", "dim", "variants", "ranking_init", "ranking_end", "same_order",
                                       "kendall_tau", "kendall_p"])


def verdict_cell(row) -> str:
    """A table row's verdict, bold where the CI excludes 0."""
    word = Paired(row["difference_mean"], row["difference_ci95_low"], row["difference_ci95_high"], int(row["n"]),
                  0, 0).verdict
    return f"**{word}**" if word in (LARGER, SMALLER) else word
