"""SNES and FOGZO against their definitions: hand-written loops over samples, closed forms on linear
and quadratic losses, and SNES converging (sigma shrinking) on a smooth quadratic."""

import math

import pytest
import torch

from bnnprobe.config import load_config
from bnnprobe.device import Compute
from bnnprobe.estimators import estimate, fogzo, snes
from bnnprobe.estimators.registry import family_of
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.naming import settings_for
from bnnprobe.problem import ProbeProblem
from conftest import REPO

CPU = Compute.from_config({"device": "cpu", "dtype": "float64"})


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


def test_fogzo_draws_the_noise_its_guide_stands_for_at_unit_variance():
    from bnnprobe.estimators.fogzo import noise_law, unit_noise
    from bnnprobe.seeding import generator as gen

    assert (noise_law("vanilla"), noise_law("steep"), noise_law("polynomial")) == ("uniform", "uniform", "triangular")
    assert noise_law("swishsign") == noise_law("identity") == "normal"
    for law, bound in (("uniform", 3 ** 0.5), ("triangular", 6 ** 0.5)):
        draws = unit_noise(law, (200_000,), gen("law", law))
        assert float(draws.abs().max()) <= bound and float(draws.abs().max()) > 0.98 * bound
        assert float(draws.mean()) == pytest.approx(0, abs=0.01) and float(draws.var()) == pytest.approx(1, rel=0.02)
    tri = unit_noise("triangular", (200_000,), gen("law", "t"))
    # the triangular density on [-a, a] is (a - |x|) / a^2: the mass within a / 2 of 0 is 1 - (1/2)^2
    a = 6 ** 0.5
    assert float((tri.abs() < a / 2).double().mean()) == pytest.approx(0.75, abs=0.01)


@pytest.mark.parametrize("guide,activation,expected", [
    ("vanilla", "zero_one", 0.5 / 3 ** 0.5),   # uniform on the ramp [-h, h], h = 0.5: std h / sqrt 3
    ("steep", "zero_one", 0.25 / 3 ** 0.5),    # a ramp twice as narrow (steep_k = 2)
    ("polynomial", "sign", 1 / 6 ** 0.5),      # triangular on [-1, 1]: std 1 / sqrt 6
    ("swishsign", "zero_one", 0.5 / 3 ** 0.5),  # no law: the clipped identity's
])
def test_fogzo_eps_is_tied_to_that_noise_by_the_config_check(guide, activation, expected):
    config = load_config(REPO / "config.yaml", {"fogzo": {"guide": guide}, "probe": {"activation": activation}})
    assert config["fogzo"]["eps"] == pytest.approx(expected, rel=1e-5)
    assert load_config(REPO / "config.yaml", {"fogzo": {"eps": 0.05}})["fogzo"]["eps"] == 0.05


def test_fogzo_beta_decays_from_one_to_its_value_at_the_step_cap():
    from bnnprobe.estimators.fogzo import beta_at

    linear = {"beta": 0.9, "beta_schedule": "linear"}
    assert [beta_at(linear, f) for f in (0.0, 0.5, 1.0, 2.0)] == pytest.approx([1.0, 0.95, 0.9, 0.9])
    assert beta_at({"beta": 0.9, "beta_schedule": "constant"}, 0.0) == 0.9


def test_fogzo_in_training_uses_the_beta_of_each_step():
    from bnnprobe.training.trainer import StudentTrainer, TrainingSpec, train_student

    settings = {"directions": 3, "eps": 0.1, "beta": 0.5, "beta_schedule": "linear", "guide": "vanilla"}
    spec = TrainingSpec(problem=MLPSpec(dim=2, seed=0, batch_size=64, num_batches=1), schedule="fogzo-3", steps=4,
                        val_batch_size=100, eval_every=4, lrs=(0.1,))
    result = train_student(spec, {"fogzo-3": settings}, None, CPU)
    trainer = StudentTrainer(spec, {"fogzo-3": settings}, CPU)
    theta = trainer.theta.detach().clone()
    for step in range(4):
        with torch.no_grad():
            trainer.theta.copy_(theta)
        now = {**settings, "beta_now": 1 - 0.5 * step / 4}  # by hand: 1, 0.875, 0.75, 0.625
        g = estimate("fogzo-3", trainer.batch_problem(step), now, seed_parts=("training", 2, 0, step)).gradient
        theta = theta - 0.1 * g.double()
    torch.testing.assert_close(result.snapshots["end"]["theta"], theta, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dim,population", [(16, 24), (32, 28), (64, 32)])
def test_snes_without_a_number_uses_its_authors_default_population(dim, population):
    import math

    n = 3 * dim * (dim + 1)
    assert 4 + math.floor(3 * math.log(n)) in (population, population - 1)  # rounded up to an even number
    settings = settings_for("snes", load_config(REPO / "config.yaml"))
    assert family_of("snes").loss_evals(settings, n) == population
