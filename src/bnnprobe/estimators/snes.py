"""Separable NES (SNES; Schaul, Glasmachers and Schmidhuber 2011; Wierstra et al., JMLR 2014): the
research log's per-parameter NES used as an optimiser.

The search distribution is N(mu, diag(sigma^2)): a mean and a width *per parameter*, both learned.
Each step draws M samples ``x_k = mu + sigma * z_k`` (z standard normal, in antithetic pairs
``(z, -z)``), scores them with fitness = -loss, turns the scores into utilities ``u_k`` (rank-based
fitness shaping, :func:`bnnprobe.estimators.nes.rank_utilities`, by default; with shaping off,
``u_k = -(L_k - mean L) / M``), and moves both parameters along their natural gradients:

    grad_mu    = sum_k u_k z_k                 grad_sigma = sum_k u_k (z_k^2 - 1)
    mu    <- mu + eta_mu * sigma * grad_mu      sigma <- sigma * exp(eta_sigma / 2 * grad_sigma)

The Fisher information of a Gaussian is 1/sigma^2 for mu and 2/sigma^2 for sigma: the natural
gradients of the expected fitness are ``sigma * grad_mu`` and ``(sigma / 2) grad_sigma`` per parameter,
which is what the log's pseudo-code asks for ("compute the Fisher information of mu and of sigma,
update mu and sigma"). The log implies one learning rate for both and an additive sigma update; the
exponential form keeps sigma positive and equals the additive one to first order. Standard
learning rates: ``eta_mu = 1`` (the training study tunes it like any lr), ``eta_sigma = (3 + ln n) /
(5 sqrt(n))`` for n parameters; the default population is ``4 + floor(3 ln n)`` (``snes`` without a number,
rounded up to an even number: :func:`~bnnprobe.estimators.registry.default_population`). All parameters are sampled jointly; the log's question whether they
must be sampled one after another is answered by the separable form: the samples of different
parameters are independent, so drawing them together is the same distribution.

As a one-step probe estimator (``snes-<M>``), sigma is the initial width ``snes.sigma`` everywhere and
the estimate is the loss gradient ``-sigma * grad_mu`` (its natural gradient for mu, so that
``w - eta_mu g`` is SNES's step of mu).

Noise: antithetic pairs in fixed blocks from derived seeds, drawn on the CPU in float64, so a seed
gives the same samples on every device and dtype.
"""

from __future__ import annotations

import math

import torch

from ..problem import ProbeProblem
from ..seeding import generator
from .nes import rank_utilities
from .registry import default_population
from .sampling import check_population

BLOCK = 64


def default_eta_sigma(n_params: int) -> float:
    return (3 + math.log(n_params)) / (5 * math.sqrt(n_params))


def _noise(seed_parts: tuple, n_pairs: int, n_coords: int) -> torch.Tensor:
    """Standard normals (n_pairs x n_coords, float64, CPU): block b of ``BLOCK`` pairs from its own seed."""
    blocks = []
    for block, start in enumerate(range(0, n_pairs, BLOCK)):
        gen = generator(*seed_parts, "snes", block)
        blocks.append(torch.randn(min(BLOCK, n_pairs - start), n_coords, generator=gen, dtype=torch.float64))
    return torch.cat(blocks)


def natural_gradients(problem: ProbeProblem, sigma: torch.Tensor, samples: int, seed_parts: tuple,
                      fitness_shaping: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """``(grad_mu, grad_sigma)`` of the expected utility at ``mu = problem.theta0`` and ``sigma``
    (float64, CPU; see the module docstring)."""
    check_population(samples)
    n_pairs = samples // 2
    sigma = sigma.double().cpu()
    z = _noise(seed_parts, n_pairs, problem.n_coords)
    plus, minus = problem.paired_losses(problem.theta0, (sigma * z).to(device=problem.device, dtype=problem.dtype))
    losses = torch.cat([plus.double().cpu(), minus.double().cpu()])
    if fitness_shaping:
        utilities = rank_utilities(losses)
    else:
        utilities = -(losses - losses.mean()) / samples
    up, um = utilities[:n_pairs], utilities[n_pairs:]
    grad_mu = z.T @ (up - um)  # the pair's second sample is -z
    grad_sigma = (z * z - 1).T @ (up + um)
    return grad_mu, grad_sigma


def update(mu: torch.Tensor, sigma: torch.Tensor, grad_mu: torch.Tensor, grad_sigma: torch.Tensor,
           eta_mu: float, eta_sigma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One SNES step of ``(mu, sigma)``."""
    return mu + eta_mu * sigma * grad_mu, sigma * torch.exp(eta_sigma / 2 * grad_sigma)


def samples_for(settings: dict, n_coords: int) -> int:
    """The population: the name's, or (``snes`` alone) the default for ``n_coords`` parameters."""
    return settings["samples"] or default_population(n_coords)


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    sigma = torch.full((problem.n_coords,), float(settings["sigma"]), dtype=torch.float64)
    grad_mu, _ = natural_gradients(problem, sigma, samples_for(settings, problem.n_coords), seed_parts,
                                   settings["fitness_shaping"])
    return (-sigma * grad_mu).to(device=problem.device, dtype=problem.dtype)


def train_step(problem: ProbeProblem, settings: dict, lr: float, state: torch.Tensor | None,
               seed_parts: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """One SNES step in training, from ``mu = problem.theta0`` with step size ``lr`` (eta_mu): the new mu
    and the new search widths (``state``: sigma per parameter; None starts at ``settings["sigma"]``)."""
    sigma = state if state is not None else torch.full((problem.n_coords,), float(settings["sigma"]),
                                                       dtype=torch.float64)
    eta_sigma = settings["eta_sigma"]
    eta_sigma = default_eta_sigma(problem.n_coords) if eta_sigma == "auto" else float(eta_sigma)
    grad_mu, grad_sigma = natural_gradients(problem, sigma, samples_for(settings, problem.n_coords), seed_parts,
                                            settings["fitness_shaping"])
    return update(problem.theta0.double().cpu(), sigma, grad_mu, grad_sigma, lr, eta_sigma)
