"""Coordinate-wise loss changes of the MLP problem from the activations that flip, without one
forward pass per coordinate: exact CDG, the exact smoothed coordinate gradient, and the loss along
sampled steps of one coordinate (per-parameter NES).

Perturbing ``A_k[i, j]`` by ``t`` moves only neuron i's pre-activation of layer k, by ``t a[n, j]``
for sample n (``a`` = the layer's input with a trailing 1 for the bias). In the linear output layer
the loss change has a closed form, ``(2 t r.a_j + t^2 |a_j|^2) / (N d)``. In a binary layer sample
n's unit i flips once, at the distance ``d_n = (threshold - z[n, i]) / a[n, j]`` (never where
``a[n, j] = 0``), and its loss then jumps by ``J[n, i]``, which does not depend on j: the flipped
row is pushed through the rest of the network once per (sample, unit) that some coordinate needs
(:meth:`FlipTable.jumps`, cached; one table per problem, :meth:`MLPBatchProblem.flip_table`).
Hence, per coordinate, with the loss divided like the loss:

* CDG: ``(L(w + eps e) - L(w)) / eps = sum of J over the samples that flip at step eps / eps``,
  the flips decided exactly as the forward pass decides them (same dtype, same comparison);
* smoothed: ``d/dmu E_z[L(w + (mu + sigma z) e)] = sum_n sign(d_n) J_n phi(d_n / sigma) / sigma``
  (a step of height J at d, smoothed by a Gaussian), the plain gradient for an output weight;
* sampled steps t: ``L(w + t e) - L(w) = sum of J over the samples with d_n between 0 and t``,
  from the distances sorted once per coordinate.

:class:`~bnnprobe.problem.ProbeProblem` declares the hooks; the estimators use them where a
problem offers them.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING

import torch

from ..problem import check_finite

if TYPE_CHECKING:
    from .problem import MLPBatchProblem

BYTES_PER_DOUBLE = 8
# the smoothed gradient ignores flips farther than this many sigma: phi(9) / phi(0) = 2.6e-18
SMOOTHING_CUTOFF = 9.0


class FlipTable:
    """The forward pass of one batch problem and, per binary layer, the loss jump ``J[n, i]`` of
    flipping unit i of sample n (computed for the pairs asked for, then cached)."""

    def __init__(self, problem: "MLPBatchProblem"):
        check_finite(problem.theta0, f"the weights of {problem.description}")
        self.problem = problem
        self.layers = [t[0] for t in problem.unpack(problem.theta0.reshape(1, -1))]
        n, n_out = problem.y.shape
        ones = torch.ones(n, 1, device=problem.device, dtype=problem.dtype)
        self.inputs, self.preacts, self.hiddens = [], [], []
        h = problem.x
        for k, layer in enumerate(self.layers):
            self.inputs.append(torch.cat([h, ones], dim=1))
            z = h @ layer[:, :-1].T + layer[:, -1]
            self.preacts.append(z)
            if k < len(self.layers) - 1:
                h = problem.act.hard(z)
                self.hiddens.append(h)
        self.residual = self.preacts[-1] - problem.y
        self.base_sq = (self.residual.double() ** 2).sum(dim=1)
        self.normaliser = n * n_out
        self._jumps = [None] * (len(self.layers) - 1)
        # coordinate offsets of each layer in the flat theta
        self.offsets = [0]
        for layer in self.layers:
            self.offsets.append(self.offsets[-1] + layer.numel())

    @property
    def output_layer(self) -> int:
        return len(self.layers) - 1

    def jumps(self, k: int, rows: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """``J[rows, units]`` of binary layer k, float64: the sum of squared errors of the sample after
        flipping that unit, minus before (not yet divided like the loss)."""
        p = self.problem
        if self._jumps[k] is None:
            self._jumps[k] = torch.full(self.hiddens[k].shape, math.nan, dtype=torch.float64, device=p.device)
        table = self._jumps[k]
        missing = torch.isnan(table[rows, units])
        if bool(missing.any()):
            key = torch.unique(rows[missing] * table.shape[1] + units[missing])
            need_rows, need_units = key // table.shape[1], key % table.shape[1]
            d_out = self.layers[k + 1].shape[0]
            per_row = d_out * (len(self.layers) - k) * 4 * p.x.element_size()
            for part in torch.arange(len(key), device=p.device).split(p.chunk_size(p.memory_budget_mb, per_row)):
                r, u = need_rows[part], need_units[part]
                h = self.hiddens[k][r, u]
                flipped_minus_h = (p.act.high + p.act.low) - 2 * h
                nxt = self.layers[k + 1]
                z_next = self.preacts[k + 1][r] - nxt[:, -1] + flipped_minus_h[:, None] * nxt[:, :-1][:, u].T
                out = p.stack_outputs([t[None] for t in self.layers], z_next[None], k + 2)[0]
                sq = ((out - p.y[r]).double() ** 2).sum(dim=1)
                table[r, u] = sq - self.base_sq[r]
        return table[rows, units]

    def unit_blocks(self, k: int, bytes_per_unit_column: int):
        """Blocks of units of layer k sized by the memory budget (each unit takes N x (d_in + 1) values)."""
        p = self.problem
        n, cols = self.inputs[k].shape
        per_unit = n * cols * bytes_per_unit_column
        return torch.arange(self.layers[k].shape[0], device=p.device).split(p.chunk_size(p.memory_budget_mb, per_unit))

    def distances(self, k: int, units: torch.Tensor) -> torch.Tensor:
        """``(threshold - z[n, i]) / a[n, j]`` for units i, float64, shape (len(units), N, d_in + 1):
        the step along ``A_k[i, j]`` at which sample n's unit i flips (+-inf or NaN where ``a = 0``)."""
        z = self.preacts[k][:, units].double().T[:, :, None]
        return (self.problem.act.threshold - z) / self.inputs[k].double()[None]

    def output_changes(self, units: torch.Tensor, cols: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """Loss changes of ``steps`` (C, S) along the output-layer coordinates (units[c], cols[c]): the
        closed form ``(2 t r.a_j + t^2 |a_j|^2) / (N d_out)`` of a linear layer under the squared error."""
        a = self.inputs[-1].double()
        slope = (2 * self.residual.double().T @ a)[units, cols]
        curvature = (a * a).sum(dim=0)[cols]
        return (slope[:, None] * steps + curvature[:, None] * steps**2) / self.normaliser


def exact_cdg(problem: "MLPBatchProblem", eps: float, scheme: str = "forward") -> torch.Tensor:
    """CDG ``(L(w + eps e_i) - L(w)) / eps`` for every coordinate (see the module docstring);
    ``scheme='central'`` gives ``(L(w + eps e_i) - L(w - eps e_i)) / (2 eps)``."""
    table = problem.flip_table()
    if scheme == "forward":
        return (_changes_at(table, eps) / eps).to(problem.dtype)
    if scheme == "central":
        return ((_changes_at(table, eps) - _changes_at(table, -eps)) / (2 * eps)).to(problem.dtype)
    raise ValueError(f"unknown CDG scheme {scheme!r}; choose 'forward' or 'central'")


def _changes_at(table: FlipTable, step: float) -> torch.Tensor:
    """Loss change of the step ``step`` along every coordinate, float64; a flip is decided by the
    hard activation of the moved pre-activation, exactly as the forward pass decides it."""
    p = table.problem
    changes = []
    for k, layer in enumerate(table.layers):
        if k == table.output_layer:
            units, cols = (i.reshape(-1) for i in torch.meshgrid(
                torch.arange(layer.shape[0], device=p.device), torch.arange(layer.shape[1], device=p.device),
                indexing="ij"))
            steps = torch.full((layer.numel(), 1), step, dtype=torch.float64, device=p.device)
            changes.append(table.output_changes(units, cols, steps)[:, 0])
            continue
        delta = torch.zeros(layer.shape, dtype=torch.float64, device=p.device)
        a = table.inputs[k]
        for units in table.unit_blocks(k, 2 * a.element_size() + 1):
            moved = table.preacts[k][:, units].T[:, :, None] + step * a[None]
            flipped = p.act.hard(moved) != table.hiddens[k][:, units].T[:, :, None]
            block, rows, cols = flipped.nonzero(as_tuple=True)
            if rows.numel():
                delta.index_put_((units[block], cols), table.jumps(k, rows, units[block]), accumulate=True)
        changes.append(delta / table.normaliser)
    return torch.cat([c.reshape(-1) for c in changes])


def smoothed_coordinate_gradient(problem: "MLPBatchProblem", sigma: float) -> torch.Tensor:
    """``d/dmu E_z[L(w + (mu + sigma z) e_i)]`` at mu = 0 for every coordinate i, exactly
    (see the module docstring)."""
    if not sigma > 0:
        raise ValueError(f"the smoothing sigma must be > 0, got {sigma}")
    table = problem.flip_table()
    p = table.problem
    parts = []
    for k, layer in enumerate(table.layers):
        if k == table.output_layer:
            # smoothing leaves the derivative of a quadratic unchanged: the plain gradient
            parts.append(2 * table.residual.double().T @ table.inputs[k].double() / table.normaliser)
            continue
        grad = torch.zeros(layer.shape, dtype=torch.float64, device=p.device)
        for units in table.unit_blocks(k, 3 * BYTES_PER_DOUBLE):
            d = table.distances(k, units)
            block, rows, cols = (d.abs() <= SMOOTHING_CUTOFF * sigma).nonzero(as_tuple=True)
            if not rows.numel():
                continue
            dist = d[block, rows, cols]
            weight = torch.sign(dist) * torch.exp(-0.5 * (dist / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
            grad.index_put_((units[block], cols), table.jumps(k, rows, units[block]) * weight, accumulate=True)
        parts.append(grad / table.normaliser)
    return torch.cat([part.reshape(-1) for part in parts])


def coordinate_loss_changes(problem: "MLPBatchProblem", coords: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """``L(w + steps[c, s] e_{coords[c]}) - L(w)`` (float64, shape of ``steps``) from the flips: the
    distances of a coordinate's samples are sorted once, each step is a search (see the module
    docstring)."""
    table = problem.flip_table()
    coords = coords.to(table.problem.device)
    steps = steps.to(device=table.problem.device, dtype=torch.float64)
    out = torch.zeros_like(steps)
    offsets = torch.tensor(table.offsets, device=coords.device)
    layer_of = torch.bucketize(coords, offsets[1:], right=True)
    for k in torch.unique(layer_of).tolist():
        here = (layer_of == k).nonzero(as_tuple=True)[0]
        local = coords[here] - table.offsets[k]
        cols_total = table.layers[k].shape[1]
        units, cols = local // cols_total, local % cols_total
        changes = table.output_changes if k == table.output_layer else partial(_binary_layer_changes, table, k)
        out[here] = changes(units, cols, steps[here])
    return out


def _binary_layer_changes(table: FlipTable, k: int, units: torch.Tensor, cols: torch.Tensor,
                          steps: torch.Tensor) -> torch.Tensor:
    """Loss changes of ``steps`` (C, S) along the coordinates (units[c], cols[c]) of binary layer k."""
    p = table.problem
    reach = float(steps.abs().max()) if steps.numel() else 0.0
    out = torch.zeros_like(steps)
    n = table.inputs[k].shape[0]
    per_coord = n * 3 * BYTES_PER_DOUBLE + steps.shape[1] * 4 * BYTES_PER_DOUBLE
    for part in torch.arange(len(units), device=steps.device).split(p.chunk_size(p.memory_budget_mb, per_coord)):
        u, c = units[part], cols[part]
        z = table.preacts[k][:, u].double().T  # (C, N)
        a = table.inputs[k][:, c].double().T
        d = (p.act.threshold - z) / a
        coord, rows = (d.abs() <= reach).nonzero(as_tuple=True)
        if not rows.numel():
            continue
        dist = d[coord, rows]
        jump = table.jumps(k, rows, u[coord])
        s = steps[part]
        for side in (1.0, -1.0):
            on_side = dist * side > 0
            dd, cc, jj = dist[on_side] * side, coord[on_side], jump[on_side]
            # one sorted key per (coordinate, distance): coordinate c's keys lie in (c span, c span + reach]
            span = 2 * reach + 1
            keys, order = torch.sort(cc.double() * span + dd)
            cumulative = torch.cat([jj.new_zeros(1), torch.cumsum(jj[order], dim=0)])
            t = (s * side).clamp(min=0)
            base = torch.arange(len(u), device=s.device, dtype=torch.float64)[:, None] * span
            upto = torch.searchsorted(keys, (base + t).contiguous(), right=True)
            start = torch.searchsorted(keys, base.contiguous(), right=True)
            out[part] += cumulative[upto] - cumulative[start]
    return out / table.normaliser
