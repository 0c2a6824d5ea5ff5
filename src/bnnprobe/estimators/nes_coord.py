"""Per-coordinate Gaussian search: the research log's own NES, and its infinite-population limit.

The log's NES (its pseudo-code) keeps a Gaussian search distribution N(mu_i, sigma_i^2) *per
parameter* and samples each parameter on its own, M times, with fitness f = -loss. Here mu = w
(the current weights) and every sigma_i = sigma. For coordinate i, with M/2 antithetic pairs
``(z, -z)`` of standard normals and ``dL(t) = L(w + t e_i) - L(w)``:

    score functions   d log p / d mu = z / sigma,  d log p / d sigma = (z^2 - 1) / sigma
    grad_mu J    = -(1 / (M sigma)) sum_pairs (dL(sigma z) - dL(-sigma z)) z
    grad_sigma J = -(1 / (M sigma)) sum_pairs (dL(sigma z) + dL(-sigma z)) (z^2 - 1)

(subtracting L(w) is the usual baseline: E[z] = E[z^2 - 1] = 0). The Fisher information of a
Gaussian is 1/sigma^2 for mu and 2/sigma^2 for sigma, so the natural gradients are
``sigma^2 grad_mu J`` and ``(sigma^2 / 2) grad_sigma J``. Like every estimator here,
:func:`nes_coordinate` returns the gradient *of the loss* for mu (``-grad_mu J``; descend with
``w - lr g``) and gives the other three, also as loss gradients, in ``extras``. With every sigma_i
equal, the natural gradient for mu is the plain one times sigma^2: the same direction.

As M grows, ``-grad_mu J`` tends to the *smoothed coordinate gradient*
``g_i = d/dmu E_z[L(w + (mu + sigma z) e_i)]`` at mu = 0, which :func:`bnnprobe.estimators.smoothed.smoothed` returns exactly
where the problem has a closed form (the MLP: :mod:`bnnprobe.mlp.flips`).

Noise: per block of ``COORD_BLOCK`` coordinates, from its own derived seed, drawn on the CPU in
float64, so the numbers depend neither on chunking nor on the device.
"""

from __future__ import annotations

import torch

from ..problem import ProbeProblem
from ..seeding import generator

COORD_BLOCK = 64


def _check(samples: int, sigma: float) -> None:
    if samples < 2 or samples % 2:
        raise ValueError(f"per-parameter NES needs an even number >= 2 of samples per coordinate (antithetic "
                         f"pairs), got {samples}")
    if not sigma > 0:
        raise ValueError(f"per-parameter NES sigma must be > 0, got {sigma}")


def coordinate_noise(seed_parts: tuple, start: int, stop: int, n_pairs: int) -> torch.Tensor:
    """Standard normals (stop - start, n_pairs) of coordinates start..stop-1, float64 on the CPU;
    ``start`` must be a multiple of :data:`COORD_BLOCK`."""
    if start % COORD_BLOCK:
        raise ValueError(f"coordinate noise starts at a multiple of {COORD_BLOCK}, not {start}")
    blocks = []
    for first in range(start, stop, COORD_BLOCK):
        gen = generator(*seed_parts, "coordinate-noise", first // COORD_BLOCK)
        blocks.append(torch.randn(COORD_BLOCK, n_pairs, generator=gen, dtype=torch.float64)[: stop - first])
    return torch.cat(blocks)


def nes_coordinate(problem: ProbeProblem, samples: int, sigma: float, seed_parts: tuple) -> tuple[torch.Tensor, dict]:
    """The log's per-parameter NES (see the module docstring): ``(loss gradient for mu, extras)``."""
    _check(samples, sigma)
    n_pairs = samples // 2
    grad_mu = torch.empty(problem.n_coords, dtype=torch.float64)
    grad_sigma = torch.empty(problem.n_coords, dtype=torch.float64)
    for start in range(0, problem.n_coords, COORD_BLOCK):
        stop = min(start + COORD_BLOCK, problem.n_coords)
        z = coordinate_noise(seed_parts, start, stop, n_pairs)
        changes = problem.coordinate_loss_changes(torch.arange(start, stop), torch.cat([sigma * z, -sigma * z], 1))
        plus, minus = changes[:, :n_pairs].cpu(), changes[:, n_pairs:].cpu()
        grad_mu[start:stop] = ((plus - minus) * z).sum(dim=1) / (samples * sigma)
        grad_sigma[start:stop] = ((plus + minus) * (z * z - 1)).sum(dim=1) / (samples * sigma)
    extras = {
        "loss_grad_sigma": grad_sigma,
        "natural_loss_grad_mu": sigma**2 * grad_mu,
        "natural_loss_grad_sigma": sigma**2 / 2 * grad_sigma,
    }
    return grad_mu.to(device=problem.device, dtype=problem.dtype), {k: v.float() for k, v in extras.items()}


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> tuple[torch.Tensor, dict]:
    return nes_coordinate(problem, settings["samples"], settings["sigma"], seed_parts)
