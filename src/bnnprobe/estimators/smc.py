"""Sequential Monte Carlo search (``smc-<P>``): the log's "particle filters" as an optimiser of the
training study. It trains only (no one-step gradient for the probes; see ``compute``).

A population of P weight vectors (particles) ``x_1..x_P`` is carried from step to step. At the
optimiser's own step t, on the step's batch:

1. *jitter*: ``y_k = x_k + sigma_t z_k``, z standard normal (at the start every ``x_k`` is the current
   weights, so the population is ``N(w, sigma_0^2 I)``);
2. *weight*: ``pi_k ∝ exp(-L(y_k) / T_t)`` (normalised; computed from ``L - min L``);
3. *report*: the new weights are the weighted mean ``sum_k pi_k y_k``;
4. *resample*: systematic resampling (one uniform offset, points ``(i + U)/P``) draws the next
   population from the y_k with probabilities pi_k.

Scales: ``sigma_t`` follows :func:`bnnprobe.estimators.annealing.move_scale` (``smc.sigma``,
``smc.sigma_half_life``), and the temperature is ``T_t = sigma_t^2 / lr``. So ``lr`` is the step
size of the weighted mean: for a population freshly drawn around w, Gaussian integration by parts
gives exactly

    E[z e^{-L(w + sigma z)/T}] / E[e^{-L(w + sigma z)/T}] * sigma = -(sigma^2 / T) grad F(w),
    F(w) = -T log E_z[exp(-L(w + sigma z) / T)],

so the mean moves, up to the self-normalised estimate's O(1/P) bias, by ``-lr grad F``: a gradient step
of step size lr on the *free energy* F, which is the Gaussian-smoothed loss as T -> infinity (small lr)
and tends to the minimum of L near w as T -> 0 (large lr). This is the HJ-Prox formula of Osher, Heaton
& Wu Fung (PNAS 2023, "A Hamilton-Jacobi-based proximal operator") at time ``t = lr`` and
``delta = T``: the weighted mean estimates a smoothed proximal point ``prox_{lr L}(w)``. Later steps
start from the resampled population instead of a fresh one: the particles that did well keep their
offsets, the chain of jitters explores around them, and the reported mean follows.

*Weighted mean, not the best particle*: the best particle is chosen by the noise of one batch (its
loss on that batch is optimistic, and a fresh batch undoes the choice), while the mean averages over
the population and is the step whose meaning is written above. The tuning of lr decides how greedy
the mean is.

*Cost*: P loss evaluations a step. *State*: ``{"particles": P x n, "step", "sigma": sigma_t, "ess":
effective sample size 1 / sum pi_k^2}``, float64 tensors on the CPU; ``None`` at the start (alone or
after a switch). Noise: the jitter in fixed blocks of 64 particles, each block and the resampling
offset from their own derived seeds, on the CPU in float64.
"""

from __future__ import annotations

import torch

from ..problem import ProbeProblem
from ..seeding import generator
from .annealing import first_move, schedule

BLOCK = 64


def jitter(seed_parts: tuple, count: int, n_coords: int) -> torch.Tensor:
    """Standard normals (count x n_coords, float64, CPU), block b of ``BLOCK`` rows from its own seed."""
    blocks = []
    for block, start in enumerate(range(0, count, BLOCK)):
        gen = generator(*seed_parts, "smc", block)
        blocks.append(torch.randn(BLOCK, n_coords, generator=gen, dtype=torch.float64)[: count - start])
    return torch.cat(blocks)


def tempered_weights(losses: torch.Tensor, temperature: float) -> torch.Tensor:
    """``exp(-L_k / T)`` normalised to sum 1 (float64; the smallest loss subtracted first)."""
    losses = losses.double()
    return torch.softmax(-(losses - losses.min()) / temperature, dim=0)


def systematic_resample(weights: torch.Tensor, offset: float) -> torch.Tensor:
    """Indices of P draws from ``weights`` by systematic resampling: the points ``(i + offset) / P``,
    i = 0..P-1, each taking the index whose cumulative-weight interval holds it."""
    count = len(weights)
    points = (torch.arange(count, dtype=torch.float64) + offset) / count
    return torch.searchsorted(torch.cumsum(weights.double(), 0), points, right=True).clamp_(max=count - 1)


def train_step(problem: ProbeProblem, settings: dict, lr: float, state: dict | None,
               seed_parts: tuple) -> tuple[torch.Tensor, dict]:
    """One SMC step (the module docstring) from ``problem.theta0`` at step size ``lr``: the new weights
    (the weighted mean, float64, CPU) and the new state."""
    count = settings["particles"]
    if count < 2:
        raise ValueError(f"SMC needs at least 2 particles, got {count}")
    step, sigma, temperature = schedule(settings, state, lr, 1.0)
    theta = problem.theta0.double().cpu()
    particles = state["particles"] if state is not None else theta.expand(count, -1)
    moved = particles + sigma * jitter(seed_parts, count, problem.n_coords)
    losses = problem.losses(moved.to(device=problem.device, dtype=problem.dtype)).double().cpu()
    weights = tempered_weights(losses, temperature)
    mean = weights @ moved
    offset = float(torch.rand(1, generator=generator(*seed_parts, "smc-resample"), dtype=torch.float64))
    new_state = {"particles": moved[systematic_resample(weights, offset)], "step": torch.tensor(step + 1),
                 "sigma": torch.tensor(sigma, dtype=torch.float64),
                 "ess": 1 / (weights * weights).sum()}
    return mean, new_state


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    """Not a probe estimator (the config refuses it there): the first step's move at lr 1, which the
    cost model times (:func:`bnnprobe.estimators.annealing.first_move`)."""
    return first_move(train_step, problem, settings, seed_parts)
