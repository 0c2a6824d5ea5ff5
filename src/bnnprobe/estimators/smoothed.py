"""The exact smoothed coordinate gradient ``g_i = d/dmu E_z[L(w + (mu + sigma z) e_i)]`` at mu = 0:
the infinite-sample limit of per-parameter NES (:mod:`bnnprobe.estimators.nes_coord`), from the
problem's closed form where it has one (the MLP: :mod:`bnnprobe.mlp.flips`)."""

from __future__ import annotations

import torch

from ..problem import ProbeProblem


def smoothed(problem: ProbeProblem, sigma: float) -> torch.Tensor:
    """The exact smoothed coordinate gradient, from the problem's closed form."""
    if not sigma > 0:
        raise ValueError(f"the smoothing sigma must be > 0, got {sigma}")
    grad = problem.smoothed_coordinate_gradient(sigma)
    if grad is None:
        raise NotImplementedError(f"{problem.description} has no closed form of the smoothed coordinate gradient "
                                  "(the MLP probe has one); drop 'smoothed' from this probe's estimators")
    return grad


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return smoothed(problem, settings["sigma"])
