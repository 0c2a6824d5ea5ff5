"""What a training job does around the trainer: each estimator's lr, the run's record, the precision check."""

from __future__ import annotations

import math
import platform
from pathlib import Path

import pandas as pd
import torch

from ..device import Compute
from .schedule import parse_schedule
from .trainer import TrainingResult, TrainingSpec, train_student
from .tuning import chosen_lr


def learning_rates(spec: dict, lr, tuning_tables: list[str | Path]) -> dict[str, float]:
    """Each estimator of the spec's schedule -> its lr: ``lr`` itself when it is a number, else the lr
    tuned for it at the spec's dim (the tuning tables are the estimators' ``training_tune`` outputs)."""
    names = parse_schedule(spec["schedule"]).estimators
    if lr != "auto":
        return {name: float(lr) for name in names}
    table = pd.concat([pd.read_csv(path) for path in tuning_tables], ignore_index=True)
    return {name: chosen_lr(table, name, int(spec["problem"]["dim"])) for name in names}


def machine_name(device: torch.device) -> str:
    """The processor or GPU that ran a job (wall times are labelled with it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_record(spec: TrainingSpec, result: TrainingResult, val_noise: float, machine: str) -> tuple[pd.DataFrame, dict]:
    """The run's curve with its constants as columns, and its snapshots file's contents."""
    schedule = parse_schedule(spec.schedule)
    curve = result.curve.assign(
        schedule=spec.schedule, dim=spec.dim, seed=spec.seed, switch_step=result.switch_step,
        plateau_step=result.plateau_step, then_plateau_step=result.then_plateau_step,
        lr=spec.lrs[schedule.first], lr_then=spec.lrs[schedule.then] if schedule.then else math.nan,
        val_noise_rel=val_noise, machine=machine)
    snapshots = {"spec": spec.as_dict(), "snapshots": result.snapshots, "switch_step": result.switch_step,
                 "plateau_step": result.plateau_step, "then_plateau_step": result.then_plateau_step}
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
