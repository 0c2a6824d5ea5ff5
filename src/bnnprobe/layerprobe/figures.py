"""The layer probe's figures, drawn from its tables with the probes' plotting helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from ..analysis.figures import crossfitted, errorbar, loss_axis, mark_undetermined


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


# a panel with at most this many weight-decay values shows them as categories, evenly spaced
CATEGORICAL_UP_TO = 6


def _decay_label(value: float) -> str:
    return "0" if value == 0 else f"{value:.0e}".replace("e-0", "e-")


def best_vs_hyperparameter(best: pd.DataFrame, runs: list[dict]):
    """Layer probe: best loss decrease vs the finetune's weight decay, one panel per width (the log's
    "x-axis the hyper-parameter"), with the 95% CI over the summary's independent units (``ci_unit``).

    A panel with few weight-decay values shows exactly those values as categories (a log or symlog axis
    would stretch one or two values over decades); estimators sit side by side at each value."""
    meta = pd.DataFrame([{"run_id": r["id"], "width": r["width"], "weight_decay": r["weight_decay"]} for r in runs])
    frame = crossfitted(best).merge(meta, on="run_id")
    widths = sorted(frame["width"].unique())
    names = sorted(frame["estimator"].unique())
    fig, axes = plt.subplots(1, len(widths), figsize=(4.5 * len(widths), 4.2), squeeze=False, layout="constrained")
    for ax, width in zip(axes[0], widths):
        at_width = frame[frame["width"] == width]
        values = sorted(at_width["weight_decay"].unique())
        categorical = len(values) <= CATEGORICAL_UP_TO
        for i, name in enumerate(names):
            group = at_width[at_width["estimator"] == name]
            if not len(group):
                continue
            if categorical:  # each estimator a little to the side, so that the error bars do not overlap
                offset = (i - (len(names) - 1) / 2) * 0.6 / max(len(names), 1)
                group = group.assign(position=group["weight_decay"].map(values.index) + offset)
                errorbar(ax, group, "position", name, linestyle="none")  # categories: no line between them
            else:
                errorbar(ax, group, "weight_decay", name)
            mark_undetermined(ax, group, "position" if categorical else "weight_decay")
        if categorical:
            ax.set_xticks(range(len(values)), [_decay_label(v) for v in values])
            ax.set_xlim(-0.6, len(values) - 0.4)
            ax.set_xlabel("finetune weight decay")
        else:
            positive = at_width["weight_decay"][at_width["weight_decay"] > 0]
            ax.set_xscale("symlog", linthresh=float(positive.min()) if len(positive) else 1e-6)
            ax.set_xlabel("finetune weight decay (symlog)")
        # linear: whether a CI reaches below 0 is what a reader needs to see (a log axis hides it)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.set_title(f"width {width}")
    axes[0][0].legend(fontsize=7)
    axes[0][0].set_ylabel("best loss decrease, lr chosen on the other seeds (cross-entropy)")
    fig.suptitle("Layer probe: best one-step loss decrease vs the finetune's hyper-parameters\n"
                 f"error bars: 95% Student-t CI, {_unit_text(frame)}", fontsize=10)
    return fig


def _unit_text(frame: pd.DataFrame) -> str:
    n = sorted(frame["n"].unique())
    count = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    return f"n = {count} per point, unit: {frame['ci_unit'].iloc[0]}"
