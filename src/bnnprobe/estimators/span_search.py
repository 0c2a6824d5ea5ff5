"""Search in the span of the STE gradients with a uniform density (``span-<P>``): the log's "search in the
span of different STE directions; the density may not be Gaussian: uniform?".

With U (n x k) an orthonormal basis of the k guide gradients (STE gradients,
:func:`bnnprobe.estimators.guided_es.orthonormal_basis`), each of M = P/2 antithetic pairs perturbs
the weights by ``+-sigma v_i``,

    v_i = U u_i + (gamma / sqrt(n)) z_i,    u_i uniform on the unit k-ball or the cube [-1, 1]^k
                                            (``span.density``), z_i ~ N(0, I_n) (``span.full_space`` = gamma),

and the estimate is

    G = C^+ (1 / (2 sigma M)) sum_i (L(w + sigma v_i) - L(w - sigma v_i)) v_i,
    C = E[v v^T] = c U U^T + (gamma^2 / n) I,   c = E[u_j^2] = 1/(k + 2) (ball), 1/3 (cube),

C^+ its (pseudo-)inverse: ``(1/c) U U^T`` when gamma = 0, ``U U^T / (c + gamma^2/n) + (n/gamma^2)(I - U U^T)``
otherwise. For gamma = 0 and the ball this is ``(k + 2)/(2 sigma M) sum_i (L+ - L-) U u_i``.

*What it estimates.* For a loss that is linear or quadratic along the directions (the antithetic
difference is then ``2 sigma grad L . v``), ``E[G] = C^+ C grad L``: the projection ``U U^T grad L`` of the
gradient onto the span when gamma = 0, the whole gradient when gamma > 0. For any loss and the ball,
gamma = 0, it is exact: with ``psi(u) = (k + 2)/(2 V_k) (1 - |u|^2)`` on the ball (the Epanechnikov
density), ``grad_u psi = -(k + 2) u / V_k``, and integrating by parts,

    U^T grad_w E_{u ~ psi}[L(w + sigma U u)] = ((k + 2)/sigma) E_{u uniform on the ball}[L(w + sigma U u) u],

so G is unbiased for the span part of the gradient of the loss smoothed along the span by the
Epanechnikov kernel of radius sigma (a uniform-ball search is a smooth kernel's score estimator). For the
cube the same integration by parts, one coordinate at a time, makes component j the derivative along
``U e_j`` of the loss smoothed by the one-dimensional Epanechnikov kernel along that direction and
uniformly along the others: exact for quadratics, not the gradient of one smoothed loss beyond them.
Guided ES (:mod:`bnnprobe.estimators.guided_es`) samples the same span with a Gaussian and returns
``C grad L`` scaled by beta, not ``C^+ C grad L``.

*Cost.* P loss evaluations and the k guide STE gradients (a forward and a backward pass each).

Noise: in fixed blocks of 64 pairs from derived seeds (the block's k uniform coordinates, then its
radii, then its full-space normals), on the CPU in float64: a population's noise is a prefix of a
larger one's, and the same on every device.
"""

from __future__ import annotations

import math

import torch

from ..problem import ProbeProblem
from ..seeding import generator
from .guided_es import orthonormal_basis, ste_guides
from .sampling import check_population
from .ste import surrogate_params

BLOCK = 64
DENSITIES = ("ball", "cube")


def second_moment(density: str, k: int) -> float:
    """``E[u_j^2]`` of one coordinate of u uniform on the unit k-ball or the cube [-1, 1]^k."""
    if density == "ball":
        return 1 / (k + 2)
    if density == "cube":
        return 1 / 3
    raise ValueError(f"unknown span density {density!r}; choose one of {DENSITIES}")


def span_samples(seed_parts: tuple, n_pairs: int, k: int, n_coords: int, density: str,
                 full_space: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(u, z)``: n_pairs points uniform in the k-ball or k-cube (n_pairs x k) and, with ``full_space``,
    standard normals (n_pairs x n_coords); float64, CPU, a whole block drawn from each block's seed."""
    second_moment(density, k)  # checks the density
    us, zs = [], []
    for block, start in enumerate(range(0, n_pairs, BLOCK)):
        rows = min(BLOCK, n_pairs - start)
        gen = generator(*seed_parts, "span", block)
        if density == "ball":  # a uniform direction times a radius with density k r^(k-1)
            g = torch.randn(BLOCK, k, generator=gen, dtype=torch.float64)
            radius = torch.rand(BLOCK, 1, generator=gen, dtype=torch.float64) ** (1 / max(k, 1))
            u = g / g.norm(dim=1, keepdim=True).clamp(min=1e-300) * radius
        else:
            u = 2 * torch.rand(BLOCK, k, generator=gen, dtype=torch.float64) - 1
        us.append(u[:rows])
        if full_space:
            zs.append(torch.randn(BLOCK, n_coords, generator=gen, dtype=torch.float64)[:rows])
    return torch.cat(us), (torch.cat(zs) if full_space else None)


def span_search(problem: ProbeProblem, population: int, sigma: float, seed_parts: tuple, guides: torch.Tensor,
                density: str = "ball", full_space: float = 0.0) -> torch.Tensor:
    """The estimate G of the module docstring, the span of the rows of ``guides`` (k x n)."""
    check_population(population)
    if not sigma > 0 or not full_space >= 0:
        raise ValueError(f"span search needs sigma > 0 and span.full_space >= 0, got {sigma}, {full_space}")
    basis = orthonormal_basis(guides).cpu()
    n, k = problem.n_coords, basis.shape[1]
    n_pairs = population // 2
    u, z = span_samples(seed_parts, n_pairs, k, n, density, full_space > 0)
    v = u @ basis.T
    if z is not None:
        v = v + full_space / math.sqrt(n) * z
    plus, minus = problem.paired_losses(problem.theta0, (sigma * v).to(device=problem.device, dtype=problem.dtype))
    moment = v.T @ (plus - minus).double().cpu() / (2 * sigma * n_pairs)  # E[v v^T] grad L, to first order
    along = basis @ (basis.T @ moment)
    c = second_moment(density, k)
    if full_space > 0:
        gradient = along / (c + full_space**2 / n) + (n / full_space**2) * (moment - along)
    else:
        gradient = along / c
    return gradient.to(device=problem.device, dtype=problem.dtype)


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    guides = ste_guides(problem, settings["guides"], surrogate_params(settings))
    return span_search(problem, settings["population"], settings["sigma"], seed_parts, guides, settings["density"],
                       settings["full_space"])
