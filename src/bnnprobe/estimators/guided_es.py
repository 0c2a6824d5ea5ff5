"""Guided ES: NES with its search distribution stretched along the STE gradients.

Guided ES (Maheswaranathan et al. 2019), in the span of the STE gradients:
``eps ~ N(0, sigma^2 [(alpha/n) I + ((1-alpha)/k) U U^T])``, U an orthonormal basis
of the k guide gradients, ``g = beta / (2 sigma^2 M) * sum_i eps_i (L(w + eps_i) - L(w - eps_i))``
over M = P/2 antithetic pairs.

The guides are STE gradients (:mod:`bnnprobe.estimators.ste`); noise:
:func:`bnnprobe.estimators.sampling.noise_blocks`.
"""

from __future__ import annotations

import math

import torch

from ..binary import STE_VARIANTS, SurrogateParams
from ..problem import ProbeProblem
from ..seeding import generator
from .sampling import check_population, noise_blocks
from .ste import surrogate_params


def orthonormal_basis(guides: torch.Tensor, rtol: float = 1e-8) -> torch.Tensor:
    """Orthonormal columns spanning the rows of ``guides`` (k x n); near-dependent ones are dropped."""
    q, r = torch.linalg.qr(guides.double().T)
    diag = r.diagonal().abs()
    keep = diag > rtol * max(float(diag.max()), 1e-300) if diag.numel() else diag.bool()
    return q[:, keep]


def guided_es(problem: ProbeProblem, population: int, sigma: float, seed_parts: tuple, guides: torch.Tensor,
              alpha: float = 0.5, beta: float = 1.0) -> torch.Tensor:
    check_population(population)
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


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    guides = ste_guides(problem, settings["guides"], surrogate_params(settings))
    return guided_es(problem, settings["population"], settings["sigma"], seed_parts, guides, settings["alpha"],
                     settings["beta"])
