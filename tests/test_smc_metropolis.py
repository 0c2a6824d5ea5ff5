"""The particle (smc-<P>) and Markov-chain (metropolis-<K>) optimisers: one step against a hand-written
loop on the same seeded noise, systematic resampling's defining property, what lr means (a closed-form
proximal step for SMC on a quadratic, the exact drift of a Metropolis move on a linear loss), convergence
on a smooth quadratic, and a state the trainer can carry and checkpoint."""

import math

import pytest
import torch
from scipy import stats

from bnnprobe.estimators import metropolis, smc
from bnnprobe.io import load_torch, save_torch
from bnnprobe.problem import ProbeProblem
from bnnprobe.seeding import generator


class Quadratic(ProbeProblem):
    """``L(theta) = 1/2 sum_i a_i (theta_i - m_i)^2`` (a linear loss ``g . theta`` when ``a`` is None)."""

    description = "test quadratic"

    def __init__(self, theta0, a=None, m=None, g=None):
        self.theta0, self.a, self.m, self.g = theta0.double(), a, m, g

    def losses(self, thetas):
        thetas = thetas.double()
        if self.a is None:
            return thetas @ self.g
        return 0.5 * (self.a * (thetas - self.m) ** 2).sum(1)

    def gradient(self, theta):
        return self.g if self.a is None else self.a * (theta - self.m)


def quadratic(n=5, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return Quadratic(torch.randn(n, generator=gen, dtype=torch.float64), a=torch.linspace(0.5, 2.0, n).double(),
                     m=torch.randn(n, generator=gen, dtype=torch.float64))


SMC = {"particles": 16, "sigma": 0.1, "sigma_half_life": 50.0}
METROPOLIS = {"proposals": 6, "sigma": 0.1, "sigma_half_life": 50.0}


def hand_systematic(weights, offset):
    """The textbook loop: walk the cumulative weights with the points (i + offset) / P."""
    indices, cumulative, j = [], float(weights[0]), 0
    for i in range(len(weights)):
        point = (i + offset) / len(weights)
        while point >= cumulative and j < len(weights) - 1:
            j += 1
            cumulative += float(weights[j])
        indices.append(j)
    return indices


def test_two_smc_steps_equal_a_hand_loop():
    problem, lr, seeds = quadratic(), 0.3, [("smc", 0), ("smc", 1)]
    state, particles = None, [problem.theta0.clone() for _ in range(SMC["particles"])]
    theta = problem.theta0
    for t, seed in enumerate(seeds):
        sigma = 0.1 * 2 ** (-t / 50)
        temperature = sigma**2 / lr
        noise = smc.jitter(seed, SMC["particles"], problem.n_coords)
        moved = [p + sigma * noise[k] for k, p in enumerate(particles)]
        losses = [problem.loss(p) for p in moved]
        raw = [math.exp(-(loss - min(losses)) / temperature) for loss in losses]
        weights = [r / sum(raw) for r in raw]
        expected = sum(w * p for w, p in zip(weights, moved))
        offset = float(torch.rand(1, generator=generator(*seed, "smc-resample"), dtype=torch.float64))
        particles = [moved[i] for i in hand_systematic(weights, offset)]
        theta, state = smc.train_step(Quadratic(theta, problem.a, problem.m), SMC, lr, state, seed)
        torch.testing.assert_close(theta, expected, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(state["particles"], torch.stack(particles), rtol=0, atol=0)
        assert int(state["step"]) == t + 1 and float(state["sigma"]) == pytest.approx(sigma)
        assert float(state["ess"]) == pytest.approx(1 / sum(w * w for w in weights))


def test_systematic_resampling_takes_each_particle_floor_or_ceil_of_its_share():
    gen = torch.Generator().manual_seed(5)
    weights = torch.rand(50, generator=gen, dtype=torch.float64) ** 3
    weights /= weights.sum()
    for offset in (0.0, 0.37, 0.999):
        counts = torch.bincount(smc.systematic_resample(weights, offset), minlength=50).double()
        assert int(counts.sum()) == 50
        assert torch.all(counts >= torch.floor(50 * weights) - 1e-9) and torch.all(counts <= torch.ceil(50 * weights))


def test_the_first_smc_step_is_the_proximal_step_of_step_size_lr_on_a_quadratic():
    """From a fresh population the weighted mean estimates w - lr grad F, F the free energy at T = sigma^2/lr;
    for a quadratic that is prox_{lr L}(w) = m + (w - m)/(1 + lr a) exactly (not the smoothed-gradient step
    w - lr a (w - m))."""
    problem, lr = quadratic(), 0.3
    # a population wide enough that the tilted one overlaps it (the self-normalised weights stay even)
    settings = {"particles": 20000, "sigma": 1.0, "sigma_half_life": None}
    steps = torch.stack([smc.train_step(problem, settings, lr, None, ("prox", s))[0] for s in range(6)])
    mean, se = steps.mean(0), steps.std(0) / math.sqrt(len(steps))
    prox = problem.m + (problem.theta0 - problem.m) / (1 + lr * problem.a)
    assert torch.all((mean - prox).abs() <= 6 * se + 1e-9), (mean - prox) / se
    gradient_step = problem.theta0 - lr * problem.gradient(problem.theta0)
    assert float((gradient_step - prox).abs().max()) > 20 * float(se.max())


def test_metropolis_step_equals_a_hand_loop():
    problem, lr, seed = quadratic(), 0.05, ("chain", 3)
    state = {"step": torch.tensor(10), "sigma": torch.tensor(0.0), "accepted": torch.tensor(4),
             "proposed": torch.tensor(9)}
    scale = 0.1 * 2 ** (-10 / 50)
    temperature = scale**2 / (2 * lr)
    xi, log_u = metropolis.moves(seed, METROPOLIS["proposals"], problem.n_coords)
    theta, current, accepted = problem.theta0.clone(), problem.loss(), 0
    for i in range(METROPOLIS["proposals"]):
        candidate = theta + scale * xi[i]
        loss = problem.loss(candidate)
        if math.exp(float(log_u[i])) < min(1.0, math.exp(-(loss - current) / temperature)):
            theta, current, accepted = candidate, loss, accepted + 1
    got, new_state = metropolis.train_step(problem, METROPOLIS, lr, state, seed)
    torch.testing.assert_close(got, theta, rtol=0, atol=0)
    assert 0 < accepted < METROPOLIS["proposals"]  # the case tests both branches
    assert int(new_state["accepted"]) == 4 + accepted and int(new_state["proposed"]) == 9 + 6
    assert int(new_state["step"]) == 11 and float(new_state["sigma"]) == pytest.approx(scale)


@pytest.mark.parametrize("tau", [0.05, 1.0])
def test_a_metropolis_move_drifts_by_the_exact_amount_on_a_linear_loss(tau):
    """For L = g . theta, Stein's identity gives E[w' - w] = -2 lr g e^(tau^2/2) Phi(-tau), tau = 2 lr |g| / s:
    -lr g in the small-step limit the docstring states."""
    g = torch.tensor([0.6, -0.8, 0.0], dtype=torch.float64)
    scale = 0.1
    lr = tau * scale / (2 * float(g.norm()))
    problem = Quadratic(torch.zeros(3, dtype=torch.float64), g=g)
    count = 20000  # each move's increment is independent of the last on a linear loss
    settings = {"proposals": count, "sigma": scale, "sigma_half_life": None}
    end, _ = metropolis.train_step(problem, settings, lr, None, ("drift", tau))
    drift = end / count
    expected = -2 * lr * g * math.exp(tau**2 / 2) * stats.norm.cdf(-tau)
    # the increments' spread: at most the proposal's (s per coordinate)
    assert torch.all((drift - expected).abs() <= 5 * scale / math.sqrt(count)), (drift, expected)
    if tau < 0.1:
        torch.testing.assert_close(drift, -lr * g, atol=5 * scale / math.sqrt(count), rtol=0.1)


@pytest.mark.parametrize("module,settings,lr", [(smc, SMC, 0.3), (metropolis, METROPOLIS, 0.05)])
def test_iterated_steps_converge_on_a_smooth_quadratic(module, settings, lr):
    problem = quadratic(n=5, seed=1)
    theta, state = problem.theta0, None
    start = problem.loss()
    for t in range(400):
        theta, state = module.train_step(Quadratic(theta, problem.a, problem.m), settings, lr, state, ("run", t))
    assert problem.loss(theta) < 1e-3 * start
    assert float((theta - problem.m).norm()) < 0.05 * float((problem.theta0 - problem.m).norm())


@pytest.mark.parametrize("module,settings", [(smc, SMC), (metropolis, METROPOLIS)])
def test_the_state_is_a_dict_of_tensors_that_survives_a_checkpoint(module, settings, tmp_path):
    problem = quadratic()
    theta, state = module.train_step(problem, settings, 0.1, None, ("state", 0))
    assert isinstance(state, dict) and all(isinstance(v, torch.Tensor) for v in state.values())
    save_torch({"state": state}, tmp_path / "checkpoint.pt")
    restored = load_torch(tmp_path / "checkpoint.pt")["state"]
    later = Quadratic(theta, problem.a, problem.m)
    a, _ = module.train_step(later, settings, 0.1, state, ("state", 1))
    b, _ = module.train_step(later, settings, 0.1, restored, ("state", 1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("module,settings", [(smc, SMC), (metropolis, METROPOLIS)])
def test_compute_is_the_first_steps_move_at_lr_one(module, settings):
    problem = quadratic()
    new, _ = module.train_step(problem, settings, 1.0, None, ("first",))
    torch.testing.assert_close(module.compute(problem, settings, ("first",)), problem.theta0 - new)
