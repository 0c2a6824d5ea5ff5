"""Training the student: the plateau rule on hand-made curves, schedules, SGD with CDG against a
hand-written loop, the switch with each estimator at its own lr, B stopping at its own plateau, SNES
as an optimiser against a hand loop, kill-and-resume, NaN, the lr tuning."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bnnprobe.device import Compute
from bnnprobe.estimators import estimate, snes
from bnnprobe.io import load_torch
from bnnprobe.mlp import MLPProbe, MLPSpec, pack
from bnnprobe.problem import NonFiniteLossError
from bnnprobe.seeding import generator
from bnnprobe.training.schedule import ScheduleError, parse_schedule, plateau_reached
from bnnprobe.training.trainer import StudentTrainer, TrainingSpec, train_student
from bnnprobe.training.tuning import choose, tune
from reference import forward, layers_from_theta, mse

CPU64 = Compute.from_config({"device": "cpu", "dtype": "float64"})
CDG = {"eps": 0.05, "scheme": "forward"}
SNES = {"samples": 6, "sigma": 0.05, "fitness_shaping": True, "eta_sigma": "auto"}
SETTINGS = {"cdg": CDG, "ste-vanilla": {"variant": "vanilla"}, "snes-6": SNES}


def spec(schedule="cdg", lrs=None, batch_size=64, **overrides):
    base = dict(problem=MLPSpec(dim=2, seed=1, batch_size=batch_size, num_batches=1), schedule=schedule, steps=6,
                val_batch_size=500, eval_every=2, lrs=lrs or {n: 0.2 for n in parse_schedule(schedule).estimators})
    return TrainingSpec(**{**base, **overrides})


@pytest.mark.parametrize("curve,patience,tol,expected", [
    ([1.0, 0.9, 0.8, 0.7], 2, 0.05, False),     # the best improved by 22% over the last 2 evaluations
    ([1.0, 0.9, 0.899, 0.898], 2, 0.05, True),   # 0.2% over the last 2
    ([1.0, 0.99], 2, 0.05, False),               # not enough evaluations yet
    ([1.0, 1.0, 1.1], 1, 0.01, True),            # got worse
    ([1.0, 0.6, 0.3, 0.9], 2, 0.05, False),      # a spike up at the end: the best of the window still improved
    ([2.0, 1.0, 0.5], 2, 0.7, False),            # the best fell by 75% >= 70% over the last 2
])
def test_plateau_on_hand_made_curves(curve, patience, tol, expected):
    assert plateau_reached(curve, patience, tol) is expected


def test_averaging_keeps_a_fluctuating_loss_from_setting_records_by_chance():
    # a loss that only fluctuates around 1.0 (a floor): its best keeps creeping down by chance, the best of its
    # 4-evaluation average does not
    curve = [1.0, 0.95, 1.05, 0.96, 1.02, 0.97, 1.03, 1.0, 1.04, 0.94]
    assert not plateau_reached(curve, 2, 0.01)  # 0.94 is a new record, 1% below 0.95
    assert plateau_reached(curve, 2, 0.01, smooth=4)
    averaged = [sum(curve[max(0, i - 3):i + 1]) / len(curve[max(0, i - 3):i + 1]) for i in range(len(curve))]
    assert min(averaged[-2:]) > min(averaged[:-2]) * 0.99  # the rule by hand


def test_a_steady_decline_faster_than_the_tolerance_never_plateaus():
    curve = [0.98 ** k for k in range(200)]  # 2% per evaluation
    assert not any(plateau_reached(curve[:i], 3, 0.05) for i in range(1, 201))  # 5.9% per 3 evaluations
    assert not any(plateau_reached(curve[:i], 3, 0.05, smooth=5) for i in range(1, 201))


@pytest.mark.parametrize("text,message", [
    ("ste-vanila>nes-50", "'ste-vanila' is not an estimator"),
    ("ste-vanilla>", "empty side"),
    ("ste-vanilla>adam", "'adam' is not an estimator"),
    ("ste-vanilla>nes-3", "even number"),
    ("a>b>c", "more than once"),
    ("cdg>cdg", "already uses"),
])
def test_bad_schedules_are_named(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(text)
    assert parse_schedule("ste-vanilla>nes-50").then == "nes-50"
    assert parse_schedule("ste-vanilla>nes-coord-500").estimators == ["ste-vanilla", "nes-coord-500"]


def reference_sgd_with_cdg(s: TrainingSpec):
    """From the definitions: the same batches, a plain per-coordinate forward-difference CDG, w - lr g."""
    p, lr = s.problem, s.lrs["cdg"]
    probe = MLPProbe(p)
    teacher = [(t[:, :-1].numpy(), t[:, -1].numpy()) for t in probe.teacher]
    theta = pack(probe.student).numpy().copy()
    val_x = torch.randn(s.val_batch_size, s.dim, dtype=torch.float64, generator=generator("training-val", s.dim)).numpy()
    val_y = forward(teacher, val_x, p.activation)[0]
    vals = []
    for step in range(s.steps + 1):
        if step % s.eval_every == 0:
            vals.append(mse(layers_from_theta(theta, s.dim, p.depth), val_x, val_y, p.activation))
        if step == s.steps:
            break
        x = torch.randn(p.batch_size, s.dim, dtype=torch.float64,
                        generator=generator("training-batch", s.dim, s.seed, step)).numpy()
        y = forward(teacher, x, p.activation)[0]
        base = mse(layers_from_theta(theta, s.dim, p.depth), x, y, p.activation)
        grad = np.empty_like(theta)
        for i in range(len(theta)):
            moved = theta.copy()
            moved[i] += CDG["eps"]
            grad[i] = (mse(layers_from_theta(moved, s.dim, p.depth), x, y, p.activation) - base) / CDG["eps"]
        theta = theta - lr * grad
    return theta, vals


def test_sgd_with_cdg_equals_a_hand_written_loop():
    s = spec()
    result = train_student(s, {"cdg": CDG}, None, CPU64)
    theta, vals = reference_sgd_with_cdg(s)
    np.testing.assert_allclose(result.snapshots["end"]["theta"].numpy(), theta, rtol=1e-9, atol=1e-12)
    assert list(result.curve.step) == [0, 2, 4, 6]
    np.testing.assert_allclose(result.curve.val_loss.to_numpy(), vals, rtol=1e-10)
    assert list(result.curve.cumulative_loss_evals) == [0, 2 * 19, 4 * 19, 6 * 19]  # 18 coordinates + 1
    assert list(result.curve.cumulative_cost) == [0, 2 * 19, 4 * 19, 6 * 19]  # no backprop pass
    assert result.curve.val_loss.iloc[-1] < result.curve.val_loss.iloc[0]  # it learns


def test_a_switch_runs_each_estimator_at_its_own_lr(tmp_path):
    lrs = {"ste-vanilla": 0.3, "cdg": 0.05}
    s = spec("ste-vanilla>cdg", lrs=lrs, steps=8, switch_at=4)
    result = train_student(s, SETTINGS, tmp_path / "ck.pt", CPU64)
    assert result.switch_step == 4
    assert list(result.curve.estimator) == ["ste-vanilla"] * 3 + ["cdg"] * 2  # evaluations at 0, 2, 4 | 6, 8
    # an STE step: one forward, one backprop (2): cost 3; a CDG step: 18 coordinates + 1
    assert list(result.curve.cumulative_cost) == [0, 6, 12, 12 + 2 * 19, 12 + 4 * 19]
    # replay from the definitions: STE steps before the switch at its lr, CDG steps after it at its own
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    theta = trainer.theta.detach().clone()
    for step in range(s.steps):
        name = "ste-vanilla" if step < 4 else "cdg"
        with torch.no_grad():
            trainer.theta.copy_(theta)
        g = estimate(name, trainer.batch_problem(step), SETTINGS[name], seed_parts=("training", 2, 1, step)).gradient
        theta = theta - lrs[name] * g.double()
    torch.testing.assert_close(result.snapshots["end"]["theta"], theta, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(result.snapshots["plateau"]["theta"], result.snapshots["f50"]["theta"])


def test_plateau_switch_then_the_second_estimator_stops_at_its_own_plateau():
    s = spec("ste-vanilla>cdg", lrs={"ste-vanilla": 0.05, "cdg": 0.05}, steps=200, eval_every=2, patience=2,
             rel_tol=0.3)
    result = train_student(s, SETTINGS, None, CPU64)
    curve = result.curve.set_index("step")
    assert result.switch_step is not None and result.then_plateau_step is not None
    vals = list(curve.val_loss.loc[:result.switch_step])
    # the rule applied by hand: the first evaluation where it holds
    assert plateau_reached(vals, 2, 0.3) and not any(plateau_reached(vals[:i], 2, 0.3) for i in range(1, len(vals)))
    after = list(curve.val_loss.loc[result.switch_step:result.then_plateau_step])
    assert plateau_reached(after, 2, 0.3) and not any(plateau_reached(after[:i], 2, 0.3) for i in range(1, len(after)))
    assert curve.index.max() == result.then_plateau_step < s.steps  # it stopped there
    assert set(curve.estimator.loc[result.switch_step + 1:]) == {"cdg"}
    assert result.snapshots["end"]["step"] == result.then_plateau_step


def test_a_single_estimator_trains_on_to_the_cap_after_its_plateau():
    s = spec("ste-vanilla", lrs={"ste-vanilla": 0.05}, steps=60, eval_every=2, patience=2, rel_tol=0.3)
    result = train_student(s, SETTINGS, None, CPU64)
    assert result.plateau_step is not None and result.plateau_step < 60
    assert result.curve.step.max() == 60 and result.switch_step is None


def test_a_run_not_needed_at_the_cap_stops_at_its_plateau():
    s = spec("ste-vanilla", lrs={"ste-vanilla": 0.05}, steps=60, eval_every=2, patience=2, rel_tol=0.3, to_cap=False)
    result = train_student(s, SETTINGS, None, CPU64)
    assert result.plateau_step is not None and result.curve.step.max() == result.plateau_step < 60
    assert result.snapshots["end"]["step"] == result.plateau_step


def test_snes_trains_by_its_own_update_of_mu_and_sigma():
    s = spec("snes-6", lrs={"snes-6": 0.8}, steps=5, eval_every=5)
    result = train_student(s, SETTINGS, None, CPU64)
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    mu = trainer.theta.detach().clone()
    sigma = torch.full_like(mu, SNES["sigma"])
    eta_sigma = (3 + math.log(len(mu))) / (5 * math.sqrt(len(mu)))
    for step in range(5):
        with torch.no_grad():
            trainer.theta.copy_(mu)
        problem = trainer.batch_problem(step)
        g_mu, g_sigma = snes.natural_gradients(problem, sigma, 6, ("snes-6", "training", 2, 1, step))
        mu, sigma = mu + 0.8 * sigma * g_mu, sigma * torch.exp(eta_sigma / 2 * g_sigma)
    torch.testing.assert_close(result.snapshots["end"]["theta"], mu, rtol=1e-12, atol=1e-14)
    assert result.curve.sigma_median.iloc[-1] == pytest.approx(float(sigma.median()))
    assert list(result.curve.cumulative_loss_evals) == [0, 30]


def test_killed_run_resumes_to_the_same_curve(tmp_path, monkeypatch):
    s = spec("ste-vanilla>cdg", lrs={"ste-vanilla": 0.05, "cdg": 0.02}, steps=10, switch_at=4, optimizer="adam")
    straight = train_student(s, SETTINGS, tmp_path / "a.pt", CPU64)
    import bnnprobe.training.trainer as trainer_module

    calls = {"n": 0}
    real = trainer_module.estimate

    def dies_at_step_7(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt  # like a kill: nothing after the last checkpoint is kept
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "estimate", dies_at_step_7)
    with pytest.raises(KeyboardInterrupt):
        train_student(s, SETTINGS, tmp_path / "b.pt", CPU64)
    monkeypatch.setattr(trainer_module, "estimate", real)
    assert load_torch(tmp_path / "b.pt")["state"]["step"] == 6  # the last evaluation
    resumed = train_student(s, SETTINGS, tmp_path / "b.pt", CPU64)
    pd.testing.assert_frame_equal(straight.curve.drop(columns="seconds"), resumed.curve.drop(columns="seconds"))
    torch.testing.assert_close(straight.snapshots["end"]["theta"], resumed.snapshots["end"]["theta"], rtol=0, atol=0)


def test_a_diverging_run_stops_with_a_message():
    s = spec(lrs={"cdg": 1e308}, steps=4, eval_every=1)
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        train_student(s, {"cdg": CDG}, None, CPU64)


def test_a_spec_without_an_lr_for_each_estimator_is_refused():
    with pytest.raises(ValueError, match="no learning rate for \\['cdg'\\]"):
        spec("ste-vanilla>cdg", lrs={"ste-vanilla": 0.1})


# ---- the lr tuning -------------------------------------------------------------------------------------

def fake_run(best_log_lr, diverge_above=math.inf):
    """A stand-in training run: a loss that is (log10 lr - best)^2 + 1 plus a seed offset; +inf above a lr."""
    def run(name, problem, lr, steps, val_batch_size, optimizer, settings, compute):
        if lr > diverge_above:
            return math.inf, True
        return (math.log10(lr) - best_log_lr) ** 2 + 1 + 0.01 * problem.seed, False
    return run


PROBLEMS = {1000: MLPSpec(dim=4, seed=1000, batch_size=8, num_batches=1),
            1001: MLPSpec(dim=4, seed=1001, batch_size=8, num_batches=1)}


def test_tuning_picks_the_lowest_mean_loss_and_extends_past_an_edge():
    table = tune("cdg", PROBLEMS, [0.01, 0.1, 1.0, 10.0, 100.0], 10, 32, "sgd", {}, CPU64, extend=2, run=fake_run(3))
    assert sorted(table.lr.unique()) == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    assert set(table[table.chosen].lr) == {1000.0} and not table.at_edge.any()
    assert len(table) == 7 * 2  # every lr on both tuning seeds


def test_tuning_flags_a_choice_still_at_the_edge_and_counts_divergence_as_worst():
    table = tune("cdg", PROBLEMS, [0.01, 0.1], 10, 32, "sgd", {}, CPU64, extend=1, run=fake_run(5))
    assert set(table[table.chosen].lr) == {1.0} and table.at_edge.all()
    table = tune("cdg", PROBLEMS, [0.01, 0.1, 1.0, 10.0], 10, 32, "sgd", {}, CPU64, extend=2,
                 run=fake_run(3, diverge_above=5.0))
    assert set(table[table.chosen].lr) == {1.0} and table[table.lr == 10.0].diverged.all()
    assert choose(table)[0] == 1.0


def test_tuning_runs_real_training_on_the_tuning_seeds():
    table = tune("ste-vanilla", PROBLEMS, [0.1, 1.0, 10.0], 5, 64, "sgd", {"variant": "vanilla"}, CPU64, extend=0)
    assert len(table) == 6 and table.chosen.sum() == 2 and np.isfinite(table.val_loss).any()
    means = table.groupby("lr").val_loss.mean()
    assert float(table[table.chosen].lr.iloc[0]) == float(means.idxmin())
