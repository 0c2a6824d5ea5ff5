"""FOGZO (Yang & Aamodt, NeurIPS 2025, "Improving the Straight-Through Estimator with Zeroth-Order
Information"): a zeroth-order estimate whose directions are drawn around the STE gradient.

With ``g`` the STE gradient on the batch and ``ĝ = g / |g|``, each of n directions is

    v_i = sqrt(beta) s_i ĝ + sqrt(1 - beta) u_i,      s_i = ±1 (fair coin),  u_i ~ N(0, I)

and the estimate is the two-sided finite difference along each:

    G = (1/n) sum_i (L(w + eps v_i) - L(w - eps v_i)) / (2 eps) v_i.

By a first-order expansion, E[G] ≈ beta ĝ ĝᵀ ∇L_eps + (1 - beta) ∇L_eps (∇L_eps: the gradient of the
loss smoothed along the directions): the STE's direction is kept in proportion to how much the loss
really changes along it, and the isotropic part corrects it. beta = 1 is the STE direction rescaled
by a measured slope; beta = 0 is two-point random search (n-SPSA with Gaussian directions). One
estimate costs one STE gradient (a forward and a backward pass) and 2n loss evaluations. The paper
decays beta from 1 to a beta_min during training; here beta is constant (``fogzo.beta``), so that
one name is one estimator everywhere, and ``eps`` is ``fogzo.eps``.

Noise: the signs and directions of each block of directions come from their own derived seed, on
the CPU in float64, so the numbers do not depend on the device.
"""

from __future__ import annotations

import math

import torch

from ..problem import ProbeProblem
from ..seeding import generator
from .ste import surrogate_params

BLOCK = 64


def directions(seed_parts: tuple, n: int, n_coords: int, beta: float, guide: torch.Tensor) -> torch.Tensor:
    """The n directions ``v_i`` (n x n_coords, float64, CPU) around the unit vector ``guide``."""
    rows = []
    for block, start in enumerate(range(0, n, BLOCK)):
        count = min(BLOCK, n - start)
        gen = generator(*seed_parts, "fogzo", block)
        signs = torch.randint(0, 2, (count,), generator=gen, dtype=torch.float64) * 2 - 1
        noise = torch.randn(count, n_coords, generator=gen, dtype=torch.float64)
        rows.append(math.sqrt(beta) * signs[:, None] * guide + math.sqrt(1 - beta) * noise)
    return torch.cat(rows)


def fogzo(problem: ProbeProblem, n: int, eps: float, beta: float, seed_parts: tuple, variant: str = "vanilla",
          params=None) -> torch.Tensor:
    """The FOGZO estimate of the loss gradient (see the module docstring)."""
    if n < 1:
        raise ValueError(f"FOGZO needs at least one direction, got {n}")
    if not eps > 0 or not 0 <= beta <= 1:
        raise ValueError(f"FOGZO needs eps > 0 and 0 <= beta <= 1, got eps={eps}, beta={beta}")
    ste = problem.ste_gradient(variant, params).double().cpu()
    norm = float(ste.norm())
    guide = ste / norm if norm > 0 else torch.zeros_like(ste)  # no STE signal: the random part alone
    v = directions(seed_parts, n, problem.n_coords, beta, guide)
    plus, minus = problem.paired_losses(problem.theta0, (eps * v).to(problem.dtype))
    slopes = (plus - minus).double().cpu() / (2 * eps)
    return (slopes @ v / n).to(device=problem.device, dtype=problem.dtype)


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return fogzo(problem, settings["directions"], settings["eps"], settings["beta"], seed_parts,
                 settings["guide"], surrogate_params(settings))
