"""Loss decreases over an lr grid and cosines to CDG.

*Loss decrease* of a gradient ``g`` at learning rate ``lr`` is ``L(w) - L(w - lr g)``,
both on the same batch the gradient was estimated on: one plain step, no momentum.
Positive is good.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..problem import ProbeProblem, cosine
from .lrgrid import extension_grid, fine_grid, tidy_lr


def loss_decreases(problem: ProbeProblem, gradient: torch.Tensor, lrs: Sequence[float]) -> tuple[float, np.ndarray]:
    """``L(w)`` and ``L(w) - L(w - lr g)`` for every lr, all evaluated as one stack (lr 0 first)."""
    g = gradient.to(device=problem.device, dtype=problem.dtype)
    lr = torch.tensor([0.0, *lrs], device=problem.device, dtype=problem.dtype)
    losses = problem.losses(problem.theta0[None, :] - lr[:, None] * g[None, :]).cpu().numpy()
    before = float(losses[0])
    return before, before - losses[1:]


def sweep_gradients(record: dict, problem_at, lrs: Sequence[float], grid: str, cdg_record: dict | None,
                    key: dict) -> pd.DataFrame:
    """Rows of loss decreases for every stored gradient of ``record`` (batch b on ``problem_at(b)``)."""
    lrs = [tidy_lr(x) for x in lrs]
    if any(not x > 0 for x in lrs):
        raise ValueError(f"learning rates must be > 0, got {lrs}")
    rows = []
    for b, grad in enumerate(record["gradients"]):
        before, decrease = loss_decreases(problem_at(b), grad, lrs)
        cos = cosine(grad, cdg_record["gradients"][b]) if cdg_record is not None else math.nan
        for lr, dec in zip(lrs, decrease):
            rows.append({
                **key, "estimator": record["estimator"], "batch": b, "lr": lr, "grid": grid,
                "loss_before": before, "loss_after": before - float(dec), "loss_decrease": float(dec),
                "grad_norm": float(grad.double().norm()), "cos_to_cdg": cos,
                "seconds": float(record["seconds"][b]), "n_loss_evals": int(record["n_loss_evals"][b]),
            })
    return pd.DataFrame(rows)


def sweep_coarse_and_fine(records: Sequence[dict], cdg_records: Sequence[dict], coarse_lrs: Sequence[float],
                          fine: dict, sweep_one):
    """Coarse sweep of every record (one per seed), the fine grid chosen from all of them, the fine sweep.

    ``sweep_one(record, lrs, grid, cdg_record)`` makes the rows (:func:`bnnprobe.study.sweep_records`
    gives it for any probe). In ``auto`` mode the fine grid is extended up to
    ``fine['extend']`` times while the best lr is at the edge of all lrs tried
    (:func:`~bnnprobe.analysis.lrgrid.extension_grid`). Returns (coarse rows, fine lrs, fine rows).
    """
    def run(lrs, grid):
        return pd.concat([sweep_one(r, lrs, grid, c) for r, c in zip(records, cdg_records)], ignore_index=True)

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


def sweep_groups(source, records: Sequence[dict], cdg_records: Sequence[dict], groups: Sequence[dict],
                 coarse_lrs: Sequence[float], fine: dict, compute):
    """For each group (a dict of key values, e.g. ``{"dim": 4}`` or ``{"run_id": ...}``): the coarse
    sweep of its records, the fine grid chosen from them, the fine sweep. Any probe: ``source`` is a
    :class:`bnnprobe.study.ProbeSource`; each record is matched with the CDG record of the same key
    (the cosine reference). Yields (group, coarse rows, fine lrs, fine rows).
    """
    from ..study import RecordError, reopen

    columns = source.columns.run_columns
    cdg_by_key = {tuple(sorted(r["key"].items())): r for r in cdg_records}
    opened = {}

    def sweep_one(record, lrs, grid, cdg_record):
        if id(record) not in opened:
            opened[id(record)] = reopen(source, record, compute)
        rows = sweep_gradients(record, opened[id(record)].problem, lrs, grid, cdg_record, record["key"])
        return rows.reindex(columns=columns)

    for group in groups:
        members = [r for r in records if all(r["key"].get(k) == v for k, v in group.items())]
        if not members:
            raise RecordError(f"no {source.name} record matches {group}")
        cdg = []
        for record in members:
            match = cdg_by_key.get(tuple(sorted(record["key"].items())))
            if match is None:
                raise RecordError(f"no CDG record of {record['key']} to compare the {record['estimator']} record with")
            cdg.append(match)
        yield (group, *sweep_coarse_and_fine(members, cdg, coarse_lrs, fine, sweep_one))
