"""NES and guided ES against closed-form Gaussian-smoothed gradients, and batched vs per-sample paths."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from bnnprobe.estimators.guided_es import guided_es, orthonormal_basis
from bnnprobe.estimators.nes import nes, rank_utilities
from bnnprobe.estimators.sampling import noise_blocks
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.problem import ProbeProblem


class CosineLoss(ProbeProblem):
    """L(w) = sum_i cos(w_i). Under w + eps, eps ~ N(0, S): J(mu) = sum_i exp(-S_ii / 2) cos(mu_i)."""

    def __init__(self, theta0, guides=None):
        self.theta0 = torch.as_tensor(theta0, dtype=torch.float64)
        self.guides = guides

    def losses(self, thetas):
        return torch.cos(thetas).sum(dim=1)

    def ste_gradient(self, variant, params=None):
        return self.guides[variant]


class StepLoss(ProbeProblem):
    """A binary loss: L(w) = sum_i 1[w_i >= 0]. Smoothed with N(0, s^2 I): dJ/dmu_i = phi(mu_i / s) / s."""

    def __init__(self, theta0):
        self.theta0 = torch.as_tensor(theta0, dtype=torch.float64)

    def losses(self, thetas):
        return (thetas >= 0).double().sum(dim=1)


def repeated(estimator, runs=12):
    grads = np.stack([estimator(seed).numpy() for seed in range(runs)])
    return grads.mean(axis=0), grads.std(axis=0, ddof=1) / math.sqrt(runs)


def assert_within(mean, sem, truth, z=4.5):
    """Statistical tolerance: each coordinate within z standard errors (plus a tiny floor)."""
    assert np.all(np.abs(mean - truth) <= z * sem + 1e-9), (mean, truth, sem)


@pytest.mark.parametrize("fitness_shaping", [False])
def test_nes_estimates_the_smoothed_gradient_of_a_cosine(fitness_shaping):
    mu, sigma = np.array([0.3, -1.1, 2.0, 0.0, 1.4]), 0.8
    problem = CosineLoss(mu)
    mean, sem = repeated(lambda s: nes(problem, 2000, sigma, ("cos", s), fitness_shaping))
    truth = -math.exp(-sigma**2 / 2) * np.sin(mu)  # differs from the true gradient -sin(mu) by 27%
    assert_within(mean, sem, truth)
    assert np.abs(mean + np.sin(mu)).max() > 5 * sem.max()  # and is distinguishable from it


def test_nes_estimates_the_smoothed_gradient_of_a_step():
    mu, sigma = np.array([0.05, -0.1, 0.3, -0.02]), 0.2
    problem = StepLoss(mu)
    mean, sem = repeated(lambda s: nes(problem, 4000, sigma, ("step", s)))
    truth = stats.norm.pdf(mu / sigma) / sigma
    assert_within(mean, sem, truth)


def test_guided_es_matches_its_closed_form_expectation():
    n, sigma, alpha, beta = 6, 0.7, 0.5, 1.0
    mu = np.linspace(-1.5, 1.2, n)
    rng = np.random.default_rng(3)
    guides = {v: torch.from_numpy(rng.standard_normal(n)) for v in ("vanilla", "swishsign")}
    problem = CosineLoss(mu, guides)
    stacked = torch.stack(list(guides.values()))
    mean, sem = repeated(lambda s: guided_es(problem, 4000, sigma, ("g", s), stacked, alpha, beta))
    # E[g] = beta / sigma^2 * Sigma grad J_Sigma(mu), Sigma = sigma^2 [(alpha/n) I + ((1-alpha)/k) U U^T]
    u, _ = np.linalg.qr(stacked.numpy().T)
    cov = sigma**2 * (alpha / n * np.eye(n) + (1 - alpha) / 2 * u @ u.T)
    grad_smoothed = -np.exp(-np.diag(cov) / 2) * np.sin(mu)
    truth = beta / sigma**2 * cov @ grad_smoothed
    assert_within(mean, sem, truth)


def test_fitness_shaping_descends():
    """With rank utilities the direction (not the scale) follows the smoothed gradient."""
    mu, sigma = np.array([0.3, -1.1, 2.0, 0.8]), 0.3
    g = nes(CosineLoss(mu), 20000, sigma, ("fs", 0), fitness_shaping=True).numpy()
    truth = -np.exp(-sigma**2 / 2) * np.sin(mu)
    assert g @ truth / (np.linalg.norm(g) * np.linalg.norm(truth)) > 0.95


def test_rank_utilities_follow_the_definition():
    losses = torch.tensor([3.0, 1.0, 2.0, 5.0, 4.0, 0.5])
    p = 6
    raw = [max(0.0, math.log(p / 2 + 1) - math.log(k)) for k in range(1, p + 1)]
    by_rank = [r / sum(raw) - 1 / p for r in raw]
    order = [5, 1, 2, 0, 4, 3]  # sample indices from lowest loss (rank 1) upwards
    expected = np.empty(p)
    for rank, idx in enumerate(order):
        expected[idx] = by_rank[rank]
    np.testing.assert_allclose(rank_utilities(losses).numpy(), expected, rtol=1e-12)
    assert rank_utilities(losses).sum() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("activation", ["zero_one", "sign"])
def test_batched_nes_equals_per_sample_loop(activation):
    spec = MLPSpec(dim=4, seed=2, batch_size=500, num_batches=1, activation=activation)
    problem = MLPProbe(spec, dtype=torch.float64, memory_budget_mb=1).batch(0)
    population, sigma, seed = 150, 0.05, ("t", 1)
    batched = nes(problem, population, sigma, seed)
    acc = torch.zeros(problem.n_coords, dtype=torch.float64)
    # the noise is drawn in float32 (whatever the working dtype) and cast
    for _, noise in noise_blocks(seed, population // 2, problem.n_coords, "cpu", torch.float32):
        for s in noise.double():  # one loss evaluation at a time
            acc += (problem.loss(problem.theta0 + sigma * s) - problem.loss(problem.theta0 - sigma * s)) * s
    torch.testing.assert_close(batched, acc / (population * sigma), rtol=1e-10, atol=1e-12)


def test_noise_does_not_depend_on_chunking():
    blocks = torch.cat([b for _, b in noise_blocks(("x",), 200, 7, "cpu", torch.float64)])
    again = torch.cat([b for _, b in noise_blocks(("x",), 200, 7, "cpu", torch.float64)])
    assert blocks.shape == (200, 7) and torch.equal(blocks, again)
    prefix = torch.cat([b for _, b in noise_blocks(("x",), 70, 7, "cpu", torch.float64)])
    assert torch.equal(prefix, blocks[:70])


def test_orthonormal_basis_drops_dependent_guides():
    a = torch.tensor([1.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    b = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    q = orthonormal_basis(torch.stack([a, b, 2 * a - b]))
    assert q.shape == (4, 2)
    torch.testing.assert_close(q.T @ q, torch.eye(2, dtype=torch.float64))


@pytest.mark.parametrize("population", [0, 3, 7])
def test_population_must_be_even(population):
    with pytest.raises(ValueError, match="even"):
        nes(CosineLoss([0.0, 1.0]), population, 0.1, ("p",))


def test_nes_draws_the_same_perturbations_in_float32_and_float64():
    """The noise is drawn in one dtype and cast: a float64 run differs from a float32 one only by rounding."""
    spec = MLPSpec(dim=8, seed=0, batch_size=2000, num_batches=1)
    g32 = nes(MLPProbe(spec, dtype=torch.float32).batch(0), 200, 0.05, ("nes-200", 0)).double()
    g64 = nes(MLPProbe(spec, dtype=torch.float64).batch(0), 200, 0.05, ("nes-200", 0))
    cosine = float(g32 @ g64 / (g32.norm() * g64.norm()))
    assert cosine > 0.999 and float((g32 - g64).norm() / g64.norm()) < 0.05
