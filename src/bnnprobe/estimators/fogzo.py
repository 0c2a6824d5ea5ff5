"""FOGZO (Yang & Aamodt, NeurIPS 2025, "Improving the Straight-Through Estimator with Zeroth-Order
Information"): a zeroth-order estimate whose directions are drawn around the STE gradient.

With ``g`` the STE gradient on the batch and ``ĝ = g / |g|``, each of n directions is

    v_i = sqrt(beta) s_i ĝ + sqrt(1 - beta) u_i,      s_i = ±1 (fair coin),  u_i i.i.d. per coordinate

and the estimate is the two-sided finite difference along each:

    G = (1/n) sum_i (L(w + eps v_i) - L(w - eps v_i)) / (2 eps) v_i.

By a first-order expansion, E[G] ≈ beta ĝ ĝᵀ ∇L_eps + (1 - beta) ∇L_eps (∇L_eps: the gradient of the
loss smoothed along the directions): the STE's direction is kept in proportion to how much the loss
really changes along it, and the random part corrects it. One estimate costs one STE gradient (a forward
and a backward pass) and 2n loss evaluations.

**As published.** An STE's surrogate derivative is (up to scale) the density of the noise whose smoothing
of the hard step it stands for: a clipped identity (``vanilla``, ``steep``) stands for uniform noise over
its ramp, ApproxSign (``polynomial``) for triangular noise. The random part ``u`` is drawn from that law
at unit variance (uniform on [-sqrt 3, sqrt 3], triangular on [-sqrt 6, sqrt 6];
:data:`bnnprobe.activations.SURROGATE_NOISE`) and ``eps`` is tied to it (``fogzo.eps: null``, filled in by the
config check): the law's standard deviation on the ramp, ``h / sqrt 3`` for the clipped identity of
half-width h, ``h / (k sqrt 3)`` for the steep one, ``h / sqrt 6`` for ApproxSign, so that ``eps u`` has
exactly the spread of the noise the STE implies. SwishSign's derivative is negative in its tails and the
identity STE implies no noise at all: for them ``u`` is standard normal and the tie uses the clipped
identity's ``h / sqrt 3``. beta decays linearly from 1 at the start of training to ``fogzo.beta`` at the
step cap (``fogzo.beta_schedule: linear``, the paper's; ``constant`` keeps ``fogzo.beta``); a one-step
probe, which has no training progress, uses ``fogzo.beta``.

**Departures.** The paper binarises weights, so its noise lives where its perturbation does; here the
binarised quantities are pre-activations and the perturbation is on the weights: the tie gives the weight
perturbation the pre-activation noise's scale, which a unit input maps one to one (the MLP's inputs and
{0, 1} activations are of that scale). The paper recommends one direction (n = 1); the presets use more
(``fogzo-8``), so that one estimate is not the sign of a single finite difference.

Noise: the signs and directions of each block of directions come from their own derived seed, on
the CPU in float64, so the numbers do not depend on the device.
"""

from __future__ import annotations

import math

import torch

from ..activations import SURROGATE_NOISE
from ..problem import ProbeProblem
from ..seeding import generator
from .ste import surrogate_params

BLOCK = 64


def noise_law(guide: str) -> str:
    """The unit-variance law of the random part for guide STE ``guide`` (normal where it stands for none)."""
    return SURROGATE_NOISE[guide][0] if guide in SURROGATE_NOISE else "normal"


def unit_noise(law: str, shape: tuple, gen: torch.Generator) -> torch.Tensor:
    """i.i.d. draws of ``law`` at mean 0, variance 1 (float64, CPU)."""
    if law == "normal":
        return torch.randn(shape, generator=gen, dtype=torch.float64)
    if law == "uniform":
        return math.sqrt(3) * (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1)
    if law == "triangular":  # the sum of two uniforms on [-1/2, 1/2] is triangular on [-1, 1], variance 1/6
        return math.sqrt(6) * (torch.rand(shape, generator=gen, dtype=torch.float64)
                               + torch.rand(shape, generator=gen, dtype=torch.float64) - 1)
    raise ValueError(f"unknown noise law {law!r}")


def directions(seed_parts: tuple, n: int, n_coords: int, beta: float, guide: torch.Tensor,
               law: str = "normal") -> torch.Tensor:
    """The n directions ``v_i`` (n x n_coords, float64, CPU) around the unit vector ``guide``."""
    rows = []
    for block, start in enumerate(range(0, n, BLOCK)):
        count = min(BLOCK, n - start)
        gen = generator(*seed_parts, "fogzo", block)
        signs = torch.randint(0, 2, (count,), generator=gen, dtype=torch.float64) * 2 - 1
        noise = unit_noise(law, (count, n_coords), gen)
        rows.append(math.sqrt(beta) * signs[:, None] * guide + math.sqrt(1 - beta) * noise)
    return torch.cat(rows)


def fogzo(problem: ProbeProblem, n: int, eps: float, beta: float, seed_parts: tuple, variant: str = "vanilla",
          params=None, law: str = "normal") -> torch.Tensor:
    """The FOGZO estimate of the loss gradient (see the module docstring)."""
    if n < 1:
        raise ValueError(f"FOGZO needs at least one direction, got {n}")
    if not eps > 0 or not 0 <= beta <= 1:
        raise ValueError(f"FOGZO needs eps > 0 and 0 <= beta <= 1, got eps={eps}, beta={beta}")
    ste = problem.ste_gradient(variant, params).double().cpu()
    norm = float(ste.norm())
    guide = ste / norm if norm > 0 else torch.zeros_like(ste)  # no STE signal: the random part alone
    v = directions(seed_parts, n, problem.n_coords, beta, guide, law)
    plus, minus = problem.paired_losses(problem.theta0, (eps * v).to(problem.dtype))
    slopes = (plus - minus).double().cpu() / (2 * eps)
    return (slopes @ v / n).to(device=problem.device, dtype=problem.dtype)


def beta_at(settings: dict, fraction: float) -> float:
    """beta at ``fraction`` of the step cap: from 1 down to ``settings["beta"]`` (linear), or constant."""
    if settings["beta_schedule"] == "constant":
        return settings["beta"]
    return 1 - (1 - settings["beta"]) * min(max(fraction, 0.0), 1.0)


def settings_at(settings: dict, fraction: float) -> dict:
    """The settings at ``fraction`` of training (the trainer asks for them every step)."""
    return {**settings, "beta_now": beta_at(settings, fraction)}


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    guide = settings["guide"]
    beta = settings.get("beta_now", settings["beta"])
    return fogzo(problem, settings["directions"], float(settings["eps"]), beta, seed_parts, guide,
                 surrogate_params(settings), noise_law(guide))
