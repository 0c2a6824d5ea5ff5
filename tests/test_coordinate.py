"""Per-coordinate Gaussian search: the exact smoothed coordinate gradient against numerical
integration, the log's per-parameter NES against a plain sampling loop and against its limit."""

import math

import numpy as np
import pytest
import torch

from bnnprobe.estimators import estimate
from bnnprobe.estimators.cdg import cdg
from bnnprobe.estimators.nes_coord import COORD_BLOCK, coordinate_noise, nes_coordinate
from bnnprobe.estimators.smoothed import smoothed
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.problem import ProbeProblem
from reference import batched_mse, layers_from_theta, mse


def mlp_problem(dim, seed, activation, batch_size=40, depth=3, dtype=torch.float64, budget=8.0):
    spec = MLPSpec(dim=dim, seed=seed, batch_size=batch_size, num_batches=1, activation=activation, depth=depth)
    return MLPProbe(spec, dtype=dtype, memory_budget_mb=budget).batch(0)


def quadrature_smoothed(p, sigma, dim, depth, points=20_001):
    """d/dmu E_z[L(w + (mu + sigma z) e_i)] at 0 = E[L(w + sigma z e_i) z] / sigma, by the trapezoid rule
    over z in [-10, 10], with NumPy's own forward pass."""
    x, y, theta = p.x.numpy(), p.y.numpy(), p.theta0.numpy()
    z = np.linspace(-10, 10, points)
    density = np.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
    grad = np.empty(theta.size)
    for i in range(theta.size):
        thetas = np.repeat(theta[None], points, axis=0)
        thetas[:, i] += sigma * z
        losses = batched_mse(thetas, dim, depth, x, y, p.activation)
        grad[i] = np.trapezoid(losses * z * density, z) / sigma
    return grad


@pytest.mark.parametrize("activation,dim,seed,depth,sigma", [
    ("zero_one", 3, 1, 3, 0.05), ("sign", 3, 4, 3, 0.2), ("zero_one", 2, 2, 4, 0.1), ("sign", 2, 0, 4, 0.02)])
def test_smoothed_gradient_equals_numerical_integration(activation, dim, seed, depth, sigma):
    p = mlp_problem(dim, seed, activation, depth=depth)
    exact = smoothed(p, sigma).numpy()
    ref = quadrature_smoothed(p, sigma, dim, depth)
    hidden = slice(0, (depth - 1) * dim * (dim + 1))
    assert np.count_nonzero(np.abs(ref[hidden]) > 1e-6) > 0.3 * ref[hidden].size  # the flips matter
    np.testing.assert_allclose(exact, ref, rtol=5e-3, atol=5e-3 * np.abs(ref).max())


def test_smoothed_gradient_does_not_depend_on_chunking_or_dtype():
    p = mlp_problem(6, 3, "zero_one", batch_size=2000, budget=64)
    small = mlp_problem(6, 3, "zero_one", batch_size=2000, budget=0.01)
    f32 = mlp_problem(6, 3, "zero_one", batch_size=2000, dtype=torch.float32)
    ref = smoothed(p, 0.05)
    torch.testing.assert_close(smoothed(small, 0.05), ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(smoothed(f32, 0.05).double(), ref, rtol=1e-3, atol=1e-4 * float(ref.abs().max()))


def plain_nes_loop(p, samples, sigma, seed_parts, dim, depth):
    """The log's per-parameter NES written from its definition: for each coordinate on its own, M/2
    antithetic pairs, fitness -loss, score functions z / sigma and (z^2 - 1) / sigma, NumPy losses."""
    x, y, theta = p.x.numpy(), p.y.numpy(), p.theta0.numpy()
    base = mse(layers_from_theta(theta, dim, depth), x, y, p.activation)
    z_all = coordinate_noise(seed_parts, 0, theta.size, samples // 2).numpy()
    grad_mu_j, grad_sigma_j = np.zeros(theta.size), np.zeros(theta.size)
    for i in range(theta.size):
        for z in z_all[i]:
            for s in (z, -z):  # each sample of the pair
                w = theta.copy()
                w[i] += sigma * s
                fitness = -mse(layers_from_theta(w, dim, depth), x, y, p.activation)
                grad_mu_j[i] += (fitness + base) * s / sigma / samples
                grad_sigma_j[i] += (fitness + base) * (s * s - 1) / sigma / samples
    return grad_mu_j, grad_sigma_j


@pytest.mark.parametrize("activation,depth", [("zero_one", 3), ("sign", 4)])
def test_per_parameter_nes_equals_a_plain_sampling_loop(activation, depth):
    p = mlp_problem(3, 2, activation, depth=depth)
    sigma, samples, parts = 0.1, 16, ("nes-coord-16", 3, 2, 0)
    grad, extras = nes_coordinate(p, samples, sigma, parts)
    mu_j, sigma_j = plain_nes_loop(p, samples, sigma, parts, 3, depth)
    np.testing.assert_allclose(grad.numpy(), -mu_j, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(extras["loss_grad_sigma"].numpy(), -sigma_j, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(extras["natural_loss_grad_mu"].numpy(), -sigma**2 * mu_j, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(extras["natural_loss_grad_sigma"].numpy(), -sigma**2 / 2 * sigma_j, rtol=1e-5,
                               atol=1e-9)
    assert np.count_nonzero(grad.numpy()[: (depth - 1) * 12]) > 0  # hidden coordinates move too


def test_per_parameter_nes_on_a_problem_without_flips_uses_the_generic_path():
    class Quadratic(ProbeProblem):
        """L = sum c_i w_i^2 + w_0 w_1: the per-coordinate search gradient has a closed form given the z."""
        def __init__(self):
            self.theta0 = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
            self.c = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)

        def losses(self, thetas):
            return (self.c * thetas**2).sum(dim=1) + thetas[:, 0] * thetas[:, 1]

    p, sigma, samples = Quadratic(), 0.3, 200
    grad, extras = nes_coordinate(p, samples, sigma, ("q",))
    z = coordinate_noise(("q",), 0, 3, samples // 2)
    w = p.theta0
    slope = 2 * p.c * w + torch.stack([w[1], w[0], torch.zeros(())])
    # dL(t) = slope t + c t^2: antithetic pairs keep 2 slope sigma z in the mu estimate, 2 c sigma^2 z^2 in sigma's
    torch.testing.assert_close(grad, slope * (z * z).sum(1) / (samples / 2), rtol=1e-10, atol=1e-12)
    expect_sigma = (2 * p.c[:, None] * sigma**2 * z * z * (z * z - 1)).sum(1) / (samples * sigma)
    torch.testing.assert_close(extras["loss_grad_sigma"].double(), expect_sigma, rtol=1e-6, atol=1e-7)


def test_per_parameter_nes_converges_to_the_smoothed_gradient():
    p = mlp_problem(3, 1, "sign", batch_size=200)
    sigma, samples = 0.1, 20_000
    grad, _ = nes_coordinate(p, samples, sigma, ("conv", 0))
    exact = smoothed(p, sigma)
    # per-pair terms give each coordinate's standard error
    z = coordinate_noise(("conv", 0), 0, p.n_coords, samples // 2)
    changes = p.coordinate_loss_changes(torch.arange(p.n_coords), torch.cat([sigma * z, -sigma * z], 1))
    terms = (changes[:, : samples // 2] - changes[:, samples // 2:]) * z / (2 * sigma)
    se = terms.std(dim=1) / math.sqrt(samples // 2)
    moving = se > 0
    ratio = ((grad - exact)[moving] / se[moving]).numpy()
    assert moving.sum() > 20
    assert np.abs(ratio).max() < 5.0
    assert 0.3 < np.mean(ratio**2) < 2.5  # the standard errors are the right size, not merely large
    assert float(torch.nn.functional.cosine_similarity(grad, exact, dim=0)) > 0.99


def test_coordinate_noise_does_not_depend_on_blocks():
    whole = coordinate_noise(("n",), 0, 3 * COORD_BLOCK, 5)
    torch.testing.assert_close(coordinate_noise(("n",), COORD_BLOCK, 2 * COORD_BLOCK + 7, 5),
                               whole[COORD_BLOCK: 2 * COORD_BLOCK + 7])


def test_smoothed_gradient_as_sigma_goes_to_zero():
    """With finitely many samples nothing flips within a tiny sigma: the binary layers' smoothed
    derivatives vanish and the output layer's is the plain gradient, exactly what CDG gives as eps -> 0."""
    p = mlp_problem(4, 0, "zero_one", batch_size=500)
    tiny = 1e-9
    g = smoothed(p, tiny)
    hidden = 2 * 4 * 5
    assert torch.count_nonzero(g[:hidden]) == 0
    layers = [t[0].clone().requires_grad_(True) for t in p.unpack(p.theta0.reshape(1, -1))]
    h = p.x
    for k, layer in enumerate(layers):
        z = h @ layer[:, :-1].T + layer[:, -1]
        h = z if k == 2 else (z.detach() >= 0.5).double()
    loss = ((h - p.y) ** 2).mean()
    autograd = torch.autograd.grad(loss, layers[2])[0].reshape(-1)
    torch.testing.assert_close(g[hidden:], autograd, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(cdg(p, tiny, "central"), g, rtol=1e-5, atol=1e-9)


def test_registry_runs_both_by_instance_name():
    p = mlp_problem(3, 1, "sign")
    a = estimate("smoothed_sigma0.05", p, {"sigma": 0.05})
    torch.testing.assert_close(a.gradient, smoothed(p, 0.05))
    b = estimate("nes-coord-8_sigma0.1", p, {"samples": 8, "sigma": 0.1}, seed_parts=(1,))
    c, extras = nes_coordinate(p, 8, 0.1, ("nes-coord-8", 1))
    torch.testing.assert_close(b.gradient, c)
    assert b.n_loss_evals == 8 * p.n_coords and set(b.extras) == set(extras)
