"""Straight-through estimators: the backprop gradient with a surrogate ``S'`` for the binary step."""

from __future__ import annotations

import torch

from ..binary import STE_VARIANTS, SurrogateParams
from ..problem import ProbeProblem


def ste(problem: ProbeProblem, variant: str, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
    if variant not in STE_VARIANTS:
        raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")
    return problem.ste_gradient(variant, params)
