"""Gradient estimators behind one registry (:mod:`bnnprobe.estimators.registry`), addressed by name.

Names are those of the registry's families; an instance name (``nes-500_sigma0.1``) runs the
estimator at its own knob value (:mod:`bnnprobe.naming`). Each maps
(problem, settings, seed) to a flat gradient of the loss w.r.t. the probed coordinates; a step is
``w - lr * g``. Some also return ``extras`` (other gradients the definition yields, kept in the record).

Torch-free at import: a family's module is imported when it first runs, so a job loads only the
code of the estimators it runs, and the workflow re-runs a job when exactly that code changes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING

from .registry import FAMILIES, Family, family_of  # noqa: F401 - re-exported

if TYPE_CHECKING:
    import torch

    from ..problem import ProbeProblem


@dataclass(frozen=True)
class Estimate:
    gradient: torch.Tensor
    n_loss_evals: int  # loss evaluations the definition uses (a fast path may compute the same with fewer)
    extras: dict = field(default_factory=dict)  # further per-coordinate gradients, e.g. for sigma


def family_module(fam: Family) -> ModuleType:
    """The module that computes family ``fam``, imported now (a job loads only what it runs)."""
    return importlib.import_module(f"{__name__}.{fam.module}")


def estimate(name: str, problem: ProbeProblem, settings: dict, seed_parts: tuple = ()) -> Estimate:
    """Run estimator ``name`` (or an instance name) on ``problem``; ``seed_parts`` seed the stochastic ones."""
    from ..naming import split_instance

    name = split_instance(name)[0]  # the knob value is in ``settings``; noise seeds follow the name only
    fam = family_of(name)
    out = family_module(fam).compute(problem, settings, (name, *seed_parts))
    gradient, extras = out if isinstance(out, tuple) else (out, {})
    return Estimate(gradient, fam.loss_evals(settings, problem.n_coords), extras)
