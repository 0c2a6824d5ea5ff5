"""Span search (span-<P>) against a hand-written loop, and what it estimates: on a linear or quadratic loss
the projection of the gradient onto the span (the whole gradient with a full-space part), on a step
loss the span gradient of the Epanechnikov-smoothed loss (quadrature)."""

import math

import pytest
import torch
from scipy import integrate

from bnnprobe.estimators.guided_es import orthonormal_basis
from bnnprobe.estimators.span_search import span_samples, span_search
from bnnprobe.problem import ProbeProblem


class FunctionProblem(ProbeProblem):
    """A loss written as a function of the rows of ``thetas``."""

    description = "test function"

    def __init__(self, theta0, loss_of):
        self.theta0, self.loss_of = theta0, loss_of

    def losses(self, thetas):
        return self.loss_of(thetas.double())


def setting(n=6, k=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    theta0 = torch.randn(n, generator=gen, dtype=torch.float64)
    guides = torch.randn(k, n, generator=gen, dtype=torch.float64)
    slope = torch.randn(n, generator=gen, dtype=torch.float64)
    return theta0, guides, slope


@pytest.mark.parametrize("density", ["ball", "cube"])
@pytest.mark.parametrize("full_space", [0.0, 0.7])
def test_span_search_equals_a_hand_loop_over_its_samples(density, full_space):
    theta0, guides, slope = setting()
    problem = FunctionProblem(theta0, lambda t: (t @ slope).sin() + (t * t).sum(1))
    sigma, population, seed = 0.1, 10, ("hand",)
    u, z = span_samples(seed, population // 2, 2, 6, density, full_space > 0)
    q, _ = torch.linalg.qr(guides.T)  # an orthonormal basis of the span, computed here
    c = 1 / 4 if density == "ball" else 1 / 3  # E[u_j^2]: 1/(k + 2) on the 2-ball, 1/3 on the cube
    second = c * q @ q.T + full_space**2 / 6 * torch.eye(6, dtype=torch.float64)
    total = torch.zeros(6, dtype=torch.float64)
    for i in range(population // 2):
        v = q @ u[i] + (full_space / math.sqrt(6) * z[i] if z is not None else 0)
        total += (problem.loss(theta0 + sigma * v) - problem.loss(theta0 - sigma * v)) / (2 * sigma) * v
    expected = torch.linalg.pinv(second, hermitian=True) @ total / (population // 2)
    got = span_search(problem, population, sigma, seed, guides, density, full_space)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("density", ["ball", "cube"])
def test_samples_are_uniform_on_the_unit_ball_or_cube(density):
    u, _ = span_samples(("uniform",), 200000, 3, 1, density, False)
    if density == "ball":
        assert float(u.norm(dim=1).max()) <= 1
        # P(|u| <= r) = r^3 in the 3-ball
        for r in (0.5, 0.8):
            assert float((u.norm(dim=1) <= r).double().mean()) == pytest.approx(r**3, abs=0.005)
        torch.testing.assert_close(u.T @ u / len(u), torch.eye(3, dtype=torch.float64) / 5, atol=0.003, rtol=0)
    else:
        assert float(u.abs().max()) <= 1
        assert float((u[:, 0] <= -0.5).double().mean()) == pytest.approx(0.25, abs=0.005)
        torch.testing.assert_close(u.T @ u / len(u), torch.eye(3, dtype=torch.float64) / 3, atol=0.004, rtol=0)


def test_a_populations_noise_is_a_prefix_of_a_larger_ones():
    small, _ = span_samples(("prefix",), 70, 3, 4, "ball", False)
    large, _ = span_samples(("prefix",), 200, 3, 4, "ball", False)
    assert torch.equal(small, large[:70])


@pytest.mark.parametrize("density", ["ball", "cube"])
@pytest.mark.parametrize("curved", [False, True])
def test_on_a_linear_or_quadratic_loss_it_estimates_the_gradients_projection_onto_the_span(density, curved):
    theta0, guides, slope = setting(seed=1)
    curvature = torch.diag(torch.linspace(0.5, 2.0, 6, dtype=torch.float64)) if curved else torch.zeros(6, 6)
    curvature = curvature.double()
    problem = FunctionProblem(theta0, lambda t: t @ slope + 0.5 * ((t @ curvature) * t).sum(1))
    gradient = slope + curvature @ theta0
    basis = orthonormal_basis(guides)
    projection = basis @ (basis.T @ gradient)
    got = span_search(problem, 40000, 0.3, ("linear",), guides, density)
    assert float((got - projection).norm() / projection.norm()) < 0.03
    assert float((got - basis @ (basis.T @ got)).norm()) < 1e-9  # nothing outside the span


def test_with_a_full_space_part_it_estimates_the_whole_gradient():
    theta0, guides, slope = setting(seed=2)
    problem = FunctionProblem(theta0, lambda t: t @ slope)
    got = torch.stack([span_search(problem, 20000, 0.3, ("full", s), guides, "ball", 1.0) for s in range(4)]).mean(0)
    assert float((got - slope).norm() / slope.norm()) < 0.05


def test_on_a_step_loss_the_ball_estimates_the_span_gradient_of_the_epanechnikov_smoothed_loss():
    """L = 1[theta . q >= t] with q a unit vector in a 2-dimensional span: the smoothed loss along the span,
    E_psi[L(w + sigma U u)] with psi = (2/pi)(1 - |u|^2) on the unit disc, has the gradient
    q psi_q((t - w . q)/sigma) / sigma, psi_q the density of u . e (integrated here over the disc's chord)."""
    theta0, guides, _ = setting(n=4, seed=3)
    basis = orthonormal_basis(guides)
    e = torch.tensor([0.6, 0.8], dtype=torch.float64)
    q = basis @ e
    sigma, threshold = 0.5, float(theta0 @ q) + 0.2
    problem = FunctionProblem(theta0, lambda t: (t @ q >= threshold).double())
    s = (threshold - float(theta0 @ q)) / sigma
    chord = math.sqrt(1 - s * s)
    marginal, _ = integrate.quad(lambda r: 2 / math.pi * (1 - s * s - r * r), -chord, chord)
    expected = q * marginal / sigma
    runs = torch.stack([span_search(problem, 100000, sigma, ("step", i), guides, "ball") for i in range(8)])
    mean, se = runs.mean(0), runs.std(0) / math.sqrt(len(runs))
    assert torch.all((mean - expected).abs() <= 5 * se + 1e-12), (mean - expected) / se
    # not the gradient of the loss smoothed by the uniform density itself (its marginal: 2 chord / pi)
    assert abs(float(mean @ q) * sigma - 2 * chord / math.pi) > 10 * float(se.norm()) * sigma
