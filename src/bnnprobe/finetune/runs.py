"""The finetune runs: one row of the log's table each (torch-free: the Snakefile imports it).

A run is width, weight decay and the optimiser settings that differ from the defaults
(the width-256 rows use batch 64; the last one lr 2e-3). Its id is built from its values,
e.g. ``w192_wd1e-05_bs32_lr0.001_ep50``, so changing a value makes a new run instead of
overwriting an old one. The log's table: means over the last epochs of each (run, seed).
"""

from __future__ import annotations

import pandas as pd


def resolve_runs(finetune: dict) -> list[dict]:
    """Each configured run with the defaults filled in, and its id."""
    runs = []
    for run in finetune["runs"]:
        full = {**finetune["defaults"], **run}
        full["id"] = run_id(full)
        runs.append(full)
    ids = [r["id"] for r in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"finetune.runs has duplicate runs: {duplicates}")
    return runs


def run_id(run: dict) -> str:
    text = f"w{run['width']}_wd{run['weight_decay']:g}_bs{run['batch_size']}_lr{run['lr']:g}_ep{run['epochs']}"
    if run.get("schedule", "cosine") != "cosine":
        text += f"_{run['schedule']}"
    if not run.get("augment", True):
        text += "_noaug"
    return text


def finetune_table(metrics: list[tuple[dict, int, pd.DataFrame]], last_epochs: int, dataset: str):
    """The log's table: means over the last ``last_epochs`` epochs of each (run, seed)."""
    rows = []
    for run, seed, frame in metrics:
        tail = frame.sort_values("epoch").tail(last_epochs)
        rows.append({"dataset": dataset, "run_id": run["id"], "width": run["width"],
                     "weight_decay": run["weight_decay"], "batch_size": run["batch_size"], "lr": run["lr"],
                     "epochs": run["epochs"], "seed": seed, "last_epochs": len(tail),
                     "train_loss": tail["train_loss"].mean(), "train_acc": tail["train_acc"].mean(),
                     "val_acc": tail["val_acc"].mean()})
    return pd.DataFrame(rows)


def table_markdown(table: pd.DataFrame) -> str:
    """``finetune.md``: the log's layout (Width | Weight Decay | Training Loss | ...) plus the run's settings."""
    lines = ["| Width | Weight Decay | Training Loss | Training Accuracy | Validation Accuracy | Dataset | "
             "Batch Size | lr | Epochs | Seed |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(f"| {r.width} | {r.weight_decay:g} | {r.train_loss:.4g} | {r.train_acc:.4f} | "
                     f"{r.val_acc:.4f} | {r.dataset} | {r.batch_size} | {r.lr:g} | {r.epochs} | {r.seed} |")
    return "\n".join(lines) + "\n"
