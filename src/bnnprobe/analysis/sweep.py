"""Loss decreases over an lr grid and cosines to the references (CDG, the smoothed coordinate gradient).

*Loss decrease* of a gradient ``g`` at learning rate ``lr`` is ``L(w) - L(w - lr g)``,
both on the same batch the gradient was estimated on: one plain step, no momentum.
Positive is good. A step may move one layer only (the other coordinates of the gradient set to zero):
which layer carries the decrease.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..probes import ALL_COORDINATES
from ..problem import ProbeProblem, cosine
from .lrgrid import extension_grid, fine_grid, tidy_lr

if TYPE_CHECKING:
    from ..study import GradientRecord


def loss_decreases(problem: ProbeProblem, gradient: torch.Tensor, lrs: Sequence[float]) -> tuple[float, np.ndarray]:
    """``L(w)`` and ``L(w) - L(w - lr g)`` for every lr, all evaluated as one stack (lr 0 first)."""
    g = gradient.to(device=problem.device, dtype=problem.dtype)
    lr = torch.tensor([0.0, *lrs], device=problem.device, dtype=problem.dtype)
    losses = problem.losses(problem.theta0[None, :] - lr[:, None] * g[None, :]).cpu().numpy()
    before = float(losses[0])
    return before, before - losses[1:]


def restrict(gradient: torch.Tensor, coordinates: slice | None) -> torch.Tensor:
    """The gradient with every coordinate outside ``coordinates`` set to zero (a step of one layer)."""
    if coordinates is None:
        return gradient
    out = torch.zeros_like(gradient)
    out[coordinates] = gradient[coordinates]
    return out


def sweep_gradients(record: GradientRecord, problem_at, lrs: Sequence[float], grid: str,
                    references: dict[str, GradientRecord | None],
                    key: dict, step_layer: str = ALL_COORDINATES, coordinates: slice | None = None) -> pd.DataFrame:
    """Rows of loss decreases for every stored gradient of ``record`` (batch b on ``problem_at(b)``),
    stepping only ``coordinates`` (all where None). ``references`` maps ``cdg`` and ``smoothed`` to the
    record each cosine compares with (None: no such reference, the column is NaN)."""
    lrs = [tidy_lr(x) for x in lrs]
    if any(not x > 0 for x in lrs):
        raise ValueError(f"learning rates must be > 0, got {lrs}")
    part = coordinates if coordinates is not None else slice(None)
    settings = record.settings
    smoothed = references.get("smoothed")
    rows = []
    for b, full in enumerate(record.gradients):
        grad = restrict(full, coordinates)
        before, decrease = loss_decreases(problem_at(b), grad, lrs)
        cos = {name: cosine(full[part], ref.gradients[b][part]) if ref is not None else math.nan
               for name, ref in (("cdg", references.get("cdg")), ("smoothed", smoothed))}
        for lr, dec in zip(lrs, decrease):
            rows.append({
                **key, "estimator": record.estimator, "sigma": settings.get("sigma", math.nan),
                "eps": settings.get("eps", math.nan), "step_layer": step_layer, "batch": b, "lr": lr, "grid": grid,
                "loss_before": before, "loss_after": before - float(dec), "loss_decrease": float(dec),
                "grad_norm": float(grad.double().norm()), "cos_to_cdg": cos["cdg"], "cos_to_smoothed": cos["smoothed"],
                "smoothed_sigma": smoothed.settings["sigma"] if smoothed is not None else math.nan,
                "seconds": float(record.seconds[b]), "n_loss_evals": int(record.n_loss_evals[b]),
            })
    return pd.DataFrame(rows)


def sweep_coarse_and_fine(records: Sequence[GradientRecord], coarse_lrs: Sequence[float], fine: dict, sweep_one):
    """Coarse sweep of every record (one per seed), the fine grid chosen from all of them, the fine sweep.

    ``sweep_one(record, lrs, grid)`` makes the rows. In ``auto`` mode the fine grid is extended up to
    ``fine['extend']`` times while the best lr is at the edge of all lrs tried
    (:func:`~bnnprobe.analysis.lrgrid.extension_grid`). Returns (coarse rows, fine lrs, fine rows).
    """
    def run(lrs, grid):
        return pd.concat([sweep_one(r, lrs, grid) for r in records], ignore_index=True)

    coarse = run(coarse_lrs, "coarse")
    fine_lrs = fine_grid(coarse, fine["mode"], fine["points"], fine["span_decades"], fine["low"], fine["high"])
    # every fine lr may already be on the coarse grid: then there is nothing more to evaluate
    fine_rows = [run(fine_lrs, "fine")] if fine_lrs else []
    if fine["mode"] == "auto":
        # while the best lr is the largest (smallest) tried, look further in that direction
        for _ in range(fine.get("extend", 0)):
            more = extension_grid(pd.concat([coarse, *fine_rows]), fine["points"], fine["span_decades"])
            if not more:
                break
            fine_lrs = fine_lrs + more
            fine_rows.append(run(more, "fine"))
    fine_table = pd.concat(fine_rows, ignore_index=True) if fine_rows else coarse.iloc[0:0].copy()
    return coarse, fine_lrs, fine_table


def sweep_groups(source, records: Sequence[GradientRecord], references: dict[str, Sequence[GradientRecord]],
                 groups: Sequence[dict], coarse_lrs: Sequence[float], fine: dict, compute, step_layers: Sequence[str] = (ALL_COORDINATES,)):
    """For each group (a dict of key values, e.g. ``{"dim": 4}`` or ``{"run_id": ...}``) and each step
    layer: the coarse sweep of its records, the fine grid chosen from them, the fine sweep. Any probe:
    ``source`` is a :class:`bnnprobe.study.ProbeSource`; ``references`` maps ``cdg`` (required) and
    ``smoothed`` (optional) to records, each matched to a record by key (the cosine references). A step
    layer names a group of the problem's coordinates (:meth:`ProbeProblem.coordinate_groups`) or
    ``all``. Yields (group, coarse rows, {step layer: fine lrs}, fine rows), rows of every step layer.
    """
    from ..study import RecordError, reopen

    columns = source.columns.run_columns
    by_key = {name: {tuple(sorted(r.key.items())): r for r in refs} for name, refs in references.items()}
    opened = {}

    def problems_of(record):
        if id(record) not in opened:
            opened[id(record)] = reopen(source, record, compute)
        return opened[id(record)]

    for group in groups:
        members = [r for r in records if all(r.key.get(k) == v for k, v in group.items())]
        if not members:
            raise RecordError(f"no {source.name} record matches {group}")
        refs = {}
        for record in members:
            key = tuple(sorted(record.key.items()))
            if key not in by_key["cdg"]:
                raise RecordError(f"no CDG record of {record.key} to compare the {record.estimator} record with")
            refs[id(record)] = {name: table.get(key) for name, table in by_key.items()}
        coordinate_groups = problems_of(members[0]).problem(0).coordinate_groups()
        coarse_parts, fine_parts, fine_lrs = [], [], {}
        for step_layer in step_layers:
            if step_layer != ALL_COORDINATES and step_layer not in coordinate_groups:
                raise RecordError(f"step layer {step_layer!r} is not a coordinate group of the {source.name} probe "
                                  f"(it has {sorted(coordinate_groups) or 'none'})")
            coordinates = coordinate_groups.get(step_layer)

            def sweep_one(record, lrs, grid):
                rows = sweep_gradients(record, problems_of(record).problem, lrs, grid, refs[id(record)],
                                       record.key, step_layer, coordinates)
                return rows.reindex(columns=columns)

            coarse, lrs, fine_rows = sweep_coarse_and_fine(members, coarse_lrs, fine, sweep_one)
            coarse_parts.append(coarse)
            fine_parts.append(fine_rows)
            fine_lrs[step_layer] = lrs
        fine_all = pd.concat([f for f in fine_parts if len(f)], ignore_index=True) if any(len(f) for f in fine_parts) \
            else fine_parts[0]
        yield group, pd.concat(coarse_parts, ignore_index=True), fine_lrs, fine_all
