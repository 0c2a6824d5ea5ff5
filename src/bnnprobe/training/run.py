"""What a training job does around the trainer: each segment's lr, the run's record, the precision check."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from ..device import Compute
from ..io import cpu_model
from .columns import RUN_COLUMNS
from .trainer import TrainingResult, TrainingSpec, phase_snapshots, train_student
from .tuning import chosen_lr, read_tuning


def learning_rates(estimators: list[str], dim: int, lr, tuning_tables: list[str | Path]) -> tuple[float, ...]:
    """Each segment's starting step size (``estimators``: the schedule's, in order): ``lr`` itself when it is a
    number, else the tuned ones at ``dim``: the first estimator's tuned from the initialisation, a switch's
    second estimator's tuned at the switch point (from the first estimator's converged weights on the tuning
    seeds)."""
    if lr != "auto":
        return tuple(float(lr) for _ in estimators)
    table = read_tuning(tuning_tables)
    lrs = [chosen_lr(table, estimators[0], dim)]
    if len(estimators) == 2:
        lrs.append(chosen_lr(table, estimators[1], dim, after=estimators[0]))
    return tuple(lrs)


def machine_name(device: torch.device) -> str:
    """The processor or GPU that ran a job (wall times are labelled with it)."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def run_record(spec: TrainingSpec, result: TrainingResult, val_noise: float, machine: str) -> tuple[pd.DataFrame, dict]:
    """The run's curve with its constants (:data:`RUN_COLUMNS`) as columns, and its snapshots file's contents
    (the weights kept, the probe phases where the run kept its trajectory, and a single run's state where it
    converged, which the switches starting with its estimator take over: None for a switch or a run that did
    not converge)."""
    constants = {"schedule": spec.schedule, "dim": spec.dim, "seed": spec.seed, "lr": spec.lrs[0],
                 "lr_then": spec.lrs[1] if len(spec.lrs) > 1 else math.nan,
                 "converged_step": result.converged_step, "switch_step": result.switch_step,
                 "then_converged_step": result.then_converged_step, "end_step": result.end_step,
                 "finished": result.finished,
                 "decay_steps": ";".join(str(step) for step, what, _ in result.events if what == "decay"),
                 **{k: result.stationarity.get(k, math.nan) for k in RUN_COLUMNS if k.startswith("expected_")},
                 "val_noise_rel": val_noise, "machine": machine}
    curve = result.curve.assign(**{k: constants[k] for k in RUN_COLUMNS})
    snapshots = {"spec": spec.as_dict(), "snapshots": result.snapshots, "events": result.events,
                 "phases": phase_snapshots(result, spec) if result.trajectory else {},
                 "handoff": result.handoff}
    return curve, snapshots


def precision_rows(spec: dict, settings: dict, compute: dict, threads: int | None = None) -> dict:
    """One run trained in float32 and in float64 (the same batches and noise): how far apart they end."""
    spec = TrainingSpec.from_dict(spec)
    curves, ends = {}, {}
    for dtype in ("float32", "float64"):
        result = train_student(spec, settings, None, Compute.from_config({**compute, "dtype": dtype}, threads=threads))
        curves[dtype] = result.curve.set_index("step")["val_loss"]
        ends[dtype] = result.snapshots["end"]["theta"]
    common = curves["float32"].index.intersection(curves["float64"].index)
    rel = ((curves["float32"][common] - curves["float64"][common]) / curves["float64"][common]).abs()
    last = common.max()
    return {"schedule": spec.schedule, "dim": spec.dim, "seed": spec.seed, "steps": int(last),
            "final_val_loss_float32": float(curves["float32"][last]),
            "final_val_loss_float64": float(curves["float64"][last]),
            "final_rel_diff": float(rel[last]), "max_rel_diff": float(rel.max()),
            "weights_rel_diff": float((ends["float32"] - ends["float64"]).norm() / ends["float64"].norm())}
