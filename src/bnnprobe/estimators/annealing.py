"""What the particle and Markov-chain optimisers (:mod:`~bnnprobe.estimators.smc`,
:mod:`~bnnprobe.estimators.metropolis`) share: the schedule of their move scale, their state's step
count, and the stand-in for a one-step estimate that the cost model times.

The move scale (the particles' jitter, the chain's proposal width) at the optimiser's own step t is

    sigma_t = sigma * 2^(-t / half_life)        (constant when ``sigma_half_life`` is null),

and each optimiser ties its temperature to it and to its step size ``lr`` (``T_t ∝ sigma_t^2 / lr``), so
the temperature anneals with the scale, by a factor 4 per half-life.
"""

from __future__ import annotations

import torch

from ..problem import ProbeProblem


def move_scale(settings: dict, step: int) -> float:
    """``sigma_t`` of the module docstring."""
    sigma, half_life = float(settings["sigma"]), settings["sigma_half_life"]
    if not sigma > 0 or (half_life is not None and not half_life > 0):
        raise ValueError(f"a move scale needs sigma > 0 and a half-life > 0 (or null), got {sigma}, {half_life}")
    return sigma if half_life is None else sigma * 2.0 ** (-step / float(half_life))


def step_of(state: dict | None) -> int:
    """The optimiser's own steps so far (0 at its start: ``state`` None)."""
    return 0 if state is None else int(state["step"])


def schedule(settings: dict, state: dict | None, lr: float, per_lr: float) -> tuple[int, float, float]:
    """``(t, sigma_t, T_t)`` at the optimiser's step t, with the temperature ``T_t = sigma_t^2 / (per_lr lr)``."""
    if not lr > 0:
        raise ValueError(f"the step size (lr) must be > 0, got {lr}")
    step = step_of(state)
    scale = move_scale(settings, step)
    return step, scale, scale**2 / (per_lr * lr)


def first_move(train_step, problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    """``w - w_1`` for the first step ``w_1`` of ``train_step`` from ``w = problem.theta0`` at lr 1: the
    work of one training step, as a 'gradient' such that ``w - g`` is that step. It is what ``compute``
    returns for a family that trains only (the config keeps it out of the one-step probes, where it is
    no gradient of anything); the cost model times it."""
    new, _ = train_step(problem, settings, 1.0, None, seed_parts)
    return (problem.theta0.double().cpu() - new).to(device=problem.device, dtype=problem.dtype)
