"""The teacher/student probe problem of the log: a binary-activation MLP.

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

from .binary import STE_VARIANTS, SurrogateParams, binary_ste, get_activation
from .problem import ProbeProblem, check_finite
from .seeding import generator

BYTES_PER_FLOAT = 4


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

    def __post_init__(self):
        if self.dim < 1 or self.batch_size < 1 or self.num_batches < 1 or self.depth < 2:
            raise ValueError(f"invalid MLPSpec {self}")
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
    for attempt in range(TEACHER_MAX_DRAWS):
        layers = init_layers(spec.dim, spec.depth, spec.init_scale,
                             generator("teacher", spec.teacher_seed, spec.dim, spec.depth, attempt))
        if all(((r > 0) & (r < 1)).all() for r in hidden_firing_rates(layers, x, spec.activation)):
            return layers
    raise RuntimeError(f"no teacher without constant hidden units in {TEACHER_MAX_DRAWS} draws for {spec}; "
                       "change probe.init_scale or probe.activation")


def pack(layers: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([layer.reshape(-1) for layer in layers])


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


class MLPProbe:
    """Teacher and student for one (dim, seed); :meth:`batch` yields batch problems deterministically."""

    def __init__(self, spec: MLPSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 memory_budget_mb: float = 1024.0):
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype
        self.memory_budget_mb = memory_budget_mb
        self.teacher = draw_teacher(spec)
        self.student = init_layers(spec.dim, spec.depth, spec.init_scale,
                                   generator("student", spec.seed, spec.dim, spec.depth))

    def batch_seed_parts(self, b: int) -> tuple:
        return ("batch", self.spec.dim, self.spec.seed, b)

    def batch(self, b: int) -> "MLPBatchProblem":
        if not 0 <= b < self.spec.num_batches:
            raise IndexError(f"batch {b} out of range 0..{self.spec.num_batches - 1}")
        # Inputs are drawn on the CPU in float64 so a seed gives the same batch on every device and dtype.
        x = torch.randn(self.spec.batch_size, self.spec.dim, generator=generator(*self.batch_seed_parts(b)),
                        dtype=torch.float64)
        y = mlp_forward(self.teacher, x, self.spec.activation)
        cast = dict(device=self.device, dtype=self.dtype)
        return MLPBatchProblem(
            x=x.to(**cast), y=y.to(**cast), layers=[layer.to(**cast) for layer in self.student],
            activation=self.spec.activation, memory_budget_mb=self.memory_budget_mb,
            description=f"MLP dim={self.spec.dim} seed={self.spec.seed} batch={b}",
        )


class MLPBatchProblem(ProbeProblem):
    """The student's loss on one fixed batch, as a function of all its weights and biases."""

    def __init__(self, x, y, layers, activation, memory_budget_mb=1024.0, description="MLP batch",
                 sample_block=8192):
        self.x, self.y = x, y
        self.shapes = [tuple(layer.shape) for layer in layers]
        self.theta0 = pack(layers)
        self.activation = activation
        self.act = get_activation(activation)
        self.memory_budget_mb = memory_budget_mb
        self.sample_block = sample_block
        self.description = description
        self._first_preact = None

    # ---- parameter layout -------------------------------------------------
    def unpack(self, thetas: torch.Tensor) -> list[torch.Tensor]:
        """Rows of ``thetas`` (C x n) -> per-layer tensors of shape (C, d_out, d_in + 1)."""
        out, start = [], 0
        for shape in self.shapes:
            size = shape[0] * shape[1]
            out.append(thetas[:, start:start + size].reshape(-1, *shape))
            start += size
        return out

    def _rows_per_chunk(self) -> int:
        """Stacked parameter vectors per chunk, so one chunk's activations fit the memory budget."""
        block, width = min(self.x.shape[0], self.sample_block), max(s[0] for s in self.shapes)
        return self.chunk_size(self.memory_budget_mb, 4 * block * width * BYTES_PER_FLOAT)

    def _sample_slices(self):
        """Samples are processed in blocks: the loss is a sum over samples, and small blocks stay in cache."""
        n = self.x.shape[0]
        return [slice(start, min(start + self.sample_block, n)) for start in range(0, n, self.sample_block)]

    def _hidden(self, z: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Binary activations of bias-free pre-activations ``z`` (C, N, d), computed in place.

        ``1[z + b >= t]`` is evaluated as ``1[z >= t - b]``: one pass over ``z`` and no bias add.
        """
        z.ge_((self.act.threshold - bias)[:, None, :])
        if self.act.value_range != 1.0 or self.act.low != 0.0:
            z.mul_(self.act.value_range).add_(self.act.low)
        return z

    def _stack_outputs(self, layers: list[torch.Tensor], z: torch.Tensor, start: int) -> torch.Tensor:
        """Continue stacked forward passes from ``z``, the bias-free pre-activation of layer ``start - 1``."""
        last = len(layers) - 1
        for k in range(start - 1, last):
            h = self._hidden(z, layers[k][:, :, -1])
            z = torch.bmm(h, layers[k + 1][:, :, :-1].transpose(1, 2))
        return z.add_(layers[last][:, None, :, -1])

    def _squared_error(self, out: torch.Tensor, rows: slice) -> torch.Tensor:
        """Sum of squared errors of stacked outputs (C, B, d) against the labels of ``rows``.

        Each sample's sum over its outputs is taken in the working dtype; the sum over
        samples, where rounding would accumulate, in float64.
        """
        diff = out.sub_(self.y[rows])
        return torch.linalg.vecdot(diff, diff, dim=-1).sum(dim=-1, dtype=torch.float64)

    # ---- loss evaluations -------------------------------------------------
    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        thetas = thetas.to(device=self.device, dtype=self.dtype)
        # a NaN weight in a binary layer would vanish silently (NaN >= t is False): refuse it up front
        check_finite(thetas, f"the weights given to {self.description}")
        result = []
        for chunk in thetas.split(self._rows_per_chunk()):
            layers = self.unpack(chunk)
            total = torch.zeros(len(chunk), dtype=torch.float64, device=self.device)
            for rows in self._sample_slices():
                z = torch.matmul(self.x[rows], layers[0][:, :, :-1].transpose(1, 2))
                total += self._squared_error(self._stack_outputs(layers, z, 1), rows)
            result.append(total / self.y.numel())
        return check_finite(torch.cat(result), self.description)

    def paired_losses(self, theta, deltas):
        """Antithetic pairs share the unperturbed first-layer product ``x W_1^T``."""
        deltas = deltas.to(device=self.device, dtype=self.dtype)
        theta = theta.to(device=self.device, dtype=self.dtype)
        check_finite(deltas, f"the perturbations given to {self.description}")
        check_finite(theta, f"the weights given to {self.description}")
        first_size = self.shapes[0][0] * self.shapes[0][1]
        if self._first_preact is None or not torch.equal(self._first_theta, theta[:first_size]):
            first = self.unpack(theta.reshape(1, -1))[0][0]
            self._first_theta = theta[:first_size].clone()
            self._first_preact = self.x @ first[:, :-1].T
        plus, minus = [], []
        for chunk in deltas.split(max(1, self._rows_per_chunk() // 2)):
            d_first = self.unpack(chunk)[0][:, :, :-1].transpose(1, 2)
            layers = self.unpack(torch.cat([theta + chunk, theta - chunk]))
            both = torch.zeros(2 * len(chunk), dtype=torch.float64, device=self.device)
            for rows in self._sample_slices():
                dz = torch.matmul(self.x[rows], d_first)
                base = self._first_preact[rows]
                z = torch.cat([base + dz, dz.neg_().add_(base)])
                both += self._squared_error(self._stack_outputs(layers, z, 1), rows)
            both /= self.y.numel()
            plus.append(both[: len(chunk)])
            minus.append(both[len(chunk):])
        return (check_finite(torch.cat(plus), self.description), check_finite(torch.cat(minus), self.description))

    def ste_gradient(self, variant: str, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
        if variant not in STE_VARIANTS:
            raise ValueError(f"unknown STE variant {variant!r}; choose one of {STE_VARIANTS}")
        layers = [t.clone().requires_grad_(True) for t in self.unpack(self.theta0.reshape(1, -1))]
        layers = [t[0] for t in layers]
        out = mlp_forward(layers, self.x, self.activation, ste=variant, ste_params=params)
        diff = out - self.y
        loss = (diff * diff).mean()
        check_finite(loss.detach().reshape(1), self.description)
        grads = torch.autograd.grad(loss, layers)
        return pack([g.detach() for g in grads])

    # ---- exact coordinate discrete gradient ----------------------------------
    def exact_cdg(self, eps: float, scheme: str = "forward") -> torch.Tensor:
        """CDG ``(L(w + eps e_i) - L(w)) / eps`` for every coordinate, without one forward per coordinate.

        Perturbing ``A_k[i, j]`` moves only neuron i's pre-activation of layer k, by
        ``eps * a_{k-1}[n, j]`` for sample n. In the linear output layer the loss change
        has a closed form. In a binary layer only the samples whose activation flips
        change anything, and each flip is a rank-1 update of the next pre-activation;
        those few rows are pushed through the rest of the network. ``scheme='central'``
        gives ``(L(w + eps e_i) - L(w - eps e_i)) / (2 eps)``.
        """
        if scheme == "forward":
            return (self._cdg_loss_changes(eps) / eps).to(self.dtype)
        if scheme == "central":
            return ((self._cdg_loss_changes(eps) - self._cdg_loss_changes(-eps)) / (2 * eps)).to(self.dtype)
        raise ValueError(f"unknown CDG scheme {scheme!r}; choose 'forward' or 'central'")

    def _cdg_loss_changes(self, step: float) -> torch.Tensor:
        check_finite(self.theta0, f"the weights of {self.description}")
        layers = [t[0] for t in self.unpack(self.theta0.reshape(1, -1))]
        n, n_out = self.y.shape
        ones = torch.ones(n, 1, device=self.device, dtype=self.dtype)
        inputs, preacts, hiddens = [], [], []
        h = self.x
        for k, layer in enumerate(layers):
            inputs.append(torch.cat([h, ones], dim=1))
            z = h @ layer[:, :-1].T + layer[:, -1]
            preacts.append(z)
            if k < len(layers) - 1:
                h = self.act.hard(z)
                hiddens.append(h)
        residual = preacts[-1] - self.y
        base_sq = (residual.double() ** 2).sum(dim=1)
        normaliser = n * n_out
        changes = []
        for k, layer in enumerate(layers):
            a = inputs[k]
            if k == len(layers) - 1:
                a64 = a.double()
                delta = 2 * step * residual.double().T @ a64 + step**2 * (a64 * a64).sum(dim=0)
                changes.append(delta / normaliser)
                continue
            delta = torch.zeros(layer.shape, dtype=torch.float64, device=self.device)
            d_out = layer.shape[0]
            per_column_bytes = n * d_out * (2 * BYTES_PER_FLOAT + 1)
            cols_per_chunk = self.chunk_size(self.memory_budget_mb, per_column_bytes)
            next_weight = layers[k + 1][:, :-1]
            for cols in torch.arange(a.shape[1], device=self.device).split(cols_per_chunk):
                moved = preacts[k][None] + step * a[:, cols].T[:, :, None]
                moved_h = self.act.hard(moved)
                jj, rows, units = (moved_h != hiddens[k][None]).nonzero(as_tuple=True)
                if rows.numel() == 0:
                    continue
                dh = moved_h[jj, rows, units] - hiddens[k][rows, units]
                z_next = preacts[k + 1][rows] - layers[k + 1][:, -1] + dh[:, None] * next_weight[:, units].T
                out = self._stack_outputs([t[None] for t in layers], z_next[None], k + 2)[0]
                sq = ((out - self.y[rows]).double() ** 2).sum(dim=1)
                delta.index_put_((units, cols[jj]), sq - base_sq[rows], accumulate=True)
            changes.append(delta / normaliser)
        return torch.cat([c.reshape(-1) for c in changes])

