"""The networks of the MLP probe: a binary-activation MLP, its spec, and pure functions on its layers.

Every layer is ``dim`` wide (input, hidden and output); hidden activations are hard
binary (:mod:`bnnprobe.binary`), the output layer is linear. A *teacher* with
directly initialised weights labels i.i.d. N(0, 1) inputs; the *student* is the
model whose gradient is estimated. The loss is the mean squared error over the
batch and the ``dim`` outputs.

Layer k is stored as one augmented matrix ``A_k = [W_k | b_k]`` of shape
(dim, dim + 1); the flat parameter vector ``theta`` concatenates the row-major
``A_k`` of every layer, so coordinate ``(k, i, j)`` is weight ``W_k[i, j]`` (or the
bias ``b_k[i]`` for ``j = dim``).

Initialisation (an assumption: the log does not say): weights ~ N(0, init_scale^2 / dim),
biases 0, for teacher and student alike, each from its own derived seed. The teacher
is redrawn until none of its hidden units is constant (:func:`draw_teacher`); the
student is kept as drawn, dead units included: that is part of what is measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..binary import SurrogateParams, binary_ste, get_activation
from ..seeding import generator


# shared: one teacher for every seed (the log's one target model: claims hold for that teacher); per_seed:
# each seed draws its own teacher too, so that a seed is an independent (teacher, student) draw
TEACHERS = ("shared", "per_seed")


@dataclass(frozen=True)
class MLPSpec:
    """Everything that determines a probe problem's teacher, student and batches."""

    dim: int
    seed: int
    batch_size: int
    num_batches: int
    activation: str = "zero_one"
    depth: int = 3
    teacher_seed: int = 0
    init_scale: float = 1.0
    teacher: str = "shared"  # one of TEACHERS

    def __post_init__(self):
        if self.dim < 1 or self.batch_size < 1 or self.num_batches < 1 or self.depth < 2:
            raise ValueError(f"invalid MLPSpec {self}")
        if self.teacher not in TEACHERS:
            raise ValueError(f"unknown teacher design {self.teacher!r}; choose one of {', '.join(TEACHERS)}")
        get_activation(self.activation)

    def as_dict(self) -> dict:
        return asdict(self)


def init_layers(dim: int, depth: int, init_scale: float, gen: torch.Generator) -> list[torch.Tensor]:
    layers = []
    for _ in range(depth):
        weight = torch.randn(dim, dim, generator=gen, dtype=torch.float64) * (init_scale / dim**0.5)
        layers.append(torch.cat([weight, torch.zeros(dim, 1, dtype=torch.float64)], dim=1))
    return layers


TEACHER_CHECK_SAMPLES = 4096
TEACHER_MAX_DRAWS = 1000


def hidden_firing_rates(layers: list[torch.Tensor], x: torch.Tensor, activation: str) -> list[torch.Tensor]:
    """Fraction of samples on which each hidden unit outputs its high value, per hidden layer."""
    act = get_activation(activation)
    rates, h = [], x
    for layer in layers[:-1]:
        h = act.hard(h @ layer[:, :-1].T + layer[:, -1])
        rates.append((h == act.high).double().mean(dim=0))
    return rates


def draw_teacher(spec: MLPSpec) -> list[torch.Tensor]:
    """The teacher: the first draw none of whose hidden units is (nearly) constant.

    A constant hidden unit makes the teacher a smaller network, and at small dims the
    plain draw can be dead altogether (dim 2, {0,1} activation: constant labels, loss 0).
    Draws are redrawn until every hidden unit takes both values on a reference batch.
    """
    x = torch.randn(TEACHER_CHECK_SAMPLES, spec.dim, dtype=torch.float64,
                    generator=generator("teacher-check", spec.dim))
    own = ("student", spec.seed) if spec.teacher == "per_seed" else ()
    for attempt in range(TEACHER_MAX_DRAWS):
        layers = init_layers(spec.dim, spec.depth, spec.init_scale,
                             generator("teacher", spec.teacher_seed, spec.dim, spec.depth, attempt, *own))
        if all(((r > 0) & (r < 1)).all() for r in hidden_firing_rates(layers, x, spec.activation)):
            return layers
    raise RuntimeError(f"no teacher without constant hidden units in {TEACHER_MAX_DRAWS} draws for {spec}; "
                       "change probe.init_scale or probe.activation")


def pack(layers: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([layer.reshape(-1) for layer in layers])


def unpack(thetas: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """The inverse of :func:`pack` for rows of ``thetas`` (C x n): per-layer views (C, d_out, d_in + 1)."""
    out, start = [], 0
    for rows, cols in shapes:
        out.append(thetas[:, start:start + rows * cols].reshape(-1, rows, cols))
        start += rows * cols
    return out


def mlp_forward(layers: list[torch.Tensor], x: torch.Tensor, activation: str, ste: str | None = None,
                ste_params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
    """Plain forward pass of one MLP; with ``ste`` the hidden activations carry that STE's backward."""
    act = get_activation(activation)
    h = x
    for k, layer in enumerate(layers):
        z = h @ layer[:, :-1].T + layer[:, -1]
        if k == len(layers) - 1:
            return z
        h = act.hard(z) if ste is None else binary_ste(z, act, ste, ste_params)
    raise AssertionError("unreachable")
