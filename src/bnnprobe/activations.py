"""The binary activations and the smoothing noise each STE surrogate stands for (torch-free: the config
check reads them; :mod:`bnnprobe.binary` builds the activations and surrogates on them).

A binary activation is ``a = (r/2) sign((x - t)/h) + c``: threshold ``t``, half-width ``h`` of the ramp, value
range ``r``, centre ``c``. A surrogate derivative ``S'(u)`` that is a probability density (up to scale) is
the straight-through estimator of the hard step smoothed by noise of that law on the pre-activation: the
clipped identity (``vanilla``, and ``steep`` on a k times narrower ramp) stands for uniform noise over the
ramp, ApproxSign (``polynomial``) for triangular noise; SwishSign's derivative is negative in its tails and
the identity's is flat: they stand for no such law (:data:`SURROGATE_NOISE`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

@dataclass(frozen=True)
class BinaryActivation:
    """Parameters of ``a = (r/2) sign((x - t)/h) + c``."""

    name: str
    threshold: float
    half_width: float
    value_range: float
    centre: float

    @property
    def high(self) -> float:
        return self.centre + self.value_range / 2

    @property
    def low(self) -> float:
        return self.centre - self.value_range / 2

    def hard(self, x):
        """The forward activation: ``high`` where ``x >= threshold``, else ``low``."""
        out = (x >= self.threshold).to(x.dtype)
        if self.value_range != 1.0 or self.low != 0.0:  # {0, 1} needs no affine map: one pass less
            out.mul_(self.value_range).add_(self.low)
        return out


ACTIVATIONS = {
    "zero_one": BinaryActivation("zero_one", threshold=0.5, half_width=0.5, value_range=1.0, centre=0.5),
    "sign": BinaryActivation("sign", threshold=0.0, half_width=1.0, value_range=2.0, centre=0.0),
}


def get_activation(name: str) -> BinaryActivation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


def get_activation(name: str) -> BinaryActivation:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}") from None


# the noise law (at unit variance) each surrogate stands for, and its standard deviation in ramp half-widths
SURROGATE_NOISE = {"vanilla": ("uniform", 1 / math.sqrt(3)), "steep": ("uniform", 1 / math.sqrt(3)),
                   "polynomial": ("triangular", 1 / math.sqrt(6))}


def surrogate_noise_std(variant: str, activation: str, steep_k: float = 2.0) -> float | None:
    """The standard deviation, in pre-activation units, of the noise surrogate ``variant`` stands for on
    ``activation``'s ramp (``steep``: a ramp k times narrower); None where it stands for none."""
    if variant not in SURROGATE_NOISE:
        return None
    width = get_activation(activation).half_width / (steep_k if variant == "steep" else 1.0)
    return width * SURROGATE_NOISE[variant][1]
