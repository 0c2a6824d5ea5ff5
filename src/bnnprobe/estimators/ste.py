"""Straight-through estimators: the backprop gradient with a surrogate ``S'`` for the binary step."""

from __future__ import annotations

import torch

from ..binary import STE_VARIANTS, SurrogateParams
from ..problem import ProbeProblem


def ste(problem: ProbeProblem, variant: str, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
    if variant not in STE_VARIANTS:
        raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")
    return problem.ste_gradient(variant, params)


def surrogate_params(settings: dict) -> SurrogateParams:
    """The surrogate parameters in ``settings`` (an STE's or guided ES's), defaults for the rest."""
    defaults = SurrogateParams()
    return SurrogateParams(steep_k=settings.get("steep_k", defaults.steep_k),
                           swishsign_beta=settings.get("swishsign_beta", defaults.swishsign_beta))


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return ste(problem, settings["variant"], surrogate_params(settings))
