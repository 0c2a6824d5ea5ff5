"""The layer probe's figures, drawn from its tables with the probes' plotting helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis.figures import errorbar, loss_axis


def layer_lr_curves(summary: pd.DataFrame, panels: list[dict]):
    """Layer probe: loss decrease vs lr, one row of estimator-group panels per finetune run."""
    run_ids = list(dict.fromkeys(summary["run_id"]))
    fig, axes = plt.subplots(len(run_ids), len(panels), figsize=(5 * len(panels), 3.6 * len(run_ids)),
                             squeeze=False, layout="constrained")
    for row, run_id in zip(axes, run_ids):
        at_run = summary[summary["run_id"] == run_id]
        for ax, panel in zip(row, panels):
            shown = at_run[at_run["estimator"].isin(panel["estimators"])]
            for name in panel["estimators"]:
                if (shown["estimator"] == name).any():
                    errorbar(ax, shown[shown["estimator"] == name], "lr", name)
            ax.set_xscale("log")
            loss_axis(ax, shown["loss_decrease_mean"].to_numpy())
            ax.set(title=f"{run_id}: {panel['title']}", xlabel="learning rate lr (log scale)")
            ax.legend(fontsize=7)
        row[0].set_ylabel("loss decrease (cross-entropy)")
    return fig


def best_vs_hyperparameter(best: pd.DataFrame, runs: list[dict]):
    """Layer probe: best loss decrease vs the finetune's weight decay, one panel per width (the log's
    "x-axis the hyper-parameter")."""
    meta = pd.DataFrame([{"run_id": r["id"], "width": r["width"], "weight_decay": r["weight_decay"]} for r in runs])
    frame = best.merge(meta, on="run_id")
    widths = sorted(frame["width"].unique())
    fig, axes = plt.subplots(1, len(widths), figsize=(5.5 * len(widths), 4.2), squeeze=False, layout="constrained")
    for ax, width in zip(axes[0], widths):
        at_width = frame[frame["width"] == width]
        for name, group in at_width.groupby("estimator", sort=True):
            errorbar(ax, group, "weight_decay", name)
        positive = at_width["weight_decay"][at_width["weight_decay"] > 0]
        ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1e-6)
        loss_axis(ax, at_width["loss_decrease_mean"].to_numpy())
        ax.set(title=f"width {width}", xlabel="finetune weight decay (symlog)")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("best loss decrease over the lr grid (cross-entropy)")
    fig.suptitle("Layer probe: best one-step loss decrease vs the finetune's hyper-parameters")
    return fig
