"""The straight-through estimator of a stochastic binary network (``stochastic-ste-<draws>``): the log's
"randomised STE", in the principled reading of Shekhovtsov & Yanush (2021, "Reintroducing
straight-through estimators as principled methods for stochastic binary networks").

Every hidden unit fires at random: ``a = (r/2) sign(u + s xi) + c``, ``u = (x - t)/h`` as in
:mod:`bnnprobe.binary`, ``xi`` drawn afresh per unit and per sample from a symmetric noise law of unit
variance (``stochastic_ste.noise``: logistic, gaussian or uniform), ``s`` its standard deviation in units
of the ramp's half-width h (``stochastic_ste.scale``). Its mean is smooth,
``E[a] = (r/2)(2 F(u/s) - 1) + c``. One *draw* is a forward pass that samples the noise and a backward
pass that uses the derivative of that mean, ``da/dx = (r/2h) (2/s) f(u/s)``, in place of the step's
(:func:`bnnprobe.binary.stochastic_binary`); the estimate is the mean of ``D`` draws' backprop gradients:

    G = (1/D) sum_d  grad_w L(w; xi_d)  with  d a/dx := (r/2h) S'(u),  S'(u) = (2/s) f(u/s).

*What it estimates.* The gradient of the stochastic network's expected loss
``E_xi[L(w; xi)]``. For one stochastic layer whose outputs enter the loss affinely (each unit's
``L`` linear in ``a_j`` given the others), it is unbiased: ``dL/da_j`` is then the difference
``L(a_j = high) - L(a_j = low)`` over r, whatever was sampled. Beyond that it is biased. For the
probe's MLP with one hidden layer (depth 2, linear read-out ``W2``), the bias of the gradient of one
sample's loss ``|W2 a + b2 - y|^2 / D`` (D outputs) at its pre-activation ``x_j`` is, in closed form,

    E[G_xj] - dE[L]/dx_j = (r^2 / (h s)) f(u_j/s) (2 p_j - 1) |W2[:, j]|^2 / D,    p_j = F(u_j/s)

(the loss is quadratic in ``a``: its slope at the sampled value is not the secant), zero for the
read-out layer, whose gradient is the exact pathwise one. With two or more stochastic layers the
chain rule multiplies such slopes and the bias has no closed form (tests/test_stochastic_ste.py
measures both cases against an enumeration of the activation patterns).

*What the probe measures.* The probe's and the training's losses are the *deterministic* network's
(noise-free forward pass); this estimate is the gradient of another function, the noise-smoothed
expected loss, which tends to the deterministic loss as ``s -> 0`` while the surrogate tends to a spike.
Uniform noise of half-width h (``s = 1/sqrt(3)``) gives the vanilla ramp as its surrogate: the
estimator is then the vanilla STE with a sampled forward pass.

*Cost.* D forward and D backward passes (D loss evaluations and D backprop passes), the noise drawn
for each draw and hidden layer from its own derived seed, on the CPU in float64 (the same numbers on
every device).

The other reading of the log's two words, a surrogate drawn at random for each backward pass over the
deterministic forward pass, is not a family: its mean over draws is a fixed combination of
deterministic STE gradients (the STE of the mean surrogate when each unit draws its own, the mean of
the variants' STE gradients when one draw serves a whole pass), so it adds variance to estimators the
probe already has, at the same cost per pass.
"""

from __future__ import annotations

import torch

from ..binary import NOISE_LAWS, noise_quantile
from ..problem import ProbeProblem
from ..seeding import generator

_TINY = 2.0**-53  # keeps the uniforms off 0 and 1, where a logistic or Gaussian quantile is infinite


def activation_noise(seed_parts: tuple, law: str):
    """``noise(draw, layer, shape)``: standard samples of ``law`` for one hidden layer of one draw
    (float64, CPU), each (draw, layer) from its own derived seed."""
    def noise(draw: int, layer: int, shape) -> torch.Tensor:
        gen = generator(*seed_parts, "stochastic-ste", draw, layer)
        uniforms = torch.rand(tuple(shape), generator=gen, dtype=torch.float64).clamp_(_TINY, 1 - _TINY)
        return noise_quantile(law, uniforms)

    return noise


def stochastic_ste(problem: ProbeProblem, draws: int, law: str, scale: float, seed_parts: tuple) -> torch.Tensor:
    """The mean of ``draws`` straight-through gradients of the stochastic network (the module docstring)."""
    if draws < 1:
        raise ValueError(f"the stochastic STE needs at least one draw, got {draws}")
    if law not in NOISE_LAWS or not scale > 0:
        raise ValueError(f"the stochastic STE needs a noise law in {NOISE_LAWS} and a scale > 0, got {law!r}, {scale}")
    method = getattr(problem, "stochastic_ste_gradient", None)
    if method is None:
        raise NotImplementedError(f"{problem.description} has no stochastic forward pass (the MLP and the layer "
                                  "probe have one)")
    return method(law, scale, draws, activation_noise(seed_parts, law))


def compute(problem: ProbeProblem, settings: dict, seed_parts: tuple) -> torch.Tensor:
    return stochastic_ste(problem, settings["draws"], settings["noise"], settings["scale"], seed_parts)
