"""Each estimator at its own learning rate (``training.lr: auto``), chosen on seeds that are never reported.

Gradient scales differ between estimators, so one lr for all compares lr fit, not gradient
quality. For each (estimator, dim) and optimiser, every lr of a log grid trains the student for a fixed
budget of ``steps`` at a constant lr on each *tuning seed* (seeds disjoint from the reported ones: the
reported runs are not used to choose their own lr). The lr with the lowest mean validation loss at the
end of the budget (each run's mean over its last ``smooth`` evaluations, so that one lucky evaluation does
not decide) wins; a run that diverges counts as +inf. A winner at an edge of the grid extends it by a
decade on that side, up to ``extend`` times, as the probe's fine grid does; a winner still at the edge is
flagged ``at_edge`` (and the comparisons that use it are undetermined).

**Where it is tuned.** A run's first estimator is tuned from the initialisation (``after`` empty). A
switch's second estimator B is tuned *at the switch point*: from the first estimator A's converged weights
of each tuning seed (A trained there with the full protocol: its own tuned lr, decay to convergence,
:func:`converged_starts`), so B's lr fits the flat region where it takes over, not the initialisation
(``after`` = A). ``A>A``, the restart control, tunes A again at A's own convergence.

The grid is per optimiser (``training.tuning.grid``): SGD's and Adam's lrs live on other scales, and
an estimator that is its own optimiser (SNES) tunes its step size ``eta_mu`` on its own grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from ..device import Compute
from ..mlp.network import MLPSpec
from ..problem import NonFiniteLossError
from .schedule import grid_key
from .trainer import TrainingSpec, train_student

COLUMNS = ["estimator", "after", "dim", "optimizer", "lr", "seed", "steps", "val_loss", "diverged"]
TUNING_COLUMNS = [*COLUMNS, "chosen", "at_edge"]  # training_lr.csv


def final_val_loss(name: str, problem: MLPSpec, lr: float, budget: dict, settings: dict, compute: Compute,
                   start: torch.Tensor | None = None) -> tuple[float, bool]:
    """The validation loss after ``budget["steps"]`` steps of ``name`` at a constant ``lr`` from ``start`` (the
    mean of the last ``budget["smooth"]`` evaluations), or ``(inf, True)`` if it diverged. ``budget`` holds
    steps, eval_every, smooth, val_batch_size and optimizer."""
    spec = TrainingSpec(problem=problem, schedule=name, steps=budget["steps"], val_batch_size=budget["val_batch_size"],
                        eval_every=min(budget["eval_every"], budget["steps"]), lrs=(lr,),
                        optimizer=budget["optimizer"], smooth=budget["smooth"], stops=False)
    try:
        curve = train_student(spec, {name: settings}, None, compute, start).curve
    except NonFiniteLossError:
        return math.inf, True
    return float(curve["val_loss"].iloc[-budget["smooth"]:].mean()), False


def tune(name: str, starts: dict[int, tuple[MLPSpec, torch.Tensor | None]], grid: list[float], budget: dict,
         settings: dict, compute: Compute, extend: int = 2, after: str = "", run: Callable = final_val_loss
         ) -> pd.DataFrame:
    """Every (lr, tuning seed) tried for estimator ``name`` at one dim, with the winner marked.

    ``starts`` maps each tuning seed to its problem spec (the same dim) and the weights to start from (None:
    the initialisation); ``after`` names the estimator whose converged weights they are; ``run`` is
    :func:`final_val_loss` (a test may pass a stand-in)."""
    lrs = sorted(float(lr) for lr in grid)
    rows = []

    def measure(lr):
        for seed, (problem, start) in starts.items():
            loss, diverged = run(name, problem, lr, budget, settings, compute, start)
            rows.append({"estimator": name, "after": after, "dim": problem.dim,
                         "optimizer": grid_key(name, budget["optimizer"]), "lr": lr, "seed": seed,
                         "steps": budget["steps"], "val_loss": loss, "diverged": diverged})

    for lr in lrs:
        measure(lr)
    for _ in range(extend):
        best = choose(pd.DataFrame(rows, columns=COLUMNS))[0]
        if best == lrs[0]:
            lrs.insert(0, lrs[0] / 10)
            measure(lrs[0])
        elif best == lrs[-1]:
            lrs.append(lrs[-1] * 10)
            measure(lrs[-1])
        else:
            break
    table = pd.DataFrame(rows, columns=COLUMNS)
    best, at_edge = choose(table)
    table["chosen"] = table["lr"] == best
    table["at_edge"] = at_edge
    return table


def choose(table: pd.DataFrame) -> tuple[float, bool]:
    """The lr with the lowest mean final validation loss over the tuning seeds, and whether it is an
    edge of the lrs tried (ties: the smaller lr)."""
    means = table.groupby("lr", sort=True)["val_loss"].mean()
    if not means.apply(math.isfinite).any():
        raise NonFiniteLossError(f"every lr tried diverged for {sorted(set(table['estimator']))}: lower the grid")
    best = float(means.idxmin())
    return best, best in (float(means.index.min()), float(means.index.max()))


def read_tuning(paths: list[str | Path]) -> pd.DataFrame:
    """The tuning tables of ``paths`` in one (``after`` is empty for a tuning from the initialisation)."""
    table = pd.concat([pd.read_csv(path, dtype={"after": str}) for path in paths], ignore_index=True)
    table["after"] = table["after"].fillna("")
    return table


def chosen_lr(table: pd.DataFrame, name: str, dim: int, after: str = "") -> float:
    """The tuned lr of ``name`` at ``dim`` (from the initialisation, or at ``after``'s convergence)."""
    rows = table[(table["estimator"] == name) & (table["dim"] == dim) & (table["after"] == after) & table["chosen"]]
    if rows.empty:
        where = f" after {after}" if after else ""
        raise ValueError(f"the tuning tables have no chosen lr for {name}{where} at dim {dim}")
    return float(rows["lr"].iloc[0])


def converged_starts(name: str, problems: dict[int, MLPSpec], spec: dict, settings: dict, lr: float,
                     compute: Compute) -> dict[int, dict]:
    """``name`` trained on each tuning seed with the full protocol (``spec``: a TrainingSpec's fields without
    problem, schedule and lrs) at its tuned ``lr``: per seed, its converged weights (its last, and
    ``converged`` False, where it reached the cap first) and the step."""
    out = {}
    for seed, problem in problems.items():
        result = train_student(TrainingSpec(problem=problem, schedule=name, lrs=(lr,), **spec), {name: settings}, None,
                               compute)
        at = result.snapshots.get("converged", result.snapshots["end"])
        out[seed] = {"theta": at["theta"], "step": int(at["step"]), "converged": "converged" in result.snapshots}
    return out
