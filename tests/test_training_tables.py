"""The training study's tables and findings on hand-made curves, checked against numbers computed by hand:
test-batch window means (never the best-so-far), comparisons at convergence, at a step both reached and at
equal cost, ties, undetermined at a tuning grid's edge, early and late changes along training."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.training import tables
from bnnprobe.training.findings import findings_markdown

PROTOCOL = {"factor": 0.1, "reductions": 1, "patience": 2, "rel_tol": 0.01, "smooth": 2}


def curve(schedule, seed, tests, step=10, cost_per_step=1.0, seconds_per_step=0.1, dim=8, vals=None, **run):
    """One run's curve: evaluations every ``step`` steps, constant cost per step; by default it converged at its
    last evaluation (a switch: its second estimator did)."""
    steps = np.arange(len(tests)) * step
    frame = pd.DataFrame({"schedule": schedule, "dim": dim, "seed": seed, "step": steps, "segment": 0,
                          "estimator": schedule, "step_size": 0.1, "train_loss": tests,
                          "val_loss": vals if vals is not None else tests, "test_loss": tests,
                          "cumulative_loss_evals": steps * cost_per_step, "cumulative_cost": steps * cost_per_step,
                          "seconds": steps * seconds_per_step, "sigma_median": math.nan, "sigma_min": math.nan,
                          "sigma_max": math.nan, "lr": 0.1, "lr_then": math.nan, "switch_step": math.nan,
                          "converged_step": steps[-1] if ">" not in schedule else math.nan,
                          "then_converged_step": steps[-1] if ">" in schedule else math.nan,
                          "end_step": steps[-1], "finished": True, "decay_steps": "", "expected_grad_norm_init": 1.0,
                          "expected_grad_norm_converged": 0.1, "expected_grad_ratio": 0.1,
                          "expected_grad_sem_ratio": 0.01, "val_noise_rel": 0.002, "machine": "cpu"})
    for key, value in run.items():
        frame[key] = value
    return frame


def test_runs_report_test_window_means_at_convergence_and_at_the_end():
    tests = [1.0, 0.8, 0.64, 0.6, 0.59, 0.58, 0.5]
    vals = [1.0, 0.7, 0.6, 0.5, 0.55, 0.9, 0.6]  # noisy: the best-so-far (0.5) would be no one's loss
    runs = tables.runs_table(tables.curves_table([curve("a", 0, tests, vals=vals, converged_step=30,
                                                        decay_steps="20;30")]), smooth=2)
    row = runs.iloc[0]
    assert row.test_loss_converged == pytest.approx((0.64 + 0.6) / 2)  # the window ending at step 30
    assert row.test_loss_end == pytest.approx((0.58 + 0.5) / 2) and row.val_loss_end == pytest.approx(0.75)
    assert row.improvement_after_convergence == pytest.approx((0.62 - 0.54) / 0.62)
    assert row.converged and not row.cap_hit and row.decays == 2 and row.cost == 60


def test_comparisons_are_paired_over_seeds_at_convergence_a_common_step_and_equal_cost():
    alone = {0: [1.0, 0.6, 0.5, 0.45, 0.44, 0.43], 1: [1.0, 0.7, 0.55, 0.5, 0.49, 0.48],
             2: [1.0, 0.65, 0.5, 0.48, 0.47, 0.46]}
    switch = {0: [1.0, 0.6, 0.4, 0.3], 1: [1.0, 0.7, 0.5, 0.35], 2: [1.0, 0.65, 0.45, 0.33]}
    frames = []
    for seed in alone:
        frames.append(curve("ste", seed, alone[seed], cost_per_step=1.0))  # costs 0 .. 50
        sw = curve("ste>cdg", seed, switch[seed], switch_step=10)
        sw["cumulative_cost"] = [0, 10, 25, 40]  # the switch spends 40
        frames.append(sw)
    curves = tables.curves_table(frames)
    runs = tables.runs_table(curves, smooth=2)
    table = tables.comparisons_table(curves, runs, smooth=2).set_index("axis")
    w = {name: {s: np.mean(v[s][-2:]) for s in alone} for name, v in (("alone", alone), ("switch", switch))}
    diff = np.array([w["switch"][s] - w["alone"][s] for s in alone])
    ci = stats.ttest_1samp(diff, 0).confidence_interval()
    converged = table.loc["converged"]
    assert converged.difference_mean == pytest.approx(diff.mean())
    assert (converged.difference_ci95_low, converged.difference_ci95_high) == pytest.approx((ci.low, ci.high))
    assert converged.verdict == "smaller" and converged.seeds_lower == 3 and converged.sign_test_p == pytest.approx(0.25)
    # at the last step both reached (30: the switch's end): both window means ending there
    steps = table.loc["steps"]
    expected = np.array([np.mean(switch[s][2:4]) - np.mean(alone[s][2:4]) for s in alone])
    assert steps.compared_at == 30 and steps.difference_mean == pytest.approx(expected.mean())
    # equal cost: the switch spent 40; A alone had spent 40 at step 40 (its 5th evaluation)
    cost = table.loc["cost"]
    expected = np.array([np.mean(switch[s][2:4]) - np.mean(alone[s][3:5]) for s in alone])
    assert cost.compared_at == 40 and cost.difference_mean == pytest.approx(expected.mean())
    assert set(table.role) == {"first alone, continued"}  # cdg alone and the restart are not among the schedules


def test_a_comparison_using_an_lr_at_the_edge_of_its_tuning_grid_is_undetermined():
    frames = [curve("ste", s, [1.0, 0.5, 0.4]) for s in range(3)]
    frames += [curve("ste>cdg", s, [1.0, 0.5, 0.3 - 0.01 * s]) for s in range(3)]
    curves = tables.curves_table(frames)
    tuning = pd.DataFrame([{"estimator": "cdg", "after": "ste", "dim": 8, "lr": 10.0, "chosen": True, "at_edge": True},
                           {"estimator": "ste", "after": "", "dim": 8, "lr": 0.1, "chosen": True, "at_edge": False}])
    table = tables.comparisons_table(curves, tables.runs_table(curves), tuning=tuning)
    assert set(table.verdict) == {"undetermined: the best lr of cdg after ste is at the edge of the grid"}


def test_a_run_that_hit_the_cap_is_left_out_at_convergence():
    frames = [curve("ste", s, [1.0, 0.5, 0.4]) for s in range(3)]
    frames += [curve("ste>cdg", s, [1.0, 0.5, 0.3], **({"then_converged_step": math.nan, "finished": False}
                                                         if s == 0 else {})) for s in range(3)]
    curves = tables.curves_table(frames)
    table = tables.comparisons_table(curves, tables.runs_table(curves)).set_index("axis")
    assert table.loc["converged", "n"] == 2 and table.loc["steps", "n"] == 3


def test_leaders_share_a_rank_when_equal_and_rank_only_schedules_that_reached_the_budget():
    rows = []
    for name, loss, reached, trained in (("a", 0.5, True, True), ("b", 0.3, False, True), ("c", 0.4, True, True),
                                         ("d", 0.1, True, False), ("e", 0.4, True, True)):
        rows += [{"schedule": name, "dim": 8, "seed": s, "axis": "cost", "budget": 100.0, "test_loss": loss,
                  "reached": reached or s == 0, "trained": trained} for s in (0, 1)]
    leaders = tables.budget_leaders(pd.DataFrame(rows))
    assert list(leaders.schedule) == ["c", "e", "a"] and list(leaders["rank"]) == [1, 1, 3]


def test_early_and_late_changes_use_the_seed_as_the_unit():
    rows = []
    values = {0: {"init": 0.9, "f25": 0.6, "f50": 0.6, "f75": 0.6, "converged": 0.5},
              1: {"init": 0.8, "f25": 0.6, "f50": 0.65, "f75": 0.6, "converged": 0.6},
              2: {"init": 0.85, "f25": 0.5, "f50": 0.5, "f75": 0.5, "converged": 0.4}}
    for seed, by_phase in values.items():
        for batch, jitter in enumerate((-0.01, 0.01)):
            for phase, value in by_phase.items():
                rows.append({"schedule": "ste-vanilla", "estimator": "ste-vanilla", "phase": phase,
                             "step_layer": "all", "dim": 8, "seed": seed, "batch": batch, "lr": 0.1,
                             "cos_to_cdg": value + jitter, "cos_to_smoothed": value})
    trend = tables.cosine_trend(pd.DataFrame(rows)).set_index(["measure", "change"])
    for change, (a, b) in tables.CHANGES.items():
        diff = np.array([values[s][b] - values[s][a] for s in values])
        row = trend.loc[("cos_to_cdg", change)]
        assert row.n == 3 and row.difference_mean == pytest.approx(diff.mean())
        assert row.difference_ci95_high == pytest.approx(stats.ttest_1samp(diff, 0).confidence_interval().high)
    assert trend.loc[("cos_to_cdg", "early"), "verdict"] == "smaller"


def test_at_convergence_each_estimator_against_the_stes_own_step():
    folds, best = [], []
    for name, scores, edge in (("ste-vanilla", [0.0, 0.001, -0.001], False), ("cdg", [0.02, 0.03, 0.025], False),
                               ("nes-10", [0.5, 0.6, 0.7], True)):
        for seed, score in enumerate(scores):
            folds.append({"schedule": "ste-vanilla", "phase": "converged", "dim": 8, "step_layer": "all",
                          "estimator": name, "seed": seed, "loss_decrease": score, "grad_norm": 1.0,
                          "cos_to_cdg": 0.5})
        best.append({"schedule": "ste-vanilla", "phase": "converged", "dim": 8, "step_layer": "all",
                     "estimator": name, "lr_undetermined": edge})
    table = tables.converged_probe(pd.DataFrame(best), pd.DataFrame(folds)).set_index("estimator")
    assert table.loc["ste-vanilla", "decreases"] == "indistinguishable"  # the STE's own step: no decrease left
    assert table.loc["cdg", "decreases"] == "larger" and table.loc["cdg", "vs_ste"] == "larger"
    diff = np.array([0.02, 0.029, 0.026])
    assert table.loc["cdg", "difference_mean"] == pytest.approx(diff.mean())
    assert table.loc["nes-10", "vs_ste"].startswith("undetermined: the best lr of nes-10")


def test_findings_state_each_comparison_either_way():
    frames = [curve("ste", s, [1.0, 0.6, 0.5, 0.5, 0.5], converged_step=30, end_step=40) for s in range(3)]
    frames += [curve("ste>cdg", s, [1.0, 0.6, 0.5, 0.45, 0.44], switch_step=30) for s in range(3)]
    curves = tables.curves_table(frames)
    runs = tables.runs_table(curves, smooth=2)
    budgets = tables.budgets_table(curves, smooth=2)
    empty = pd.DataFrame(columns=tables.CONVERGED_COLUMNS)
    text = findings_markdown(runs, tables.final_table(runs), tables.comparisons_table(curves, runs, smooth=2),
                             tables.budget_leaders(budgets), pd.DataFrame(columns=tables.TREND_COLUMNS), empty,
                             pd.DataFrame(columns=tables.RANKING_COLUMNS), protocol=PROTOCOL)
    assert "| `ste` | 8 | 3/3 |" in text  # every seed converged
    for axis in ("converged", "steps", "cost", "seconds"):
        assert f"`ste>cdg` against `ste` (first alone, continued) at {axis}" in text
    assert "a ranking of two says nothing" in text
    assert "smallest two-sided p is 0.25" in text
    assert " = `" in text  # the schedules are identical up to the switch: a tie, not a ranking


def test_findings_compare_the_identity_ste_with_each_clipped_ste_over_the_seeds_where_both_converged():
    ident = [0.5, 0.6, 0.9, 0.4]  # the expected gradient at convergence, seeds 0-3
    clip = [0.1, 0.1, 0.2, 0.1]
    frames = [curve("ste-identity", s, [1.0, 0.6, 0.5, 0.5], expected_grad_ratio=ident[s],
                    **({"converged_step": math.nan, "finished": False} if s == 3 else {})) for s in range(4)]
    frames += [curve("ste-vanilla", s, [1.0, 0.5, 0.4, 0.4], expected_grad_ratio=clip[s]) for s in range(4)]
    curves = tables.curves_table(frames)
    runs = tables.runs_table(curves, smooth=2)
    empty = pd.DataFrame(columns=tables.CONVERGED_COLUMNS)

    def text(tuning=None):
        return findings_markdown(runs, tables.final_table(runs), tables.comparisons_table(curves, runs, smooth=2),
                                 tables.budget_leaders(tables.budgets_table(curves, smooth=2)),
                                 pd.DataFrame(columns=tables.TREND_COLUMNS), empty,
                                 pd.DataFrame(columns=tables.RANKING_COLUMNS), protocol=PROTOCOL, tuning=tuning)

    diff = np.array(ident[:3]) - np.array(clip[:3])  # seed 3's identity run did not converge: left out
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / math.sqrt(3)
    section = text().split("## Is the identity STE unstable")[1].split("\n## ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| `ste-vanilla` | 8 |"))
    assert "3/4 / 4/4" in row
    assert f"{diff.mean():+.3g} [{diff.mean() - half:+.3g}, {diff.mean() + half:+.3g}] (n=3) | larger" in row
    assert "- The identity STE's expected gradient at convergence is larger than the clipped STE's: `ste-vanilla` at " \
           "dim 8." in text()
    tuning = pd.DataFrame({"estimator": ["ste-identity"], "after": [""], "dim": [8], "lr": [10.0], "seed": [1000],
                           "steps": [100], "optimizer": ["sgd"], "chosen": [True], "at_edge": [True]})
    assert "- Undetermined (a tuned lr at its grid's edge): `ste-vanilla` at dim 8." in text(tuning)
