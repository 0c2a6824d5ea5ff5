"""Training the student: plateau detection on hand-made curves, schedules, SGD with CDG against a
hand-written loop, the switch, kill-and-resume, NaN."""

import numpy as np
import pandas as pd
import pytest
import torch

from bnnprobe.device import Compute
from bnnprobe.estimators import estimate
from bnnprobe.mlp import MLPProbe, pack
from bnnprobe.problem import NonFiniteLossError
from bnnprobe.seeding import generator
from bnnprobe.training.schedule import ScheduleError, parse_schedule, plateaued
from bnnprobe.training.trainer import StudentTrainer, TrainingSpec, train_student
from reference import forward, layers_from_theta, mse

CPU64 = Compute.from_config({"device": "cpu", "dtype": "float64"})
CDG = {"eps": 0.05, "scheme": "forward"}
SETTINGS = {"cdg": CDG, "ste-vanilla": {"variant": "vanilla"}}


def spec(**overrides):
    base = dict(dim=2, seed=1, schedule="cdg", steps=6, batch_size=64, val_batch_size=500, eval_every=2, lr=0.2)
    return TrainingSpec(**{**base, **overrides})


@pytest.mark.parametrize("curve,window,tol,expected", [
    ([1.0, 0.9, 0.8, 0.7], 2, 0.05, False),     # still improving by 22% over 2 evaluations
    ([1.0, 0.9, 0.899, 0.898], 2, 0.05, True),   # 0.2% over the last 2
    ([1.0, 0.99], 2, 0.05, False),               # not enough evaluations yet
    ([1.0, 1.0, 1.1], 1, 0.01, True),            # got worse
    ([2.0, 1.0, 0.5], 2, 0.7, False),            # 75% improvement >= 70%
])
def test_plateau_on_hand_made_curves(curve, window, tol, expected):
    assert plateaued(curve, window, tol) is expected


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


def reference_sgd_with_cdg(s: TrainingSpec):
    """From the definitions: the same batches, a plain per-coordinate forward-difference CDG, w - lr g."""
    probe = MLPProbe(s.mlp_spec())
    teacher = [(t[:, :-1].numpy(), t[:, -1].numpy()) for t in probe.teacher]
    theta = pack(probe.student).numpy().copy()
    val_x = torch.randn(s.val_batch_size, s.dim, dtype=torch.float64, generator=generator("training-val", s.dim)).numpy()
    val_y = forward(teacher, val_x, s.activation)[0]
    vals = []
    for step in range(s.steps + 1):
        if step % s.eval_every == 0:
            vals.append(mse(layers_from_theta(theta, s.dim, s.depth), val_x, val_y, s.activation))
        if step == s.steps:
            break
        x = torch.randn(s.batch_size, s.dim, dtype=torch.float64,
                        generator=generator("training-batch", s.dim, s.seed, step)).numpy()
        y = forward(teacher, x, s.activation)[0]
        base = mse(layers_from_theta(theta, s.dim, s.depth), x, y, s.activation)
        grad = np.empty_like(theta)
        for i in range(len(theta)):
            moved = theta.copy()
            moved[i] += CDG["eps"]
            grad[i] = (mse(layers_from_theta(moved, s.dim, s.depth), x, y, s.activation) - base) / CDG["eps"]
        theta = theta - s.lr * grad
    return theta, vals


def test_sgd_with_cdg_equals_a_hand_written_loop(tmp_path):
    s = spec()
    result = train_student(s, {"cdg": CDG}, tmp_path / "ck.pt", CPU64)
    theta, vals = reference_sgd_with_cdg(s)
    np.testing.assert_allclose(result.snapshots["end"]["theta"].numpy(), theta, rtol=1e-9, atol=1e-12)
    assert list(result.curve.step) == [0, 2, 4, 6]
    np.testing.assert_allclose(result.curve.val_loss.to_numpy(), vals, rtol=1e-10)
    assert list(result.curve.cumulative_loss_evals) == [0, 2 * 19, 4 * 19, 6 * 19]  # 18 coordinates + 1
    assert result.curve.val_loss.iloc[-1] < result.curve.val_loss.iloc[0]  # it learns


def test_a_switch_happens_at_the_recorded_step_and_uses_the_second_estimator(tmp_path):
    s = spec(schedule="ste-vanilla>cdg", steps=8, switch_at=4)
    result = train_student(s, SETTINGS, tmp_path / "ck.pt", CPU64)
    assert result.switch_step == 4
    assert list(result.curve.estimator) == ["ste-vanilla"] * 3 + ["cdg"] * 2  # evaluations at 0, 2, 4 | 6, 8
    # replay from the definitions: STE steps before the switch, CDG steps after it
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    theta = trainer.theta.detach().clone()
    for step in range(s.steps):
        name = "ste-vanilla" if step < 4 else "cdg"
        with torch.no_grad():
            trainer.theta.copy_(theta)
        g = estimate(name, trainer.batch_problem(step), SETTINGS[name], seed_parts=("training", 2, 1, step)).gradient
        theta = theta - s.lr * g.double()
    torch.testing.assert_close(result.snapshots["end"]["theta"], theta, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(result.snapshots["plateau"]["theta"], result.snapshots["f50"]["theta"])


def test_plateau_switch_without_a_fixed_step(tmp_path):
    s = spec(schedule="ste-vanilla>cdg", steps=40, eval_every=2, plateau_window=2, plateau_rel_tol=0.5, lr=0.05)
    result = train_student(s, SETTINGS, tmp_path / "ck.pt", CPU64)
    curve = result.curve.set_index("step")
    assert result.switch_step is not None
    vals = list(curve.val_loss.loc[:result.switch_step])
    assert plateaued(vals, 2, 0.5) and not any(plateaued(vals[:i], 2, 0.5) for i in range(1, len(vals)))
    assert set(curve.estimator.loc[result.switch_step + 1:]) == {"cdg"}


def test_killed_run_resumes_to_the_same_curve(tmp_path, monkeypatch):
    s = spec(schedule="ste-vanilla>cdg", steps=10, switch_at=4, optimizer="adam", lr=0.05)
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
    assert torch.load(tmp_path / "b.pt", weights_only=True)["state"]["step"] == 6  # the last evaluation
    resumed = train_student(s, SETTINGS, tmp_path / "b.pt", CPU64)
    pd.testing.assert_frame_equal(straight.curve.drop(columns="seconds"), resumed.curve.drop(columns="seconds"))
    torch.testing.assert_close(straight.snapshots["end"]["theta"], resumed.snapshots["end"]["theta"], rtol=0, atol=0)


def test_nan_stops_the_run_with_a_message(tmp_path):
    s = spec(lr=1e308, steps=4, eval_every=1)
    with pytest.raises(NonFiniteLossError, match="lower training.lr"):
        train_student(s, {"cdg": CDG}, tmp_path / "ck.pt", CPU64)


def _curves():
    """Hand-made curves: 'a' alone and 'a>b' at dim 4, seeds 0..2; final losses chosen by hand."""
    finals = {("a", 0): 0.5, ("a", 1): 0.6, ("a", 2): 0.7, ("a>b", 0): 0.3, ("a>b", 1): 0.42, ("a>b", 2): 0.49}
    rows = []
    for (schedule, seed), final in finals.items():
        for step, val in ((0, 1.0), (10, 0.2 + final), (20, final)):
            rows.append({"schedule": schedule, "dim": 4, "seed": seed, "step": step, "estimator": schedule[-1],
                         "train_loss": val, "val_loss": val, "cumulative_loss_evals": step * 3, "seconds": 0.0,
                         "switch_step": 10 if ">" in schedule else None})
    return pd.DataFrame(rows), finals


def test_final_table_and_switch_comparison_against_hand_computation():
    from scipy import stats

    from bnnprobe.training.tables import curves_table, final_table, findings_markdown, switch_comparisons

    frame, finals = _curves()
    curves = curves_table([frame])
    final = final_table(curves).set_index("schedule")
    a = np.array([finals["a", s] for s in range(3)])
    assert final.loc["a", "final_val_loss_mean"] == pytest.approx(a.mean())
    half = stats.t.ppf(0.975, 2) * a.std(ddof=1) / np.sqrt(3)
    assert final.loc["a", "final_val_loss_ci95_high"] == pytest.approx(a.mean() + half)
    assert final.loc["a>b", "switch_step_mean"] == 10 and final.loc["a", "loss_evals_mean"] == 60
    (row,) = switch_comparisons(curves).itertuples()
    diff = np.array([finals["a>b", s] - finals["a", s] for s in range(3)])  # -0.2, -0.18, -0.21
    assert row.difference_mean == pytest.approx(diff.mean())
    half = stats.t.ppf(0.975, 2) * diff.std(ddof=1) / np.sqrt(3)
    assert row.difference_ci95_high == pytest.approx(diff.mean() + half) and row.difference_ci95_high < 0
    text = findings_markdown(switch_comparisons(curves), final_table(curves))
    assert "**smaller**" in text and "lowered the final validation loss in 1 and raised it in 0" in text


def test_findings_say_so_when_the_difference_is_unclear():
    from bnnprobe.training.tables import curves_table, final_table, findings_markdown, switch_comparisons

    frame, _ = _curves()
    frame.loc[(frame.schedule == "a>b") & (frame.seed == 1) & (frame.step == 20), "val_loss"] = 0.9
    curves = curves_table([frame])
    text = findings_markdown(switch_comparisons(curves), final_table(curves))
    assert "indistinguishable" in text and "lowered the final validation loss in 0" in text


def test_the_phase_probe_at_step_0_is_the_init_probe(tmp_path):
    from bnnprobe.io import save_torch
    from bnnprobe.mlp.source import SOURCE as MLP
    from bnnprobe.study import compute_record
    from bnnprobe.training.source import SOURCE as PHASE

    s = spec(schedule="ste-vanilla", steps=4, eval_every=2)
    result = train_student(s, SETTINGS, tmp_path / "ck.pt", CPU64)
    save_torch({"snapshots": result.snapshots}, tmp_path / "snapshots.pt")
    mlp_spec = s.mlp_spec(batch_size=200, num_batches=2).as_dict()
    phase_spec = {**mlp_spec, "schedule": "ste-vanilla", "phase": "init", "snapshots": str(tmp_path / "snapshots.pt")}
    for name, settings in (("cdg", CDG), ("ste-vanilla", SETTINGS["ste-vanilla"])):
        init = compute_record(MLP, mlp_spec, name, settings, CPU64)
        phase = compute_record(PHASE, phase_spec, name, settings, CPU64)
        torch.testing.assert_close(phase["gradients"], init["gradients"], rtol=0, atol=0)
        assert phase["key"] == {"schedule": "ste-vanilla", "phase": "init", "step": 0, "dim": 2, "seed": 1}
    # at the end the student is the trained one: its loss on the probe's batches is the loss of the end weights
    end = compute_record(PHASE, {**phase_spec, "phase": "end"}, "cdg", CDG, CPU64)
    trainer = StudentTrainer(s, SETTINGS, CPU64)
    probe = MLPProbe(s.mlp_spec(batch_size=200, num_batches=2), dtype=torch.float64)
    problem = probe.batch(0)
    assert end["loss_before"][0] == pytest.approx(problem.loss(result.snapshots["end"]["theta"]), rel=1e-12)
    assert end["key"]["step"] == 4 and trainer.spec == s


def test_cosine_trend_and_rankings_against_hand_computation():
    from scipy import stats

    from bnnprobe.training.tables import cosine_trend, phase_findings_markdown, ste_rankings

    rows = []
    cos = {("init", 0): 0.9, ("init", 1): 0.8, ("init", 2): 0.85, ("end", 0): 0.5, ("end", 1): 0.45, ("end", 2): 0.6}
    for (phase, seed), value in cos.items():
        for lr in (0.1, 1.0):  # rows of several lrs share one gradient: counted once
            rows.append({"schedule": "ste-vanilla", "estimator": "ste-vanilla", "phase": phase, "dim": 4,
                         "seed": seed, "batch": 0, "lr": lr, "cos_to_cdg": value})
    (trend,) = cosine_trend(pd.DataFrame(rows)).itertuples()
    diff = np.array([cos["end", s] - cos["init", s] for s in range(3)])
    assert trend.n == 3 and trend.difference_mean == pytest.approx(diff.mean())
    assert trend.difference_ci95_high == pytest.approx(diff.mean() + stats.t.ppf(0.975, 2) * diff.std(ddof=1) / 3**0.5)
    best = pd.DataFrame([{"schedule": "ste-vanilla", "dim": 4, "estimator": e, "phase": p, "loss_decrease_mean": v}
                         for e, p, v in [("ste-vanilla", "init", 0.3), ("ste-steep", "init", 0.2),
                                         ("ste-swishsign", "init", 0.1), ("ste-vanilla", "end", 0.01),
                                         ("ste-steep", "end", 0.03), ("ste-swishsign", "end", 0.02),
                                         ("cdg", "init", 0.5)]])
    (ranking,) = ste_rankings(best).itertuples()
    assert ranking.ranking_init == "ste-vanilla > ste-steep > ste-swishsign"
    assert ranking.ranking_end == "ste-steep > ste-swishsign > ste-vanilla" and not ranking.same_order
    assert ranking.kendall_tau == pytest.approx(stats.kendalltau([0.3, 0.2, 0.1], [0.01, 0.03, 0.02]).statistic)
    text = phase_findings_markdown(cosine_trend(pd.DataFrame(rows)), ste_rankings(best))
    assert "**smaller**" in text and "matched the one at initialisation at 0 of 1" in text
