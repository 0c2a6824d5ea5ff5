"""Training the student: schedules, SGD with CDG against a hand-written loop, decay on plateau to
convergence against the rule applied by hand, a switch with each segment at its own lr, the control that
goes on after converging, the test batch, the stationarity measure, the phases, SNES as an optimiser
against a hand loop, kill-and-resume, NaN, the lr tuning from the initialisation and at a switch point."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from bnnprobe.device import Compute
from bnnprobe.estimators import estimate, snes
from bnnprobe.io import load_torch
from bnnprobe.mlp import MLPProbe, MLPSpec, pack
from bnnprobe.probes import PHASES
from bnnprobe.problem import NonFiniteLossError
from bnnprobe.seeding import generator
from bnnprobe.training.schedule import ScheduleError, parse_schedule
from bnnprobe.training.stopping import PlateauRule
from bnnprobe.training.trainer import StudentTrainer, TrainingSpec, phase_snapshots, train_student
from bnnprobe.training.tuning import choose, chosen_lr, converged_starts, tune
from reference import forward, layers_from_theta, mse

CPU64 = Compute.from_config({"device": "cpu", "dtype": "float64"})
CDG = {"eps": 0.05, "scheme": "forward"}
SNES = {"samples": 6, "sigma": 0.05, "fitness_shaping": True, "eta_sigma": "auto"}
SETTINGS = {"cdg": CDG, "ste-vanilla": {"variant": "vanilla"}, "snes-6": SNES}


def spec(schedule="cdg", lrs=None, batch_size=64, **overrides):
    base = dict(problem=MLPSpec(dim=2, seed=1, batch_size=batch_size, num_batches=1), schedule=schedule, steps=6,
                val_batch_size=500, eval_every=2, lrs=lrs or tuple(0.2 for _ in parse_schedule(schedule).estimators))
    return TrainingSpec(**{**base, **overrides})


@pytest.mark.parametrize("text,message", [
    ("ste-vanila>nes-50", "'ste-vanila' is not an estimator"),
    ("ste-vanilla>", "empty side"),
    ("ste-vanilla>adam", "'adam' is not an estimator"),
    ("ste-vanilla>nes-3", "even number"),
    ("a>b>c", "more than once"),
])
def test_bad_schedules_are_named(text, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(text)
    assert parse_schedule("ste-vanilla>nes-50").then == "nes-50"
    assert parse_schedule("ste-vanilla>nes-coord-500").estimators == ["ste-vanilla", "nes-coord-500"]
    assert parse_schedule("cdg>cdg").restarts  # the restart control


def _teacher_and_batch(s: TrainingSpec, name: str, *key):
    probe = MLPProbe(s.problem)
    teacher = [(t[:, :-1].numpy(), t[:, -1].numpy()) for t in probe.teacher]
    x = torch.randn(s.val_batch_size, s.dim, dtype=torch.float64, generator=generator(name, *key)).numpy()
    return teacher, x, forward(teacher, x, s.problem.activation)[0]


def reference_sgd_with_cdg(s: TrainingSpec):
    """From the definitions: the same batches, a plain per-coordinate forward-difference CDG, w - lr g."""
    p, lr = s.problem, s.lrs[0]
    probe = MLPProbe(p)
    teacher, val_x, val_y = _teacher_and_batch(s, "training-val", s.dim)
    _, test_x, test_y = _teacher_and_batch(s, "training-test", s.dim)
    theta = pack(probe.student).numpy().copy()
    vals, tests = [], []
    for step in range(s.steps + 1):
        if step % s.eval_every == 0:
            layers = layers_from_theta(theta, s.dim, p.depth)
            vals.append(mse(layers, val_x, val_y, p.activation))
            tests.append(mse(layers, test_x, test_y, p.activation))
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
    return theta, vals, tests


def test_sgd_with_cdg_equals_a_hand_written_loop():
    s = spec()
    result = train_student(s, {"cdg": CDG}, None, CPU64)
    theta, vals, tests = reference_sgd_with_cdg(s)
    np.testing.assert_allclose(result.snapshots["end"]["theta"].numpy(), theta, rtol=1e-9, atol=1e-12)
    assert list(result.curve.step) == [0, 2, 4, 6]
    np.testing.assert_allclose(result.curve.val_loss.to_numpy(), vals, rtol=1e-10)
    np.testing.assert_allclose(result.curve.test_loss.to_numpy(), tests, rtol=1e-10)  # its own batch
    assert not np.allclose(vals, tests)
    assert list(result.curve.cumulative_loss_evals) == [0, 2 * 19, 4 * 19, 6 * 19]  # 18 coordinates + 1
    assert list(result.curve.cumulative_cost) == [0, 2 * 19, 4 * 19, 6 * 19]  # no backprop pass
    assert result.curve.val_loss.iloc[-1] < result.curve.val_loss.iloc[0]  # it learns
    assert not result.finished and result.converged_step is None  # the cap came first


def test_the_lr_is_cut_at_each_plateau_and_the_run_stops_at_its_convergence():
    s = spec("ste-vanilla", lrs=(0.05,), steps=400, eval_every=2, patience=2, rel_tol=0.3, reductions=2,
             decay_factor=0.5)
    result = train_student(s, SETTINGS, None, CPU64)
    curve = result.curve
    decays = result.events
    cuts = [step for step, what, _ in decays if what == "decay"]
    assert len(cuts) == 2 and result.finished and result.converged_step == curve.step.max() < 400
    # the rule by hand on each segment of the validation curve: its first plateau is where the cut (or the end) is
    rule = PlateauRule(2, 0.3)
    starts = [0] + [int(np.searchsorted(curve.step, c)) for c in cuts]
    ends = cuts + [result.converged_step]
    for start, end in zip(starts, ends):
        losses = list(curve.val_loss[start:])
        first = next(i for i in range(1, len(losses) + 1) if rule.reached(losses[:i]))
        assert curve.step.iloc[start + first - 1] == end
    # and the step size halves at each cut: SGD moved by 0.05, then 0.025, then 0.0125 times the gradient
    assert list(dict.fromkeys(curve.step_size)) == [0.05, 0.025, 0.0125]
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    theta = trainer.theta.detach().clone()
    for step in range(result.end_step):
        lr = 0.05 * 0.5 ** sum(c <= step for c in cuts)
        with torch.no_grad():
            trainer.theta.copy_(theta)
        g = estimate("ste-vanilla", trainer.batch_problem(step), SETTINGS["ste-vanilla"],
                     seed_parts=("training", 2, 1, step)).gradient
        theta = theta - lr * g.double()
    torch.testing.assert_close(result.snapshots["end"]["theta"], theta, rtol=1e-12, atol=1e-14)


def test_the_control_goes_on_after_converging_with_more_cuts():
    base = dict(lrs=(0.05,), steps=600, eval_every=2, patience=2, rel_tol=0.3, reductions=1, decay_factor=0.5)
    alone = train_student(spec("ste-vanilla", **base), SETTINGS, None, CPU64)
    continued = train_student(spec("ste-vanilla", extra_reductions=1, **base), SETTINGS, None, CPU64)
    # the same run up to its convergence, then one more cut and on to the next plateau
    assert continued.converged_step == alone.converged_step < continued.end_step
    pd.testing.assert_frame_equal(continued.curve[continued.curve.step <= alone.end_step].drop(columns="seconds"),
                                  alone.curve.drop(columns="seconds"))
    torch.testing.assert_close(continued.snapshots["converged"]["theta"], alone.snapshots["end"]["theta"])
    assert [what for _, what, _ in continued.events].count("decay") == 2


def test_a_switch_runs_each_segment_at_its_own_lr():
    lrs = (0.3, 0.05)
    s = spec("ste-vanilla>cdg", lrs=lrs, steps=8, switch=4)
    result = train_student(s, SETTINGS, None, CPU64)
    assert result.switch_step == 4 and result.snapshots["switch"]["step"] == 4
    assert list(result.curve.estimator) == ["ste-vanilla"] * 3 + ["cdg"] * 2  # evaluations at 0, 2, 4 | 6, 8
    assert list(result.curve.segment) == [0, 0, 0, 1, 1]
    # an STE step: one forward, one backprop (2): cost 3; a CDG step: 18 coordinates + 1
    assert list(result.curve.cumulative_cost) == [0, 6, 12, 12 + 2 * 19, 12 + 4 * 19]
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    theta = trainer.theta.detach().clone()
    for step in range(s.steps):
        name, lr = ("ste-vanilla", lrs[0]) if step < 4 else ("cdg", lrs[1])
        with torch.no_grad():
            trainer.theta.copy_(theta)
        g = estimate(name, trainer.batch_problem(step), SETTINGS[name], seed_parts=("training", 2, 1, step)).gradient
        theta = theta - lr * g.double()
    torch.testing.assert_close(result.snapshots["end"]["theta"], theta, rtol=1e-12, atol=1e-14)


def test_a_switch_at_convergence_then_the_second_estimator_converges_afresh():
    s = spec("ste-vanilla>cdg", lrs=(0.05, 0.05), steps=400, eval_every=2, patience=2, rel_tol=0.3, reductions=1)
    result = train_student(s, SETTINGS, None, CPU64)
    curve = result.curve.set_index("step")
    assert result.converged_step == result.switch_step is not None and result.then_converged_step is not None
    assert result.finished and curve.index.max() == result.then_converged_step < s.steps
    assert set(curve.estimator.loc[result.switch_step + 1:]) == {"cdg"}
    # B starts at its own lr, uncut, and is cut once before it converges
    after = curve.loc[result.switch_step + 1:]
    assert after.step_size.iloc[0] == 0.05 and after.step_size.iloc[-1] == pytest.approx(0.005)
    restart = train_student(spec("ste-vanilla>ste-vanilla", lrs=(0.05, 0.2), steps=400, eval_every=2, patience=2,
                                 rel_tol=0.3, reductions=1), SETTINGS, None, CPU64)
    # A>A: the same A up to its convergence, then A again at the restart's own lr
    assert restart.switch_step == result.switch_step
    assert restart.curve.set_index("step").step_size.loc[restart.switch_step + 1:].iloc[0] == 0.2


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_switch_taking_over_from_its_first_estimators_run_equals_the_switch_trained_from_the_start(optimizer):
    base = dict(steps=400, eval_every=2, patience=2, rel_tol=0.3, reductions=1, optimizer=optimizer)
    alone = train_student(spec("ste-vanilla", lrs=(0.05,), extra_reductions=1, **base), SETTINGS, None, CPU64)
    assert alone.converged_step < alone.end_step and alone.handoff["state"]["step"] == alone.converged_step
    for schedule, lrs in (("ste-vanilla>cdg", (0.05, 0.05)), ("ste-vanilla>ste-vanilla", (0.05, 0.2))):
        s = spec(schedule, lrs=lrs, **base)
        full = train_student(s, SETTINGS, None, CPU64)
        taken = train_student(s, SETTINGS, None, CPU64, handoff=alone.handoff)
        assert full.switch_step == alone.converged_step and full.then_converged_step is not None
        pd.testing.assert_frame_equal(full.curve.drop(columns="seconds"), taken.curve.drop(columns="seconds"))
        assert full.events == taken.events and full.stationarity == taken.stationarity
        assert full.snapshots.keys() == taken.snapshots.keys() == {"init", "converged", "switch", "end"}
        for name, kept in full.snapshots.items():
            assert kept["step"] == taken.snapshots[name]["step"]
            torch.testing.assert_close(kept["theta"], taken.snapshots[name]["theta"], rtol=0, atol=0)
    with pytest.raises(ValueError, match="lrs"):  # another first lr is another run up to the switch
        train_student(spec("ste-vanilla>cdg", lrs=(0.1, 0.05), **base), SETTINGS, None, CPU64, handoff=alone.handoff)
    with pytest.raises(ValueError, match="patience"):
        train_student(spec("ste-vanilla>cdg", lrs=(0.05, 0.05), **{**base, "patience": 3}), SETTINGS, None, CPU64,
                      handoff=alone.handoff)


def test_stationarity_is_the_mean_estimate_over_fresh_batches_against_at_init():
    s = spec("ste-vanilla", lrs=(0.05,), steps=200, eval_every=2, patience=2, rel_tol=0.3, reductions=0,
             stationarity_batches=3)
    result = train_student(s, SETTINGS, None, CPU64)
    trainer = StudentTrainer(s, SETTINGS, CPU64)

    def mean_norm(theta):
        grads = []
        for k in range(3):
            x = torch.randn(s.val_batch_size, s.dim, dtype=torch.float64,
                            generator=generator("training-stationarity", s.dim, s.seed, k))
            with torch.no_grad():
                trainer.theta.copy_(theta)
            grads.append(estimate("ste-vanilla", trainer._problem(x, "k"), SETTINGS["ste-vanilla"]).gradient.double())
        return float(torch.stack(grads).mean(0).norm())

    init, end = mean_norm(result.snapshots["init"]["theta"]), mean_norm(result.snapshots["converged"]["theta"])
    assert result.stationarity["expected_grad_norm_init"] == pytest.approx(init, rel=1e-10)
    assert result.stationarity["expected_grad_ratio"] == pytest.approx(end / init, rel=1e-10)
    assert result.stationarity["expected_grad_ratio"] < 1


def test_phases_are_fractions_of_the_runs_own_converged_step():
    s = spec("ste-vanilla", lrs=(0.05,), steps=400, eval_every=2, patience=2, rel_tol=0.3, reductions=1,
             keep_trajectory=True)
    result = train_student(s, SETTINGS, None, CPU64)
    phases = phase_snapshots(result, s)
    converged = result.converged_step
    assert set(phases) == set(PHASES) and phases["converged"]["step"] == converged and phases["init"]["step"] == 0
    for phase, fraction in PHASES.items():
        # the nearest evaluation (every 2 steps) to the fraction of the converged step
        assert abs(phases[phase]["step"] - fraction * converged) <= 1
    torch.testing.assert_close(phases["converged"]["theta"], result.snapshots["converged"]["theta"])


def test_snes_trains_by_its_own_update_of_mu_and_sigma():
    s = spec("snes-6", lrs=(0.8,), steps=5, eval_every=5)
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
    assert result.curve.sigma_median.iloc[-1] == pytest.approx(float(np.median(sigma.numpy())))  # the true median
    assert list(result.curve.cumulative_loss_evals) == [0, 30]


def test_killed_run_resumes_to_the_same_curve(tmp_path, monkeypatch):
    s = spec("ste-vanilla>cdg", lrs=(0.05, 0.02), steps=10, switch=4, optimizer="adam")
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
    assert straight.events == resumed.events


@pytest.mark.parametrize("damage", ["truncated", "other settings"])
def test_a_damaged_or_foreign_checkpoint_is_discarded_and_the_run_starts_over(tmp_path, damage, caplog):
    """A checkpoint holds no result: a truncated one, or one a run with other settings left, is deleted with a
    warning naming it, and the run ends exactly as one that never had a checkpoint."""
    s = spec("ste-vanilla", lrs=(0.05,), steps=6)
    straight = train_student(s, SETTINGS, None, CPU64)
    path = tmp_path / "checkpoint.pt"
    other = spec("ste-vanilla", lrs=(0.07,), steps=6)
    StudentTrainer(other, SETTINGS, CPU64).save(path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    with caplog.at_level("WARNING"):
        resumed = train_student(s, SETTINGS, path, CPU64)
    assert f"discarding the checkpoint {path}" in caplog.text
    assert ("other settings" if damage == "other settings" else "cannot read") in caplog.text
    pd.testing.assert_frame_equal(straight.curve.drop(columns="seconds"), resumed.curve.drop(columns="seconds"))
    torch.testing.assert_close(straight.snapshots["end"]["theta"], resumed.snapshots["end"]["theta"], rtol=0, atol=0)


def test_a_diverging_run_stops_with_a_message():
    s = spec(lrs=(1e308,), steps=4, eval_every=1)
    with pytest.raises(NonFiniteLossError, match="lower the learning rate"):
        train_student(s, {"cdg": CDG}, None, CPU64)


def test_a_spec_without_an_lr_for_each_segment_is_refused():
    with pytest.raises(ValueError, match="needs 2 learning rates"):
        spec("ste-vanilla>cdg", lrs=(0.1,))


# ---- the lr tuning -------------------------------------------------------------------------------------

def fake_run(best_log_lr, diverge_above=math.inf):
    """A stand-in training run: a loss that is (log10 lr - best)^2 + 1 plus a seed offset; +inf above a lr."""
    def run(name, problem, lr, budget, settings, compute, start):
        if lr > diverge_above:
            return math.inf, True
        return (math.log10(lr) - best_log_lr) ** 2 + 1 + 0.01 * problem.seed, False
    return run


STARTS = {seed: (MLPSpec(dim=4, seed=seed, batch_size=8, num_batches=1), None) for seed in (1000, 1001)}
BUDGET = {"steps": 10, "eval_every": 5, "smooth": 2, "val_batch_size": 32, "optimizer": "sgd"}


def test_tuning_picks_the_lowest_mean_loss_and_extends_past_an_edge():
    table = tune("cdg", STARTS, [0.01, 0.1, 1.0, 10.0, 100.0], BUDGET, {}, CPU64, extend=2, run=fake_run(3))
    assert sorted(table.lr.unique()) == [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0]
    assert set(table[table.chosen].lr) == {1000.0} and not table.at_edge.any()
    assert len(table) == 7 * 2 and set(table.after) == {""}  # every lr on both tuning seeds


def test_tuning_flags_a_choice_still_at_the_edge_and_counts_divergence_as_worst():
    table = tune("cdg", STARTS, [0.01, 0.1], BUDGET, {}, CPU64, extend=1, run=fake_run(5))
    assert set(table[table.chosen].lr) == {1.0} and table.at_edge.all()
    table = tune("cdg", STARTS, [0.01, 0.1, 1.0, 10.0], BUDGET, {}, CPU64, extend=2, run=fake_run(3, diverge_above=5.0))
    assert set(table[table.chosen].lr) == {1.0} and table[table.lr == 10.0].diverged.all()
    assert choose(table)[0] == 1.0


def test_tuning_at_the_switch_point_starts_from_the_first_estimators_converged_weights():
    problems = {seed: spec_.__class__(**{**spec_.as_dict(), "dim": 2}) for seed, (spec_, _) in STARTS.items()}
    protocol = dict(steps=200, val_batch_size=64, eval_every=2, patience=2, rel_tol=0.3, reductions=1)
    points = converged_starts("ste-vanilla", problems, protocol, SETTINGS["ste-vanilla"], 0.05, CPU64)
    for seed, point in points.items():
        alone = train_student(TrainingSpec(problem=problems[seed], schedule="ste-vanilla", lrs=(0.05,), **protocol),
                              SETTINGS, None, CPU64)
        assert point["converged"] and point["step"] == alone.converged_step
        torch.testing.assert_close(point["theta"], alone.snapshots["converged"]["theta"])
    starts = {seed: (problems[seed], points[seed]["theta"]) for seed in problems}
    table = tune("cdg", starts, [0.01, 0.1], {**BUDGET, "val_batch_size": 64}, CDG, CPU64, extend=0,
                 after="ste-vanilla")
    assert set(table.after) == {"ste-vanilla"} and chosen_lr(table, "cdg", 2, after="ste-vanilla") in (0.01, 0.1)
    with pytest.raises(ValueError, match="no chosen lr for cdg at dim 2"):
        chosen_lr(table, "cdg", 2)
    # its losses are those of training cdg from the switch point: the mean of the last `smooth` evaluations
    seed = 1000
    run = train_student(TrainingSpec(problem=problems[seed], schedule="cdg", steps=10, val_batch_size=64,
                                     eval_every=5, lrs=(0.1,), smooth=2, stops=False), {"cdg": CDG}, None, CPU64,
                        start=points[seed]["theta"])
    row = table[(table.lr == 0.1) & (table.seed == seed)].iloc[0]
    assert row.val_loss == pytest.approx(run.curve.val_loss.iloc[-2:].mean(), rel=1e-12)


def test_tuning_runs_real_training_on_the_tuning_seeds():
    table = tune("ste-vanilla", STARTS, [0.1, 1.0, 10.0], {**BUDGET, "steps": 5, "val_batch_size": 64},
                 {"variant": "vanilla"}, CPU64, extend=0)
    assert len(table) == 6 and table.chosen.sum() == 2 and np.isfinite(table.val_loss).any()
    means = table.groupby("lr").val_loss.mean()
    assert float(table[table.chosen].lr.iloc[0]) == float(means.idxmin())
