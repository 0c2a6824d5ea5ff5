"""The training study's tables and findings on hand-made curves, checked against numbers computed by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.training import tables
from bnnprobe.training.findings import findings_markdown


def curve(schedule, seed, vals, step=10, cost_per_step=1.0, seconds_per_step=0.1, dim=8, **run):
    """One run's curve: evaluations every ``step`` steps, constant cost per step."""
    steps = np.arange(len(vals)) * step
    frame = pd.DataFrame({"schedule": schedule, "dim": dim, "seed": seed, "step": steps, "estimator": schedule,
                          "train_loss": vals, "val_loss": vals, "cumulative_loss_evals": steps * cost_per_step,
                          "cumulative_cost": steps * cost_per_step, "seconds": steps * seconds_per_step,
                          "sigma_median": math.nan, "sigma_min": math.nan, "sigma_max": math.nan,
                          "switch_step": math.nan, "plateau_step": math.nan, "then_plateau_step": math.nan,
                          "lr": 0.1, "lr_then": math.nan, "val_noise_rel": 0.002, "machine": "cpu"})
    for key, value in run.items():
        frame[key] = value
    return frame


def test_runs_table_slopes_and_flattening_by_hand():
    vals = [1.0, 0.8, 0.64, 0.6, 0.6, 0.599, 0.599, 0.5985]
    runs = tables.runs_table(tables.curves_table([curve("a", 0, vals, plateau_step=40)]), patience=2)
    row = runs.iloc[0]
    # before: log-linear fit through steps 20, 30, 40 (0.64, 0.6, 0.6), per 100 steps
    slope = np.polyfit([20, 30, 40], np.log([0.64, 0.6, 0.6]), 1)[0]
    assert row.slope_before == pytest.approx(math.expm1(100 * slope))
    assert row.improvement_after == pytest.approx((0.6 - 0.599) / 0.6)  # best in the 2 evaluations after
    assert row.plateau_reached and not row.cap_hit and row.final_val_loss == 0.5985 and row.cost == 70


def test_best_within_a_budget_and_the_budget_grid():
    run = curve("a", 0, [1.0, 0.5, 0.7, 0.4], cost_per_step=3.0)  # costs 0, 30, 60, 90
    assert tables.best_within(run, "cumulative_cost", 59.9) == 0.5
    assert tables.best_within(run, "cumulative_cost", 60) == 0.5
    assert tables.best_within(run, "cumulative_cost", 90) == 0.4
    grid = tables.budget_grid(30, 90)
    assert grid[0] <= 30 and grid[-1] >= 90 and np.allclose(np.diff(np.log10(grid)), 0.25)


def test_comparisons_are_paired_over_seeds_at_the_cap_and_at_equal_cost():
    frames = []
    alone = {0: [1.0, 0.6, 0.5, 0.45], 1: [1.0, 0.7, 0.55, 0.5], 2: [1.0, 0.65, 0.5, 0.48]}
    switch = {0: [1.0, 0.6, 0.4, 0.3], 1: [1.0, 0.7, 0.5, 0.35], 2: [1.0, 0.65, 0.45, 0.33]}
    for seed in alone:
        frames.append(curve("ste", seed, alone[seed], cost_per_step=1.0))
        # the switch costs 10 per step after step 10 (cumulative 0, 10, 110, 210)
        sw = curve("ste>cdg", seed, switch[seed], switch_step=10)
        sw["cumulative_cost"] = [0, 10, 110, 210]
        frames.append(sw)
    table = tables.comparisons_table(tables.curves_table(frames))
    at_cap = table[(table.axis == "steps")].iloc[0]
    diff = np.array([switch[s][-1] - alone[s][-1] for s in alone])
    ci = stats.ttest_1samp(diff, 0).confidence_interval()
    assert at_cap.difference_mean == pytest.approx(diff.mean())
    assert (at_cap.difference_ci95_low, at_cap.difference_ci95_high) == pytest.approx((ci.low, ci.high))
    assert at_cap.verdict == "smaller" and at_cap.seeds_lower == 3 and at_cap.sign_test_p == pytest.approx(0.25)
    # equal cost: the switch spent 210 in every seed; A alone stopped at 30: its best over all its run
    at_cost = table[(table.axis == "cost")].iloc[0]
    assert at_cost.budget == 210
    expected = np.array([min(switch[s]) - min(alone[s]) for s in alone])
    assert at_cost.difference_mean == pytest.approx(expected.mean()) and at_cost.verdict == "smaller"
    # and against a run that spends more: the best it had reached within what the switch spent
    frames = [curve("ste", s, alone[s], cost_per_step=10.0) for s in alone]  # costs 0, 100, 200, 300
    frames += [curve("ste>cdg", s, switch[s], cost_per_step=5.0) for s in alone]  # costs 0, 50, 100, 150
    table = tables.comparisons_table(tables.curves_table(frames))
    at_cost = table[(table.axis == "cost")].iloc[0]
    expected = np.array([min(switch[s]) - min(alone[s][:2]) for s in alone])  # A alone within 150: steps 0, 10
    assert at_cost.budget == 150 and at_cost.difference_mean == pytest.approx(expected.mean())
    assert set(table.role) == {"first alone"}  # cdg alone is not among the schedules


def test_leaders_rank_only_schedules_every_seed_of_which_reached_the_budget():
    budgets = pd.DataFrame([
        {"schedule": "a", "dim": 8, "seed": s, "axis": "cost", "budget": 100.0, "val_loss": 0.5, "reached": True,
         "trained": True} for s in (0, 1)] + [
        {"schedule": "b", "dim": 8, "seed": s, "axis": "cost", "budget": 100.0, "val_loss": 0.3, "reached": s == 0,
         "trained": True} for s in (0, 1)] + [
        {"schedule": "c", "dim": 8, "seed": s, "axis": "cost", "budget": 100.0, "val_loss": 0.4, "reached": True,
         "trained": True} for s in (0, 1)] + [
        {"schedule": "d", "dim": 8, "seed": s, "axis": "cost", "budget": 100.0, "val_loss": 0.1, "reached": True,
         "trained": False} for s in (0, 1)])
    leaders = tables.budget_leaders(budgets)
    assert list(leaders.schedule) == ["c", "a"] and list(leaders["rank"]) == [1, 2]


def test_cosine_trend_uses_the_seed_as_the_unit():
    rows = []
    for seed, (c_init, c_end) in enumerate([(0.9, 0.5), (0.8, 0.6), (0.85, 0.4)]):
        for batch, jitter in enumerate((-0.01, 0.01)):
            for phase, value in (("init", c_init), ("end", c_end)):
                rows.append({"schedule": "ste-vanilla", "estimator": "ste-vanilla", "phase": phase,
                             "step_layer": "all", "dim": 8, "seed": seed, "batch": batch, "lr": 0.1,
                             "cos_to_cdg": value + jitter, "cos_to_smoothed": value})
    trend = tables.cosine_trend(pd.DataFrame(rows))
    row = trend[(trend.measure == "cos_to_cdg") & (trend.phase == "end")].iloc[0]
    diff = np.array([0.5 - 0.9, 0.6 - 0.8, 0.4 - 0.85])
    assert row.n == 3 and row.difference_mean == pytest.approx(diff.mean())
    ci = stats.ttest_1samp(diff, 0).confidence_interval()
    assert row.difference_ci95_high == pytest.approx(ci.high) and row.verdict == "smaller"


def test_findings_state_each_comparison_either_way():
    frames = [curve("ste", s, [1.0, 0.6, 0.5, 0.5, 0.5], plateau_step=30) for s in range(3)]
    frames += [curve("ste>cdg", s, [1.0, 0.6, 0.5, 0.45, 0.44], switch_step=30) for s in range(3)]
    curves = tables.curves_table(frames)
    runs = tables.runs_table(curves, patience=1)
    budgets = tables.budgets_table(curves)
    text = findings_markdown(runs, tables.final_table(runs), tables.comparisons_table(curves),
                             tables.budget_leaders(budgets), pd.DataFrame(columns=tables.TREND_COLUMNS),
                             tables.ste_rankings(pd.DataFrame(columns=["estimator", "step_layer", "schedule", "dim",
                                                                         "phase", "loss_decrease_mean"])),
                             rel_tol=0.01, patience=1)
    assert "| `ste` | 8 | 3/3 |" in text  # every seed plateaued
    for axis in ("steps", "cost", "seconds"):
        assert f"`ste>cdg` against `ste` at equal {axis}" in text
    assert "a ranking of two says nothing" in text
    assert "smallest two-sided p is 0.25" in text
