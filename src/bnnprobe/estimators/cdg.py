"""Coordinate discrete gradient (CDG), the study's baseline.

``g_i = (L(w + eps e_i) - L(w)) / eps`` for every probed coordinate i (forward
difference), or ``(L(w + eps e_i) - L(w - eps e_i)) / (2 eps)`` (central). It is
the gradient of a smoothed loss; ``eps`` is a config value reported with results.
"""

from __future__ import annotations

import torch

from ..problem import ProbeProblem

SCHEMES = ("forward", "central")


def _check(eps: float, scheme: str) -> None:
    if not eps > 0:
        raise ValueError(f"CDG eps must be > 0, got {eps}")
    if scheme not in SCHEMES:
        raise ValueError(f"unknown CDG scheme {scheme!r}; choose one of {SCHEMES}")


def n_loss_evals(n_coords: int, scheme: str) -> int:
    """Loss evaluations the definition needs (the fast path computes the same numbers with fewer)."""
    return n_coords + 1 if scheme == "forward" else 2 * n_coords


def cdg(problem: ProbeProblem, eps: float, scheme: str = "forward") -> torch.Tensor:
    """CDG through the problem's exact fast path where it has one, else batched loss evaluations."""
    _check(eps, scheme)
    exact = problem.exact_cdg(eps, scheme)
    return exact if exact is not None else cdg_batched(problem, eps, scheme)


def _unit_steps(problem: ProbeProblem, coords: torch.Tensor, step: float) -> torch.Tensor:
    thetas = problem.theta0.repeat(len(coords), 1)
    thetas[torch.arange(len(coords)), coords] += step
    return thetas


def cdg_batched(problem: ProbeProblem, eps: float, scheme: str = "forward", chunk: int = 256) -> torch.Tensor:
    """CDG from ``problem.losses`` on stacks of perturbed copies (any problem)."""
    _check(eps, scheme)
    base = problem.loss()
    parts = []
    for coords in torch.arange(problem.n_coords).split(chunk):
        plus = problem.losses(_unit_steps(problem, coords, eps))
        if scheme == "forward":
            parts.append((plus - base) / eps)
        else:
            parts.append((plus - problem.losses(_unit_steps(problem, coords, -eps))) / (2 * eps))
    return torch.cat(parts).to(problem.dtype)


def cdg_loop(problem: ProbeProblem, eps: float, scheme: str = "forward") -> torch.Tensor:
    """The plain per-coordinate loop: one loss evaluation per coordinate. The reference path."""
    _check(eps, scheme)
    base = problem.loss()
    grad = torch.empty(problem.n_coords, dtype=torch.float64)
    for i in range(problem.n_coords):
        theta = problem.theta0.clone()
        theta[i] += eps
        if scheme == "forward":
            grad[i] = (problem.loss(theta) - base) / eps
        else:
            other = problem.theta0.clone()
            other[i] -= eps
            grad[i] = (problem.loss(theta) - problem.loss(other)) / (2 * eps)
    return grad.to(problem.dtype)


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return cdg(problem, settings["eps"], settings["scheme"])
