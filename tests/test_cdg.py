"""CDG: the exact fast path against the plain per-coordinate perturbation loop."""

import numpy as np
import pytest
import torch

from bnnprobe.estimators.cdg import cdg, cdg_batched, cdg_loop
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.problem import ProbeProblem
from reference import layers_from_theta, mse


def mlp_problem(dim, seed, activation, dtype=torch.float64, batch_size=3000, depth=3):
    spec = MLPSpec(dim=dim, seed=seed, batch_size=batch_size, num_batches=1, activation=activation, depth=depth)
    return MLPProbe(spec, dtype=dtype, memory_budget_mb=8).batch(0)


def numpy_cdg(p, eps, scheme, dim, depth=3):
    """Independent reference: perturb each coordinate and recompute the loss with NumPy."""
    x, y, theta = p.x.numpy().astype(float), p.y.numpy().astype(float), p.theta0.numpy().astype(float)
    base = mse(layers_from_theta(theta, dim, depth), x, y, p.activation)
    grad = np.empty_like(theta)
    for i in range(theta.size):
        plus = theta.copy()
        plus[i] += eps
        lp = mse(layers_from_theta(plus, dim, depth), x, y, p.activation)
        if scheme == "forward":
            grad[i] = (lp - base) / eps
        else:
            minus = theta.copy()
            minus[i] -= eps
            grad[i] = (lp - mse(layers_from_theta(minus, dim, depth), x, y, p.activation)) / (2 * eps)
    return grad


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
@pytest.mark.parametrize("dim,seed", [(2, 1), (3, 5), (6, 1)])
@pytest.mark.parametrize("scheme", ["forward", "central"])
def test_exact_cdg_equals_numpy_perturbation_loop(activation, dim, seed, scheme):
    p = mlp_problem(dim, seed, activation)
    fast = cdg(p, 0.05, scheme).numpy()
    ref = numpy_cdg(p, 0.05, scheme, dim)
    # identical flips: the same coordinates are exactly zero in both
    np.testing.assert_array_equal(fast == 0, np.abs(ref) < 1e-12)
    np.testing.assert_allclose(fast, ref, rtol=1e-8, atol=1e-10)
    assert np.count_nonzero(ref) > 0.3 * ref.size  # hidden-layer flips happen: not only the output layer


def test_exact_cdg_on_a_deeper_network():
    p = mlp_problem(3, 2, "sign", depth=4)
    np.testing.assert_allclose(cdg(p, 0.05).numpy(), numpy_cdg(p, 0.05, "forward", 3, depth=4), rtol=1e-8,
                               atol=1e-10)


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
def test_exact_cdg_float32_matches_loop(activation):
    p = mlp_problem(8, 4, activation, dtype=torch.float32, batch_size=4000)
    fast, loop = cdg(p, 0.05), cdg_loop(p, 0.05)
    scale = float(loop.abs().max())
    torch.testing.assert_close(fast, loop, rtol=1e-3, atol=1e-4 * scale)


def test_generic_paths_agree_on_a_non_mlp_problem():
    class Quartic(ProbeProblem):
        def __init__(self):
            self.theta0 = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)

        def losses(self, thetas):
            return (thetas**4).sum(dim=1) + thetas[:, 0] * thetas[:, 1]

    p, eps = Quartic(), 1e-3
    w = p.theta0.numpy()
    # closed form of the forward difference of x^4 and of the cross term
    closed = np.array([
        ((w[0] + eps) ** 4 - w[0] ** 4) / eps + w[1],
        ((w[1] + eps) ** 4 - w[1] ** 4) / eps + w[0],
        ((w[2] + eps) ** 4 - w[2] ** 4) / eps,
    ])
    for fn in (cdg, cdg_batched, cdg_loop):
        np.testing.assert_allclose(fn(p, eps).numpy(), closed, rtol=1e-9)


def test_invalid_cdg_settings():
    p = mlp_problem(2, 0, "sign")
    with pytest.raises(ValueError, match="eps"):
        cdg(p, 0.0)
    with pytest.raises(ValueError, match="scheme"):
        cdg(p, 0.1, "backward")
