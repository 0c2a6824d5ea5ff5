"""NES (Wierstra et al. 2014): the search gradient of a Gaussian smoothing of the loss.

Search distribution N(mu = w, sigma^2 I); the search gradient of the smoothed loss
``J(mu) = E[L(mu + sigma s)]`` is estimated with antithetic pairs ``(s, -s)``::

    g = 1/(P sigma) * sum_k L(w + sigma s_k) s_k = 1/(P sigma) * sum_pairs (L(w + sigma s) - L(w - sigma s)) s

P is the population (loss evaluations, P/2 pairs). All coordinates are sampled
jointly. With ``fitness_shaping`` the losses are replaced by rank utilities
(fitness = -loss, rank 1 = lowest loss)
``u_k = max(0, ln(P/2 + 1) - ln k) / sum_j max(0, ln(P/2 + 1) - ln j) - 1/P`` and
``g = -(1/sigma) * sum_k u_k s_k``. We return this *vanilla* search gradient of the
loss (descend with ``w - lr g``), not the natural gradient ``sigma^2 g``: for a
one-step probe only the direction and the lr scale matter.

Noise: :func:`bnnprobe.estimators.sampling.noise_blocks`, drawn in float32 and cast to the working
dtype, so float32 and float64 runs of a seed use the same perturbations.
"""

from __future__ import annotations

import math

import torch

from ..problem import ProbeProblem
from .sampling import check_population, noise_blocks


def rank_utilities(losses: torch.Tensor) -> torch.Tensor:
    """NES utilities per sample: best (lowest loss) gets the largest; they sum to zero."""
    p = losses.numel()
    k = torch.arange(1, p + 1, dtype=torch.float64)
    raw = (math.log(p / 2 + 1) - torch.log(k)).clamp(min=0)
    by_rank = raw / raw.sum() - 1 / p
    utilities = torch.empty(p, dtype=torch.float64)
    # stable sort: ties keep sample order, so the result is deterministic
    utilities[torch.sort(losses.double().cpu(), stable=True).indices] = by_rank
    return utilities


def _noise(seed_parts: tuple, n_pairs: int, problem: ProbeProblem):
    """The noise blocks, drawn in float32 whatever the working dtype and cast to it: a float64 run sees the
    same perturbations as a float32 one (on the same device: CUDA's generator is not the CPU's)."""
    for start, noise in noise_blocks(seed_parts, n_pairs, problem.n_coords, problem.device, torch.float32):
        yield start, noise.to(problem.dtype)


def nes(problem: ProbeProblem, population: int, sigma: float, seed_parts: tuple,
        fitness_shaping: bool = False) -> torch.Tensor:
    check_population(population)
    if not sigma > 0:
        raise ValueError(f"NES sigma must be > 0, got {sigma}")
    theta, n_pairs = problem.theta0, population // 2
    acc = torch.zeros(problem.n_coords, dtype=torch.float64, device=problem.device)
    if not fitness_shaping:
        for _, noise in _noise(seed_parts, n_pairs, problem):
            plus, minus = problem.paired_losses(theta, sigma * noise)
            acc += noise.double().T @ (plus - minus).to(problem.device)
        return (acc / (population * sigma)).to(problem.dtype)
    plus, minus = [], []
    for _, noise in _noise(seed_parts, n_pairs, problem):
        lp, lm = problem.paired_losses(theta, sigma * noise)
        plus.append(lp)
        minus.append(lm)
    plus, minus = torch.cat(plus).cpu(), torch.cat(minus).cpu()
    utilities = rank_utilities(torch.cat([plus, minus]))
    # s_k appears with +s for the "plus" half and -s for the "minus" half
    pair_weight = (utilities[:n_pairs] - utilities[n_pairs:]).to(problem.device)
    for start, noise in _noise(seed_parts, n_pairs, problem):
        acc += noise.double().T @ pair_weight[start:start + len(noise)]
    return (-acc / sigma).to(problem.dtype)


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return nes(problem, settings["population"], settings["sigma"], seed_parts, settings["fitness_shaping"])
