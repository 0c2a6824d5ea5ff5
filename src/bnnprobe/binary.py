"""Hard binary activations and their straight-through estimators (STEs).

A binary activation is written ``a = (r/2) * sign(u) + c`` with ``u = (x - t) / h``:
threshold ``t``, half-width ``h`` of the ramp, value range ``r`` and centre ``c``.

* ``zero_one`` (default, as in BinaryDuo's code): ``a = 1[x >= 0.5]`` in {0, 1};
  t = 0.5, h = 0.5, r = 1, c = 0.5.
* ``sign``: ``a = sign(x)`` in {-1, +1} (sign(0) = +1); t = 0, h = 1, r = 2, c = 0.

The forward pass is always the hard activation. An STE replaces ``sign(u)`` in the
backward pass by a surrogate ``S(u)`` rising from -1 to +1 (the identity's is unbounded), so that
``da/dx = (r / 2h) * S'(u)``, which equals ``S'(u)`` for both defaults.

Surrogates (``S`` and its derivative ``S'``):

* ``identity`` (the plain STE of Hinton's lectures and Bengio et al. 2013, no clipping): ``S = u``,
  ``S' = 1`` everywhere. Yin et al. (ICLR 2019, "Understanding Straight-Through Estimator in
  Training Activation Quantized Neural Nets") show that training with it can be unstable near a
  minimum where the clipped ones are not; it is the probe's control for what the clipping does.
* ``vanilla`` (clipped identity, BinaryDuo's "ReLU" STE): ``S = clip(u, -1, 1)``,
  ``S' = 1[|u| <= 1]``.
* ``steep``: the same ramp k times steeper, ``S = clip(k u, -1, 1)``,
  ``S' = k 1[|u| <= 1/k]`` (k = 2). Our own reading of the log's "Steep" STE.
* ``polynomial`` (ApproxSign, Bi-Real Net): ``S = 2u - u|u|`` on |u| <= 1,
  ``S' = (2 - 2|u|) 1[|u| <= 1]``.
* ``swishsign`` (BNN+): ``S = 2 sigmoid(bu) (1 + bu (1 - sigmoid(bu))) - 1``,
  ``S' = b (2 - bu tanh(bu/2)) / (1 + cosh(bu))`` (b = 5).

A *stochastic* binary activation (:func:`stochastic_binary`) adds noise before the step:
``a = (r/2) sign(u + s xi) + c`` with ``xi`` from a symmetric noise law of unit variance
(``logistic``, ``gaussian`` or ``uniform``, :data:`NOISE_LAWS`) and ``s`` its standard deviation in
units of ``h``. Its mean is smooth, ``E[sign(u + s xi)] = 2 F(u/s) - 1`` (F the law's CDF), and its
straight-through backward is the derivative of that mean, ``S'(u) = (2/s) f(u/s)`` (f the density):
:func:`noise_surrogate` and :func:`noise_surrogate_derivative`. Uniform noise of half-width
``h`` (``s = 1/sqrt(3)``) has the vanilla ramp as its mean.

XNOR weight binarisation (Rastegari et al. 2016) lives here too:
``alpha * sign(W)`` with alpha the mean |W| per output filter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .activations import ACTIVATIONS, BinaryActivation, get_activation  # noqa: F401 - re-exported
from .estimators.registry import STE_VARIANTS  # noqa: F401 - re-exported


@dataclass(frozen=True)
class SurrogateParams:
    steep_k: float = 2.0
    swishsign_beta: float = 5.0


def surrogate(variant: str, u: torch.Tensor, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
    """The smooth (or piecewise-linear) function ``S(u)`` that an STE differentiates."""
    if variant == "identity":
        return u.clone()
    if variant == "vanilla":
        return u.clamp(-1.0, 1.0)
    if variant == "steep":
        return (params.steep_k * u).clamp(-1.0, 1.0)
    if variant == "polynomial":
        v = u.clamp(-1.0, 1.0)
        return 2 * v - v * v.abs()
    if variant == "swishsign":
        bu = params.swishsign_beta * u
        s = torch.sigmoid(bu)
        return 2 * s * (1 + bu * (1 - s)) - 1
    raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")


def surrogate_derivative(variant: str, u: torch.Tensor, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
    """Closed-form ``S'(u)``; tests check it against autograd of :func:`surrogate`."""
    if variant == "identity":
        return torch.ones_like(u)
    if variant == "vanilla":
        return (u.abs() <= 1).to(u.dtype)
    if variant == "steep":
        k = params.steep_k
        return k * (u.abs() <= 1 / k).to(u.dtype)
    if variant == "polynomial":
        return (2 - 2 * u.abs()).clamp(min=0.0)
    if variant == "swishsign":
        b = params.swishsign_beta
        bu = b * u
        return b * (2 - bu * torch.tanh(bu / 2)) / (1 + torch.cosh(bu))
    raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard activation of ``x + shift`` (``shift`` None: of x); backward: ``(r/2h) S'(u)`` at
    ``u = (x - t)/h``, ``S'`` the callable ``derivative``."""

    generate_vmap_rule = True  # the layer probe evaluates stacked weight copies with torch.func.vmap

    @staticmethod
    def forward(x, shift, activation, derivative):
        return activation.hard(x if shift is None else x + shift)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, shift, activation, derivative = inputs
        ctx.save_for_backward(x)
        ctx.activation, ctx.derivative = activation, derivative

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        act = ctx.activation
        u = (x - act.threshold) / act.half_width
        scale = act.value_range / (2 * act.half_width)
        return grad_out * scale * ctx.derivative(u), None, None, None


def binary_ste(
    x: torch.Tensor,
    activation: BinaryActivation,
    variant: str,
    params: SurrogateParams = SurrogateParams(),
) -> torch.Tensor:
    """Hard activation forward, ``(r/2h) S'(u)`` backward."""
    if variant not in STE_VARIANTS:
        raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")
    return _StraightThrough.apply(x, None, activation, lambda u: surrogate_derivative(variant, u, params))


NOISE_LAWS = ("logistic", "gaussian", "uniform")
_LOGISTIC_SCALE = math.sqrt(3) / math.pi  # the logistic law's scale parameter at unit variance
_UNIFORM_HALF_WIDTH = math.sqrt(3)  # the uniform law's half-width at unit variance


def _check_law(law: str) -> None:
    if law not in NOISE_LAWS:
        raise ValueError(f"unknown noise law {law!r}; choose one of {NOISE_LAWS}")


def noise_cdf(law: str, v: torch.Tensor) -> torch.Tensor:
    """The CDF ``F(v)`` of the noise law at unit variance (symmetric: ``F(-v) = 1 - F(v)``)."""
    _check_law(law)
    if law == "logistic":
        return torch.sigmoid(v / _LOGISTIC_SCALE)
    if law == "gaussian":
        return torch.special.ndtr(v)
    return ((v + _UNIFORM_HALF_WIDTH) / (2 * _UNIFORM_HALF_WIDTH)).clamp(0.0, 1.0)


def noise_density(law: str, v: torch.Tensor) -> torch.Tensor:
    """The density ``f(v) = F'(v)`` of the noise law at unit variance."""
    _check_law(law)
    if law == "logistic":
        p = torch.sigmoid(v / _LOGISTIC_SCALE)
        return p * (1 - p) / _LOGISTIC_SCALE
    if law == "gaussian":
        return torch.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    return (v.abs() <= _UNIFORM_HALF_WIDTH).to(v.dtype) / (2 * _UNIFORM_HALF_WIDTH)


def noise_quantile(law: str, p: torch.Tensor) -> torch.Tensor:
    """The inverse CDF: a sample of the law from a uniform ``p`` in (0, 1)."""
    _check_law(law)
    if law == "logistic":
        return _LOGISTIC_SCALE * (torch.log(p) - torch.log1p(-p))
    if law == "gaussian":
        return torch.special.ndtri(p)
    return _UNIFORM_HALF_WIDTH * (2 * p - 1)


def noise_surrogate(law: str, u: torch.Tensor, scale: float) -> torch.Tensor:
    """``S(u) = E[sign(u + scale xi)] = 2 F(u / scale) - 1``: the mean of the stochastic sign."""
    return 2 * noise_cdf(law, u / scale) - 1


def noise_surrogate_derivative(law: str, u: torch.Tensor, scale: float) -> torch.Tensor:
    """Closed-form ``S'(u) = (2 / scale) f(u / scale)``; tests check it against autograd of :func:`noise_surrogate`."""
    return 2 / scale * noise_density(law, u / scale)


def stochastic_binary(x: torch.Tensor, noise: torch.Tensor, activation: BinaryActivation, law: str,
                      scale: float) -> torch.Tensor:
    """The stochastic activation ``(r/2) sign(u + scale * noise) + c`` forward (``noise``: samples of ``law``
    at unit variance, the shape of ``x``), the derivative of its mean, ``(r/2h) S'(u)``, backward."""
    _check_law(law)
    if not scale > 0:
        raise ValueError(f"the noise scale must be > 0, got {scale}")
    shift = (activation.half_width * float(scale)) * noise.to(device=x.device, dtype=x.dtype)
    return _StraightThrough.apply(x, shift, activation, lambda u: noise_surrogate_derivative(law, u, scale))


def xnor_binarize_weight(weight: torch.Tensor) -> torch.Tensor:
    """XNOR-Net weights ``alpha * sign(W)``, alpha = mean |W| over each output filter.

    The gradient flows straight through to ``W`` (the usual XNOR-Net training rule).
    """
    dims = tuple(range(1, weight.dim()))
    alpha = weight.abs().mean(dim=dims, keepdim=True)
    signed = torch.where(weight >= 0, 1.0, -1.0).to(weight.dtype)
    binary = alpha * signed
    return weight + (binary - weight).detach()
