"""The student's loss on one fixed batch as a probe problem: stacked forward passes of many
perturbed students at once (chunked by a memory budget, samples in cache-sized blocks), antithetic
pairs sharing the first layer's product, the STE gradient by autograd, and the coordinate-wise hooks
(exact CDG, the smoothed coordinate gradient, steps along one coordinate) from the activations that
flip (:mod:`bnnprobe.mlp.flips`)."""

from __future__ import annotations

import torch

from ..binary import STE_VARIANTS, SurrogateParams, get_activation, stochastic_binary
from ..problem import ProbeProblem, check_finite
from ..device import Compute
from ..seeding import generator
from .network import MLPSpec, draw_teacher, init_layers, mlp_forward, pack, unpack

BYTES_PER_FLOAT = 4


class MLPBatchProblem(ProbeProblem):
    """The student's loss on one fixed batch, as a function of all its weights and biases."""

    def __init__(self, x, y, layers, activation, memory_budget_mb=16.0, description="MLP batch",
                 sample_block=8192, fused=False):
        self.x, self.y = x, y
        self.shapes = [tuple(layer.shape) for layer in layers]
        self.theta0 = pack(layers)
        self.activation = activation
        self.act = get_activation(activation)
        self.memory_budget_mb = memory_budget_mb
        self.sample_block = sample_block
        self.description = description
        self._first_preact = None
        self._flip_table = None
        # one fused kernel per block of members (bnnprobe.mlp.fused): square layers only, as in the probe
        self.fused = fused and all(rows == cols - 1 == x.shape[1] for rows, cols in self.shapes)

    FUSED_MEMBERS = 4096  # members per kernel launch (their weights are read, not copied)

    def _fused_losses(self, **members) -> torch.Tensor:
        from .fused import fused_sq_errors

        return fused_sq_errors(self.x, self.y, len(self.shapes), self.act, **members) / self.y.numel()

    # ---- parameter layout -------------------------------------------------
    def unpack(self, thetas: torch.Tensor) -> list[torch.Tensor]:
        """Rows of ``thetas`` (C x n) -> per-layer tensors of shape (C, d_out, d_in + 1)."""
        return unpack(thetas, self.shapes)

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

    def stack_outputs(self, layers: list[torch.Tensor], z: torch.Tensor, start: int) -> torch.Tensor:
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
        if self.fused:
            return check_finite(torch.cat([self._fused_losses(thetas=chunk)
                                           for chunk in thetas.split(self.FUSED_MEMBERS)]), self.description)
        result = []
        for chunk in thetas.split(self._rows_per_chunk()):
            layers = self.unpack(chunk)
            total = torch.zeros(len(chunk), dtype=torch.float64, device=self.device)
            for rows in self._sample_slices():
                z = torch.matmul(self.x[rows], layers[0][:, :, :-1].transpose(1, 2))
                total += self._squared_error(self.stack_outputs(layers, z, 1), rows)
            result.append(total / self.y.numel())
        return check_finite(torch.cat(result), self.description)

    def paired_losses(self, theta, deltas):
        """Antithetic pairs share the unperturbed first-layer product ``x W_1^T``."""
        deltas = deltas.to(device=self.device, dtype=self.dtype)
        theta = theta.to(device=self.device, dtype=self.dtype)
        check_finite(deltas, f"the perturbations given to {self.description}")
        check_finite(theta, f"the weights given to {self.description}")
        if self.fused:
            both = [self._fused_losses(theta=theta, deltas=chunk) for chunk in deltas.split(self.FUSED_MEMBERS // 2)]
            plus = torch.cat([b[: len(b) // 2] for b in both])
            minus = torch.cat([b[len(b) // 2:] for b in both])
            return check_finite(plus, self.description), check_finite(minus, self.description)
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
                both += self._squared_error(self.stack_outputs(layers, z, 1), rows)
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

    def stochastic_ste_gradient(self, law: str, scale: float, draws: int, noise) -> torch.Tensor:
        """The mean over ``draws`` forward passes of the stochastic network (every hidden activation
        :func:`~bnnprobe.binary.stochastic_binary` with ``noise(draw, layer, (samples, width))``) of the
        backprop gradient of the loss: :mod:`bnnprobe.estimators.stochastic_ste`.

        Draws are stacked as copies of the batch, as many per pass as the memory budget holds: the
        gradient of the summed losses of the copies is the sum of their gradients."""
        layers = [t[0].clone().requires_grad_(True) for t in self.unpack(self.theta0.reshape(1, -1))]
        n = self.x.shape[0]
        widths = [rows for rows, _ in self.shapes[:-1]]
        per_pass = min(draws, self.chunk_size(self.memory_budget_mb, 4 * n * sum(widths) * BYTES_PER_FLOAT))
        total = torch.zeros(self.n_coords, dtype=torch.float64, device=self.device)
        for start in range(0, draws, per_pass):
            block = range(start, min(start + per_pass, draws))
            h = self.x.repeat(len(block), 1)
            for k, layer in enumerate(layers):
                z = h @ layer[:, :-1].T + layer[:, -1]
                if k < len(layers) - 1:
                    xi = torch.cat([noise(d, k, (n, widths[k])) for d in block])
                    h = stochastic_binary(z, xi, self.act, law, scale)
            diff = z - self.y.repeat(len(block), 1)
            loss = (diff * diff).sum() / self.y.numel()  # the sum over the block's draws of each draw's loss
            check_finite(loss.detach().reshape(1), self.description)
            total += pack([g.detach() for g in torch.autograd.grad(loss, layers)]).double()
        return (total / draws).to(self.dtype)

    # ---- coordinate-wise paths from the activations that flip (bnnprobe.mlp.flips) ----------------
    def flip_table(self):
        """The batch's forward pass and flip jumps, built once and shared by every coordinate-wise path
        (and by every block of coordinates per-parameter NES asks for)."""
        if self._flip_table is None:
            from .flips import FlipTable

            self._flip_table = FlipTable(self)
        return self._flip_table

    def exact_cdg(self, eps: float, scheme: str = "forward") -> torch.Tensor:
        from .flips import exact_cdg

        return exact_cdg(self, eps, scheme)

    def smoothed_coordinate_gradient(self, sigma: float) -> torch.Tensor:
        from .flips import smoothed_coordinate_gradient

        return smoothed_coordinate_gradient(self, sigma).to(self.dtype)

    def coordinate_loss_changes(self, coords: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        from .flips import coordinate_loss_changes

        return coordinate_loss_changes(self, coords, steps)

    def coordinate_groups(self) -> dict[str, slice]:
        """The coordinates of each layer ("1" = the first), for stepping one layer only."""
        groups, start = {}, 0
        for k, (rows, cols) in enumerate(self.shapes, start=1):
            groups[str(k)] = slice(start, start + rows * cols)
            start += rows * cols
        return groups


class MLPProbe:
    """Teacher and student for one (dim, seed), and the batch problems they define: the probe's
    batches (:meth:`batch`), or any inputs with any student weights (:meth:`problem`, the trainer's)."""

    def __init__(self, spec: MLPSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                 memory_budget_mb: float = 16.0, fused: bool = False):
        self.spec = spec
        self.fused = fused
        self.device = torch.device(device)
        self.dtype = dtype
        self.memory_budget_mb = memory_budget_mb
        self.teacher = draw_teacher(spec)
        self.student = init_layers(spec.dim, spec.depth, spec.init_scale,
                                   generator("student", spec.seed, spec.dim, spec.depth))

    @classmethod
    def from_compute(cls, spec: MLPSpec, compute: Compute) -> "MLPProbe":
        """On ``compute``'s device, in its dtype, with its MLP memory budget and fused kernel."""
        return cls(spec, device=compute.device, dtype=compute.dtype, memory_budget_mb=compute.budget_mb("mlp"),
                   fused=compute.fused)

    def batch_seed_parts(self, b: int) -> tuple:
        return ("batch", self.spec.dim, self.spec.seed, b)

    def problem(self, x: torch.Tensor, student: list[torch.Tensor] | None = None,
                description: str = "MLP batch") -> MLPBatchProblem:
        """The loss of ``student`` (default: the probe's) on inputs ``x`` (float64) labelled by the teacher."""
        y = mlp_forward(self.teacher, x, self.spec.activation)
        cast = dict(device=self.device, dtype=self.dtype)
        return MLPBatchProblem(
            x=x.to(**cast), y=y.to(**cast), layers=[layer.to(**cast) for layer in student or self.student],
            activation=self.spec.activation, memory_budget_mb=self.memory_budget_mb, fused=self.fused,
            description=description,
        )

    def batch(self, b: int) -> MLPBatchProblem:
        """Batch ``b`` of the probe."""
        if not 0 <= b < self.spec.num_batches:
            raise IndexError(f"batch {b} out of range 0..{self.spec.num_batches - 1}")
        # Inputs are drawn on the CPU in float64 so a seed gives the same batch on every device and dtype.
        x = torch.randn(self.spec.batch_size, self.spec.dim, generator=generator(*self.batch_seed_parts(b)),
                        dtype=torch.float64)
        return self.problem(x, description=f"MLP dim={self.spec.dim} seed={self.spec.seed} batch={b}")
