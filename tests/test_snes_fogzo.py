"""SNES and FOGZO against their definitions: hand-written loops over samples, closed forms on linear
and quadratic losses, and SNES converging (sigma shrinking) on a smooth quadratic."""

import math

import pytest
import torch

from bnnprobe.estimators import fogzo, snes
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.problem import ProbeProblem


class Linear(ProbeProblem):
    """L(w) = a . w, with a fixed "STE gradient" (the guide) that need not be the true gradient a."""

    def __init__(self, a, guide):
        self.a = torch.as_tensor(a, dtype=torch.float64)
        self.guide = torch.as_tensor(guide, dtype=torch.float64)
        self.theta0 = torch.zeros_like(self.a)

    def losses(self, thetas):
        return thetas.double() @ self.a

    def ste_gradient(self, variant, params=None):
        return self.guide


class Quadratic(ProbeProblem):
    """L(w) = sum_i c_i (w_i - t_i)^2, minimum 0 at t."""

    def __init__(self, c, t, theta0):
        self.c, self.t = torch.as_tensor(c, dtype=torch.float64), torch.as_tensor(t, dtype=torch.float64)
        self.theta0 = torch.as_tensor(theta0, dtype=torch.float64)

    def losses(self, thetas):
        return ((thetas.double() - self.t) ** 2 * self.c).sum(dim=1)


# ---- FOGZO -------------------------------------------------------------------------------------------

def test_fogzo_with_full_trust_is_the_measured_slope_along_the_ste_direction():
    """beta = 1 on a linear loss: every direction is +-g_hat, so G = (a . g_hat) g_hat exactly."""
    a, guide = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    got = fogzo.fogzo(Linear(a, guide), n=3, eps=0.1, beta=1.0, seed_parts=("t",))
    g_hat = guide / guide.norm()
    assert torch.allclose(got, (a @ g_hat) * g_hat, atol=1e-12)


def test_fogzo_without_trust_is_unbiased_random_search():
    """beta = 0 on a linear loss: E[G] = E[u u^T] a = a; the mean over many directions is a within its error."""
    a = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    got = fogzo.fogzo(Linear(a, torch.ones(4)), n=20000, eps=0.1, beta=0.0, seed_parts=("t",))
    # each coordinate of (u . a) u has variance |a|^2 + a_i^2: 4 standard errors
    tol = 4 * torch.sqrt((a.norm() ** 2 + a**2) / 20000)
    assert ((got - a).abs() < tol).all(), (got, a)


def test_fogzo_matches_a_plain_loop_over_directions_on_the_mlp():
    problem = MLPProbe(MLPSpec(dim=3, seed=1, batch_size=200, num_batches=1, depth=2), dtype=torch.float64).batch(0)
    eps, beta, n, parts = 0.05, 0.9, 5, ("fogzo-5", 0)
    got = fogzo.fogzo(problem, n, eps, beta, parts)
    ste = problem.ste_gradient("vanilla").double()
    v = fogzo.directions(parts, n, problem.n_coords, beta, ste / ste.norm())
    expected = torch.zeros(problem.n_coords, dtype=torch.float64)
    for i in range(n):
        slope = (problem.loss(problem.theta0 + eps * v[i]) - problem.loss(problem.theta0 - eps * v[i])) / (2 * eps)
        expected += slope * v[i] / n
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_fogzo_directions_mix_the_guide_and_gaussian_noise():
    guide = torch.zeros(50)
    guide[0] = 1.0
    v = fogzo.directions(("d",), 4000, 50, 0.64, guide)
    # coordinate 0: 0.8 s + 0.6 u, variance 0.64 + 0.36 = 1; the others: 0.6 u, variance 0.36
    assert v[:, 0].var().item() == pytest.approx(1.0, abs=0.06)
    assert v[:, 1:].var().item() == pytest.approx(0.36, abs=0.02)
    assert torch.equal(v, fogzo.directions(("d",), 4000, 50, 0.64, guide))


# ---- SNES --------------------------------------------------------------------------------------------

def utilities_by_hand(losses):
    """NES rank utilities from their formula: rank 1 = lowest loss; they sum to 0."""
    m = len(losses)
    order = sorted(range(m), key=lambda k: (losses[k], k))
    raw = [max(0.0, math.log(m / 2 + 1) - math.log(rank)) for rank in range(1, m + 1)]
    total = sum(raw)
    out = [0.0] * m
    for rank, k in enumerate(order, start=1):
        out[k] = raw[rank - 1] / total - 1 / m
    return out


@pytest.mark.parametrize("shaping", [True, False])
def test_snes_gradients_match_a_loop_over_samples(shaping):
    problem = MLPProbe(MLPSpec(dim=3, seed=2, batch_size=300, num_batches=1, depth=2), dtype=torch.float64).batch(0)
    samples, parts = 10, ("snes-10", 3)
    sigma = torch.linspace(0.01, 0.2, problem.n_coords, dtype=torch.float64)
    grad_mu, grad_sigma = snes.natural_gradients(problem, sigma, samples, parts, shaping)
    z_pairs = snes._noise(parts, samples // 2, problem.n_coords)
    zs = torch.cat([z_pairs, -z_pairs])  # sample k and its antithetic partner
    losses = [problem.loss(problem.theta0 + sigma * z) for z in zs]
    mean = sum(losses) / samples
    u = utilities_by_hand(losses) if shaping else [-(loss - mean) / samples for loss in losses]
    expected_mu = sum(u[k] * zs[k] for k in range(samples))
    expected_sigma = sum(u[k] * (zs[k] ** 2 - 1) for k in range(samples))
    assert torch.allclose(grad_mu, expected_mu, atol=1e-12)
    assert torch.allclose(grad_sigma, expected_sigma, atol=1e-12)


def test_snes_update_is_the_natural_gradient_step():
    mu, sigma = torch.tensor([1.0, -1.0]), torch.tensor([0.5, 2.0])
    g_mu, g_sigma = torch.tensor([0.2, -0.4]), torch.tensor([-1.0, 0.5])
    new_mu, new_sigma = snes.update(mu, sigma, g_mu, g_sigma, eta_mu=0.5, eta_sigma=0.1)
    assert torch.allclose(new_mu, torch.tensor([1.0 + 0.5 * 0.5 * 0.2, -1.0 - 0.5 * 2.0 * 0.4]))
    assert torch.allclose(new_sigma, torch.tensor([0.5 * math.exp(-0.05), 2.0 * math.exp(0.025)]))
    assert snes.default_eta_sigma(100) == pytest.approx((3 + math.log(100)) / 50)


def test_snes_converges_on_a_smooth_quadratic_and_sigma_shrinks():
    n = 20
    target = torch.linspace(-1, 1, n, dtype=torch.float64)
    mu, sigma = torch.zeros(n, dtype=torch.float64), torch.full((n,), 0.5, dtype=torch.float64)
    c = torch.linspace(1, 3, n, dtype=torch.float64)
    start = Quadratic(c, target, mu).loss()
    for step in range(400):
        problem = Quadratic(c, target, mu)
        g_mu, g_sigma = snes.natural_gradients(problem, sigma, 20, ("quadratic", step))
        mu, sigma = snes.update(mu, sigma, g_mu, g_sigma, 1.0, snes.default_eta_sigma(n))
    assert Quadratic(c, target, mu).loss() < 1e-3 * start
    assert float(sigma.median()) < 0.05  # from 0.5: the distribution contracts onto the minimum


def test_snes_probe_estimate_is_minus_sigma_times_the_mean_gradient():
    problem = Linear(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64), torch.zeros(3))
    settings = {"samples": 4, "sigma": 0.1, "fitness_shaping": False, "eta_sigma": "auto"}
    got = snes.compute(problem, settings, ("p",))
    g_mu, _ = snes.natural_gradients(problem, torch.full((3,), 0.1, dtype=torch.float64), 4, ("p",), False)
    assert torch.allclose(got, -0.1 * g_mu)
