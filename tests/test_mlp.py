"""The MLP probe problem against a NumPy reference: losses, batched losses, STE gradients."""

import numpy as np
import pytest
import torch

from bnnprobe.binary import STE_VARIANTS
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.problem import NonFiniteLossError
from reference import flatten, layers_from_theta, mse, ste_backprop


def problem(dim=5, seed=3, activation="zero_one", dtype=torch.float64, batch_size=700):
    spec = MLPSpec(dim=dim, seed=seed, batch_size=batch_size, num_batches=2, activation=activation)
    return MLPProbe(spec, dtype=dtype, memory_budget_mb=16).batch(1)


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
@pytest.mark.parametrize("sample_block", [8192, 96])
def test_batched_losses_match_numpy_reference(activation, sample_block):
    p = problem(activation=activation)
    p.sample_block = sample_block  # 96: the 700 samples are summed over 8 blocks
    rng = np.random.default_rng(0)
    thetas = p.theta0.numpy()[None, :] + 0.05 * rng.standard_normal((7, p.n_coords))
    x, y = p.x.numpy(), p.y.numpy()
    expected = [mse(layers_from_theta(t, 5, 3), x, y, activation) for t in thetas]
    got = p.losses(torch.from_numpy(thetas)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("sample_block", [8192, 128])
def test_paired_losses_match_separate_evaluations(sample_block):
    p = problem(activation="sign", dtype=torch.float32)
    p.sample_block = sample_block
    deltas = 0.01 * torch.randn(9, p.n_coords, generator=torch.Generator().manual_seed(1))
    plus, minus = p.paired_losses(p.theta0, deltas)
    torch.testing.assert_close(plus, p.losses(p.theta0 + deltas), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(minus, p.losses(p.theta0 - deltas), rtol=1e-5, atol=1e-7)


def test_teacher_labels_and_batches_are_deterministic():
    a, b = problem(), problem()
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.theta0, b.theta0)
    spec = MLPSpec(dim=5, seed=3, batch_size=700, num_batches=2)
    other_batch = MLPProbe(spec, dtype=torch.float64).batch(0)
    assert not torch.equal(a.x, other_batch.x)
    other_seed = problem(seed=4)
    assert not torch.equal(a.theta0, other_seed.theta0)
    # the teacher does not depend on the student seed
    x = a.x.numpy()
    teacher = MLPProbe(spec).teacher
    ref = mse([(t[:, :-1].numpy(), t[:, -1].numpy()) for t in teacher], x, a.y.numpy(), "zero_one")
    assert ref == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
@pytest.mark.parametrize("variant", STE_VARIANTS)
def test_ste_gradient_matches_hand_written_backprop(activation, variant):
    p = problem(dim=4, activation=activation)
    layers = layers_from_theta(p.theta0.numpy(), 4, 3)
    expected = flatten(ste_backprop(layers, p.x.numpy(), p.y.numpy(), activation, variant))
    np.testing.assert_allclose(p.ste_gradient(variant).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_nan_loss_stops_with_a_message():
    p = problem()
    bad = p.theta0.clone()
    bad[3] = float("nan")
    with pytest.raises(NonFiniteLossError, match="NaN or infinite"):
        p.losses(bad[None])


def test_invalid_spec_is_rejected():
    with pytest.raises(ValueError):
        MLPSpec(dim=0, seed=0, batch_size=10, num_batches=1)
    with pytest.raises(ValueError, match="activation"):
        MLPSpec(dim=2, seed=0, batch_size=10, num_batches=1, activation="tanh")


@pytest.mark.parametrize("dim", [2, 3, 4])
def test_teacher_has_no_constant_hidden_unit(dim):
    """The plain first draw at dim 2 ({0,1}) is dead: constant labels. The teacher is redrawn."""
    p = MLPProbe(MLPSpec(dim=dim, seed=0, batch_size=5000, num_batches=1))
    x = p.batch(0).x.double().numpy()
    h = x
    for w in p.teacher[:-1]:
        h = (h @ w[:, :-1].numpy().T + w[:, -1].numpy() >= 0.5).astype(float)
        assert ((h.mean(axis=0) > 0) & (h.mean(axis=0) < 1)).all()
    assert p.batch(0).y.var() > 0


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_paired_losses_equal_numpy_forward_passes(activation, depth):
    """NES's antithetic losses (shared first layer, chunks, sample blocks) against NumPy forward passes."""
    spec = MLPSpec(dim=5, seed=1, batch_size=900, num_batches=1, activation=activation, depth=depth)
    p = MLPProbe(spec, dtype=torch.float64, memory_budget_mb=1).batch(0)
    p.sample_block = 200  # several sample blocks and several chunks of pairs
    deltas = 0.05 * torch.randn(13, p.n_coords, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plus, minus = p.paired_losses(p.theta0, deltas)
    x, y, w = p.x.numpy(), p.y.numpy(), p.theta0.numpy()
    for k, d in enumerate(deltas.numpy()):
        assert plus[k].item() == pytest.approx(mse(layers_from_theta(w + d, 5, depth), x, y, activation), rel=1e-11)
        assert minus[k].item() == pytest.approx(mse(layers_from_theta(w - d, 5, depth), x, y, activation), rel=1e-11)


def test_a_teacher_per_seed_makes_each_seed_an_independent_teacher_student_draw():
    def teacher(seed, design):
        return MLPProbe(MLPSpec(dim=4, seed=seed, batch_size=16, num_batches=1, teacher=design)).teacher

    shared = [teacher(s, "shared") for s in (0, 1)]
    own = [teacher(s, "per_seed") for s in (0, 1)]
    assert all(torch.equal(a, b) for a, b in zip(*shared))  # one teacher for every student
    assert not all(torch.equal(a, b) for a, b in zip(*own))  # each student its own
    assert not all(torch.equal(a, b) for a, b in zip(shared[0], own[0]))
    with pytest.raises(ValueError, match="teacher design"):
        MLPSpec(dim=4, seed=0, batch_size=16, num_batches=1, teacher="each")
