"""Each estimator at its own learning rate (``training.lr: auto``).

Gradient scales differ between estimators, so one lr for all compares lr fit, not gradient
quality. For each (estimator, dim) and optimiser, every lr of a log grid trains the student from the
probe's initialisation for a fixed budget of ``steps`` on each *tuning seed* (seeds disjoint from the
reported ones: the reported runs are not used to choose their own lr). The lr with the lowest mean
validation loss at the end of the budget wins; a run that diverges counts as +inf. A winner at an
edge of the grid extends it by a decade on that side, up to ``extend`` times, as the probe's fine
grid does; a winner still at the edge is flagged ``at_edge``.

The grid is per optimiser (``training.tuning.grid``): SGD's and Adam's lrs live on other scales, and
an estimator that is its own optimiser (SNES) tunes its step size ``eta_mu`` on its own grid.

**Switches.** The B segment of ``A>B`` runs at B's lr tuned from the initialisation, the same lr as B
alone: one lr per (estimator, dim) keeps every schedule comparable and costs one tuning per estimator
instead of one per (A, B) pair and seed. Its limit: near A's plateau the best lr of B may be smaller
than at the initialisation (the loss surface is flatter there and the gradients smaller); the tuning
table shows the whole curve, so a reader can judge how sharp the optimum is.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from ..device import Compute
from ..mlp.network import MLPSpec
from ..problem import NonFiniteLossError
from .schedule import grid_key
from .trainer import TrainingSpec, train_student

COLUMNS = ["estimator", "dim", "optimizer", "lr", "seed", "steps", "val_loss", "diverged"]
TUNING_COLUMNS = [*COLUMNS, "chosen", "at_edge"]  # training_lr.csv


def final_val_loss(name: str, problem: MLPSpec, lr: float, steps: int, val_batch_size: int, optimizer: str,
                   settings: dict, compute: Compute) -> tuple[float, bool]:
    """The validation loss after ``steps`` steps of ``name`` at ``lr`` (``(inf, True)`` if it diverged)."""
    spec = TrainingSpec(problem=problem, schedule=name, steps=steps, val_batch_size=val_batch_size,
                        eval_every=steps, lrs={name: lr}, optimizer=optimizer, probe_fractions=())
    try:
        curve = train_student(spec, {name: settings}, None, compute).curve
    except NonFiniteLossError:
        return math.inf, True
    return float(curve["val_loss"].iloc[-1]), False


def tune(name: str, problems: dict[int, MLPSpec], grid: list[float], steps: int, val_batch_size: int,
         optimizer: str, settings: dict, compute: Compute, extend: int = 2,
         run: Callable = final_val_loss) -> pd.DataFrame:
    """Every (lr, tuning seed) tried for estimator ``name`` at one dim, with the winner marked.

    ``problems`` maps each tuning seed to its problem spec (the same dim); ``run`` is
    :func:`final_val_loss` (a test may pass a stand-in)."""
    lrs = sorted(float(lr) for lr in grid)
    rows = []

    def measure(lr):
        for seed, problem in problems.items():
            loss, diverged = run(name, problem, lr, steps, val_batch_size, optimizer, settings, compute)
            rows.append({"estimator": name, "dim": problem.dim, "optimizer": grid_key(name, optimizer), "lr": lr,
                         "seed": seed, "steps": steps, "val_loss": loss, "diverged": diverged})

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


def chosen_lr(table: pd.DataFrame, name: str, dim: int) -> float:
    """The tuned lr of ``name`` at ``dim`` from a tuning table."""
    rows = table[(table["estimator"] == name) & (table["dim"] == dim) & table["chosen"]]
    if rows.empty:
        raise ValueError(f"the tuning table has no chosen lr for {name} at dim {dim}")
    return float(rows["lr"].iloc[0])
