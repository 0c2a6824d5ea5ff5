"""Annealed random-walk Metropolis (``metropolis-<K>``): the log's "Markov chains" as an optimiser of the
training study. It trains only (no one-step gradient for the probes; see ``compute``).

The weights are the state of a Markov chain whose target is ``pi(w) ∝ exp(-L(w) / T_t)``, L the loss on
the step's batch. Each training step makes K Metropolis moves on that batch:

    w' = w + s_t xi,  xi ~ N(0, I);   accept (w <- w') with probability min(1, exp(-(L(w') - L(w)) / T_t)),

starting from ``L(w)`` evaluated once on the new batch. The proposal width ``s_t`` follows
:func:`bnnprobe.estimators.annealing.move_scale` (``metropolis.sigma``,
``metropolis.sigma_half_life``) and the temperature is

    T_t = s_t^2 / (2 lr),

so ``lr`` is the time step of the Langevin diffusion the chain approximates: for small moves
(``lr |grad L| << s_t``) a proposal is accepted with probability about 1/2 either way and the chain
drifts by ``E[w' - w] ≈ -(s_t^2 / 2T_t) grad L = -lr grad L`` per move, with noise of size s_t (the
diffusion limit of random-walk Metropolis: Roberts, Gelman & Gilks, Ann. Appl. Probab. 1997). Larger
lr makes the chain greedier (at T -> 0 it accepts only moves that do not raise the loss). With the
half-life the temperature anneals by a factor 4 per half-life, at a fixed lr (simulated annealing with
a geometric schedule).

The reported weights are the chain's current state. *Cost*: K + 1 loss evaluations a step, one after
another (each move depends on the last). *State*: ``{"step", "sigma": s_t, "accepted", "proposed"}``
(float64 or integer tensors, CPU; the acceptance rate is accepted / proposed), ``None`` at the start.
Noise: proposals and acceptance uniforms in fixed blocks of 64 moves, each from its own derived seed,
on the CPU in float64.
"""

from __future__ import annotations


import torch

from ..problem import ProbeProblem
from ..seeding import generator
from .annealing import first_move, schedule

BLOCK = 64


def moves(seed_parts: tuple, count: int, n_coords: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(xi, log U)``: standard normal proposals (count x n_coords) and the logs of acceptance uniforms
    (count), float64, CPU, block b of ``BLOCK`` moves from its own seed."""
    normals, logs = [], []
    for block, start in enumerate(range(0, count, BLOCK)):
        gen = generator(*seed_parts, "metropolis", block)
        rows = count - start
        normals.append(torch.randn(BLOCK, n_coords, generator=gen, dtype=torch.float64)[:rows])
        logs.append(torch.rand(BLOCK, generator=gen, dtype=torch.float64)[:rows].log())
    return torch.cat(normals), torch.cat(logs)


def train_step(problem: ProbeProblem, settings: dict, lr: float, state: dict | None,
               seed_parts: tuple) -> tuple[torch.Tensor, dict]:
    """K Metropolis moves (the module docstring) from ``problem.theta0`` at step size ``lr``: the chain's
    new state (float64, CPU) and the optimiser's new state."""
    count = settings["proposals"]
    if count < 1:
        raise ValueError(f"Metropolis needs at least one proposal a step, got {count}")
    step, scale, temperature = schedule(settings, state, lr, 2.0)
    theta = problem.theta0.double().cpu()
    current = problem.loss(theta.to(device=problem.device, dtype=problem.dtype))
    xi, log_u = moves(seed_parts, count, problem.n_coords)
    accepted = 0
    for i in range(count):
        candidate = theta + scale * xi[i]
        loss = problem.loss(candidate.to(device=problem.device, dtype=problem.dtype))
        if float(log_u[i]) < -(loss - current) / temperature:
            theta, current = candidate, loss
            accepted += 1
    before = (0, 0) if state is None else (int(state["accepted"]), int(state["proposed"]))
    new_state = {"step": torch.tensor(step + 1), "sigma": torch.tensor(scale, dtype=torch.float64),
                 "accepted": torch.tensor(before[0] + accepted), "proposed": torch.tensor(before[1] + count)}
    return theta, new_state


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    """Not a probe estimator (the config refuses it there): the first step's move at lr 1, which the
    cost model times (:func:`bnnprobe.estimators.annealing.first_move`)."""
    return first_move(train_step, problem, settings, seed_parts)
