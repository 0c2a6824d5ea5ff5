"""Gradient estimators behind one registry, addressed by name.

Names: ``cdg``, ``smoothed``, ``nes-<population>``, ``nes-coord-<samples per coordinate>``,
``ste-<variant>`` (vanilla, steep, swishsign, polynomial) and ``guided-es``; an instance name
(``nes-500_sigma0.1``) runs the estimator at its own knob value (:mod:`bnnprobe.naming`). Each maps
(problem, settings, seed) to a flat gradient of the loss w.r.t. the probed coordinates; a step is
``w - lr * g``. Some also return ``extras`` (other gradients the definition yields, kept in the record).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..binary import SurrogateParams
from ..naming import FAMILY_MODULES, NAME_PATTERN, family, settings_for, split_instance  # noqa: F401 - re-exported
from ..problem import ProbeProblem


@dataclass(frozen=True)
class Estimate:
    gradient: torch.Tensor
    n_loss_evals: int  # loss evaluations the definition uses (a fast path may compute the same with fewer)
    extras: dict = field(default_factory=dict)  # further per-coordinate gradients, e.g. for sigma


def _surrogate(settings: dict) -> SurrogateParams:
    defaults = SurrogateParams()
    return SurrogateParams(steep_k=settings.get("steep_k", defaults.steep_k),
                           swishsign_beta=settings.get("swishsign_beta", defaults.swishsign_beta))


def estimate(name: str, problem: ProbeProblem, settings: dict, seed_parts: tuple = ()) -> Estimate:
    """Run estimator ``name`` on ``problem``; ``seed_parts`` seed the stochastic ones.

    Each family's module is imported here, not at the top: a job loads only the code of
    the estimator it runs, and the workflow re-runs a job when that code changes
    (:data:`bnnprobe.naming.FAMILY_MODULES`).
    """
    name = split_instance(name)[0]  # the knob value is in ``settings``; noise seeds follow the name only
    fam = family(name)
    if fam in ("nes-coord", "smoothed"):
        from . import coordinate

        if fam == "smoothed":
            # computed from the flips like exact CDG, at about its cost (an integral has no finite count)
            return Estimate(coordinate.smoothed(problem, settings["sigma"]), problem.n_coords + 1)
        grad, extras = coordinate.nes_coordinate(problem, settings["samples"], settings["sigma"], (name, *seed_parts))
        return Estimate(grad, settings["samples"] * problem.n_coords, extras)
    if fam == "cdg":
        from . import cdg as cdg_module

        grad = cdg_module.cdg(problem, settings["eps"], settings["scheme"])
        return Estimate(grad, cdg_module.n_loss_evals(problem.n_coords, settings["scheme"]))
    if fam == "ste":
        from . import ste

        return Estimate(ste.ste(problem, settings["variant"], _surrogate(settings)), 1)
    from . import es

    if fam == "nes":
        grad = es.nes(problem, settings["population"], settings["sigma"], (name, *seed_parts),
                      settings["fitness_shaping"])
        return Estimate(grad, settings["population"])
    guides = es.ste_guides(problem, settings["guides"], _surrogate(settings))
    grad = es.guided_es(problem, settings["population"], settings["sigma"], (name, *seed_parts), guides,
                        settings["alpha"], settings["beta"])
    return Estimate(grad, settings["population"] + len(settings["guides"]))
