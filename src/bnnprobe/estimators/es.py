"""Evolution-strategy gradient estimators: NES and Guided ES.

NES (Wierstra et al. 2014). Search distribution N(mu = w, sigma^2 I); the search
gradient of the smoothed loss ``J(mu) = E[L(mu + sigma s)]`` is estimated with
antithetic pairs ``(s, -s)``::

    g = 1/(P sigma) * sum_k L(w + sigma s_k) s_k = 1/(P sigma) * sum_pairs (L(w + sigma s) - L(w - sigma s)) s

P is the population (loss evaluations, P/2 pairs). All coordinates are sampled
jointly. With ``fitness_shaping`` the losses are replaced by rank utilities
(fitness = -loss, rank 1 = lowest loss)
``u_k = max(0, ln(P/2 + 1) - ln k) / sum_j max(0, ln(P/2 + 1) - ln j) - 1/P`` and
``g = -(1/sigma) * sum_k u_k s_k``. We return this *vanilla* search gradient of the
loss (descend with ``w - lr g``), not the natural gradient ``sigma^2 g``: for a
one-step probe only the direction and the lr scale matter.

Guided ES (Maheswaranathan et al. 2019), in the span of the STE gradients:
``eps ~ N(0, sigma^2 [(alpha/n) I + ((1-alpha)/k) U U^T])``, U an orthonormal basis
of the k guide gradients, ``g = beta / (2 sigma^2 M) * sum_i eps_i (L(w + eps_i) - L(w - eps_i))``
over M = P/2 antithetic pairs.

Noise is drawn in fixed blocks of ``NOISE_BLOCK`` pairs, each from its own derived
seed, so the numbers do not depend on how the evaluation is chunked.
"""

from __future__ import annotations

import math

import torch

from ..binary import STE_VARIANTS, SurrogateParams
from ..problem import ProbeProblem
from ..seeding import generator

NOISE_BLOCK = 64


def _check_population(population: int) -> None:
    if population < 2 or population % 2:
        raise ValueError(f"ES population must be an even number >= 2 (antithetic pairs), got {population}")


def noise_blocks(seed_parts: tuple, n_pairs: int, n_coords: int, device, dtype):
    """Yield (start, standard normal block) covering ``n_pairs`` rows of ``n_coords``."""
    for block, start in enumerate(range(0, n_pairs, NOISE_BLOCK)):
        rows = min(NOISE_BLOCK, n_pairs - start)
        gen = generator(*seed_parts, "noise", block, device=device)
        # always draw a whole block, so a population's noise is a prefix of any larger one's
        yield start, torch.randn(NOISE_BLOCK, n_coords, generator=gen, device=device, dtype=dtype)[:rows]


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


def nes(problem: ProbeProblem, population: int, sigma: float, seed_parts: tuple,
        fitness_shaping: bool = False) -> torch.Tensor:
    _check_population(population)
    if not sigma > 0:
        raise ValueError(f"NES sigma must be > 0, got {sigma}")
    theta, n_pairs = problem.theta0, population // 2
    acc = torch.zeros(problem.n_coords, dtype=torch.float64, device=problem.device)
    if not fitness_shaping:
        for _, noise in noise_blocks(seed_parts, n_pairs, problem.n_coords, problem.device, problem.dtype):
            plus, minus = problem.paired_losses(theta, sigma * noise)
            acc += noise.double().T @ (plus - minus).to(problem.device)
        return (acc / (population * sigma)).to(problem.dtype)
    plus, minus = [], []
    for _, noise in noise_blocks(seed_parts, n_pairs, problem.n_coords, problem.device, problem.dtype):
        lp, lm = problem.paired_losses(theta, sigma * noise)
        plus.append(lp)
        minus.append(lm)
    plus, minus = torch.cat(plus).cpu(), torch.cat(minus).cpu()
    utilities = rank_utilities(torch.cat([plus, minus]))
    # s_k appears with +s for the "plus" half and -s for the "minus" half
    pair_weight = (utilities[:n_pairs] - utilities[n_pairs:]).to(problem.device)
    for start, noise in noise_blocks(seed_parts, n_pairs, problem.n_coords, problem.device, problem.dtype):
        acc += noise.double().T @ pair_weight[start:start + len(noise)]
    return (-acc / sigma).to(problem.dtype)


def orthonormal_basis(guides: torch.Tensor, rtol: float = 1e-8) -> torch.Tensor:
    """Orthonormal columns spanning the rows of ``guides`` (k x n); near-dependent ones are dropped."""
    q, r = torch.linalg.qr(guides.double().T)
    diag = r.diagonal().abs()
    keep = diag > rtol * max(float(diag.max()), 1e-300) if diag.numel() else diag.bool()
    return q[:, keep]


def guided_es(problem: ProbeProblem, population: int, sigma: float, seed_parts: tuple, guides: torch.Tensor,
              alpha: float = 0.5, beta: float = 1.0) -> torch.Tensor:
    _check_population(population)
    if not sigma > 0 or not 0 <= alpha <= 1:
        raise ValueError(f"guided ES needs sigma > 0 and 0 <= alpha <= 1, got sigma={sigma}, alpha={alpha}")
    basis = orthonormal_basis(guides).to(problem.device)
    n, k = problem.n_coords, basis.shape[1]
    n_pairs = population // 2
    theta = problem.theta0
    acc = torch.zeros(n, dtype=torch.float64, device=problem.device)
    for start, full in noise_blocks(seed_parts, n_pairs, n, problem.device, torch.float64):
        eps = math.sqrt(alpha / n) * full
        if k:
            gen = generator(*seed_parts, "subspace", start, device=problem.device)
            sub = torch.randn(len(full), k, generator=gen, device=problem.device, dtype=torch.float64)
            eps = eps + math.sqrt((1 - alpha) / k) * sub @ basis.T
        eps = sigma * eps
        plus, minus = problem.paired_losses(theta, eps.to(problem.dtype))
        acc += eps.T @ (plus - minus).to(problem.device)
    return (beta / (2 * sigma**2 * n_pairs) * acc).to(problem.dtype)


def ste_guides(problem: ProbeProblem, variants=STE_VARIANTS, params: SurrogateParams = SurrogateParams()):
    return torch.stack([problem.ste_gradient(v, params) for v in variants])
