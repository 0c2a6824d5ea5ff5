"""Exact coordinate discrete gradient of the MLP problem, without one forward pass per coordinate.

Perturbing ``A_k[i, j]`` moves only neuron i's pre-activation of layer k, by
``eps * a_{k-1}[n, j]`` for sample n. In the linear output layer the loss change has a
closed form. In a binary layer only the samples whose activation flips change anything,
and each flip is a rank-1 update of the next pre-activation; those few rows are pushed
through the rest of the network. :class:`~bnnprobe.problem.ProbeProblem` declares the
hook (``exact_cdg``); the CDG estimator uses it where a problem offers it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..problem import check_finite
from .problem import BYTES_PER_FLOAT

if TYPE_CHECKING:
    from .problem import MLPBatchProblem


def exact_cdg(problem: "MLPBatchProblem", eps: float, scheme: str = "forward") -> torch.Tensor:
    """CDG ``(L(w + eps e_i) - L(w)) / eps`` for every coordinate (see the module docstring);
    ``scheme='central'`` gives ``(L(w + eps e_i) - L(w - eps e_i)) / (2 eps)``."""
    if scheme == "forward":
        return (_loss_changes(problem, eps) / eps).to(problem.dtype)
    if scheme == "central":
        return ((_loss_changes(problem, eps) - _loss_changes(problem, -eps)) / (2 * eps)).to(problem.dtype)
    raise ValueError(f"unknown CDG scheme {scheme!r}; choose 'forward' or 'central'")


def _loss_changes(problem: "MLPBatchProblem", step: float) -> torch.Tensor:
    """Loss change of the step ``step`` along every coordinate, float64."""
    check_finite(problem.theta0, f"the weights of {problem.description}")
    layers = [t[0] for t in problem.unpack(problem.theta0.reshape(1, -1))]
    n, n_out = problem.y.shape
    ones = torch.ones(n, 1, device=problem.device, dtype=problem.dtype)
    inputs, preacts, hiddens = [], [], []
    h = problem.x
    for k, layer in enumerate(layers):
        inputs.append(torch.cat([h, ones], dim=1))
        z = h @ layer[:, :-1].T + layer[:, -1]
        preacts.append(z)
        if k < len(layers) - 1:
            h = problem.act.hard(z)
            hiddens.append(h)
    residual = preacts[-1] - problem.y
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
        delta = torch.zeros(layer.shape, dtype=torch.float64, device=problem.device)
        d_out = layer.shape[0]
        per_column_bytes = n * d_out * (2 * BYTES_PER_FLOAT + 1)
        cols_per_chunk = problem.chunk_size(problem.memory_budget_mb, per_column_bytes)
        next_weight = layers[k + 1][:, :-1]
        for cols in torch.arange(a.shape[1], device=problem.device).split(cols_per_chunk):
            moved = preacts[k][None] + step * a[:, cols].T[:, :, None]
            moved_h = problem.act.hard(moved)
            jj, rows, units = (moved_h != hiddens[k][None]).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            dh = moved_h[jj, rows, units] - hiddens[k][rows, units]
            z_next = preacts[k + 1][rows] - layers[k + 1][:, -1] + dh[:, None] * next_weight[:, units].T
            out = problem._stack_outputs([t[None] for t in layers], z_next[None], k + 2)[0]
            sq = ((out - problem.y[rows]).double() ** 2).sum(dim=1)
            delta.index_put_((units, cols[jj]), sq - base_sq[rows], accumulate=True)
        changes.append(delta / normaliser)
    return torch.cat([c.reshape(-1) for c in changes])
