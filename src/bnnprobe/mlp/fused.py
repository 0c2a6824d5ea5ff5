"""Fused stacked evaluation of the MLP problem: the loss of many perturbed students in one Triton
kernel, without writing any member's hidden activations to global memory.

The plain stacked path (:class:`~bnnprobe.mlp.problem.MLPBatchProblem`) materialises each layer's
activations of every member (members x samples x dim) in memory, several passes per layer: on a GPU
that traffic, not the arithmetic, bounds NES-50000. Here one program takes one member and one block
of samples: it loads the member's weights (``theta + s * delta`` formed on chip for an antithetic
pair, so no perturbed copy is written either), runs every layer with ``tl.dot`` on the block,
thresholds in registers, and writes a single number: the block's sum of squared errors. The sums of
the blocks are added in float64 by torch.

Precision (a documented choice): float32 inputs and float32 accumulation (``input_precision =
"ieee"``). ``"tf32"`` is accepted for GPUs that have it; it rounds the inputs of every product to a
10-bit mantissa, which moves pre-activations by ~1e-3 relative and flips binary activations near the
threshold: its effect on the NES gradient has not been measured on a GPU yet, so it is not offered
by the config.

Runs on a GPU; on the CPU only under ``TRITON_INTERPRET=1`` (the tests check it against the torch
path there). Widths are padded to a power of two >= 16 (``tl.dot``'s minimum), padded inputs and
weights are zero and padded activations are forced to 0, so any width gives the exact sums.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..binary import BinaryActivation

BLOCK_SAMPLES = 64


@triton.jit
def _member_block_sq_error(x_ptr, y_ptr, base_ptr, delta_ptr, out_ptr, n_samples, base_stride, n_pairs,
                           DIM: tl.constexpr, WIDTH: tl.constexpr, DEPTH: tl.constexpr, BLOCK: tl.constexpr,
                           PAIRED: tl.constexpr, THRESHOLD: tl.constexpr, LOW: tl.constexpr, HIGH: tl.constexpr,
                           PRECISION: tl.constexpr):
    member = tl.program_id(0)
    block = tl.program_id(1)
    rows = block * BLOCK + tl.arange(0, BLOCK)
    row_ok = rows < n_samples
    units = tl.arange(0, WIDTH)  # output units of a layer (and input features of the next)
    unit_ok = units < DIM
    h = tl.load(x_ptr + rows[:, None] * DIM + units[None, :], mask=row_ok[:, None] & unit_ok[None, :], other=0.0)
    if PAIRED:
        pair = member % n_pairs
        sign = tl.where(member < n_pairs, 1.0, -1.0)
        base = base_ptr
        delta = delta_ptr + pair.to(tl.int64) * (DEPTH * DIM * (DIM + 1))
    else:
        base = base_ptr + member.to(tl.int64) * base_stride
    w_mask = unit_ok[:, None] & unit_ok[None, :]
    for k in tl.static_range(DEPTH):
        layer = k * DIM * (DIM + 1)
        # W[o, i] of layer k (row o of the augmented matrix [W | b]) as a (WIDTH, WIDTH) tile
        w_offsets = layer + units[:, None] * (DIM + 1) + units[None, :]
        b_offsets = layer + units * (DIM + 1) + DIM
        w = tl.load(base + w_offsets, mask=w_mask, other=0.0)
        b = tl.load(base + b_offsets, mask=unit_ok, other=0.0)
        if PAIRED:
            w += sign * tl.load(delta + w_offsets, mask=w_mask, other=0.0)
            b += sign * tl.load(delta + b_offsets, mask=unit_ok, other=0.0)
        z = tl.dot(h, tl.trans(w), input_precision=PRECISION) + b[None, :]
        if k < DEPTH - 1:
            h = tl.where(z >= THRESHOLD, HIGH, LOW)
            h = tl.where(unit_ok[None, :], h, 0.0)  # padded units feed nothing forward
        else:
            y = tl.load(y_ptr + rows[:, None] * DIM + units[None, :], mask=row_ok[:, None] & unit_ok[None, :],
                        other=0.0)
            diff = tl.where(row_ok[:, None] & unit_ok[None, :], z - y, 0.0)
            tl.store(out_ptr + member * tl.num_programs(1) + block, tl.sum(diff * diff))


def padded_width(dim: int) -> int:
    return max(16, triton.next_power_of_2(dim))


def fused_sq_errors(x: torch.Tensor, y: torch.Tensor, depth: int, act: BinaryActivation, *,
                    thetas: torch.Tensor | None = None, theta: torch.Tensor | None = None,
                    deltas: torch.Tensor | None = None, precision: str = "ieee") -> torch.Tensor:
    """Sum of squared errors (float64) over the batch of every member: the rows of ``thetas``
    (C x n), or the antithetic pairs ``theta + deltas[p]`` then ``theta - deltas[p]`` (2P values)."""
    n, dim = x.shape
    if y.shape != (n, dim):
        raise ValueError(f"the fused path needs square layers: labels {tuple(y.shape)} for inputs {tuple(x.shape)}")
    n_coords = depth * dim * (dim + 1)
    paired = thetas is None
    if paired:
        base, delta, members, n_pairs = theta.contiguous(), deltas.contiguous(), 2 * len(deltas), len(deltas)
    else:
        base, delta, members, n_pairs = thetas.contiguous(), thetas, len(thetas), 1
    if base.shape[-1] != n_coords:
        raise ValueError(f"{base.shape[-1]} coordinates given for depth {depth} x dim {dim} ({n_coords})")
    blocks = triton.cdiv(n, BLOCK_SAMPLES)
    partial = torch.empty(members, blocks, device=x.device, dtype=torch.float32)
    if members:
        _member_block_sq_error[(members, blocks)](
            x.contiguous(), y.contiguous(), base, delta, partial, n, n_coords if not paired else 0, n_pairs,
            DIM=dim, WIDTH=padded_width(dim), DEPTH=depth, BLOCK=BLOCK_SAMPLES, PAIRED=paired,
            THRESHOLD=float(act.threshold), LOW=float(act.low), HIGH=float(act.high), PRECISION=precision)
    return partial.sum(dim=1, dtype=torch.float64)
