"""The layer probe's figures, drawn from its tables with the probes' plotting helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from .. import style
from ..analysis.figures import _edge_note, ci_text, crossfitted, errorbar, loss_axis, mark_undetermined


def short_ids(run_ids: list[str]) -> tuple[dict, str]:
    """Each run id without the parts every run shares (``w2_wd0_bs128`` and ``w2_wd1e-4_bs128``: ``wd0``
    and ``wd1e-4``), and those shared parts (for the title)."""
    parts = [run_id.split("_") for run_id in run_ids]
    common = [p for p in parts[0] if all(p in other for other in parts)] if parts else []
    short = {run_id: " ".join(p for p in split if p not in common) or run_id for run_id, split in zip(run_ids, parts)}
    return short, "_".join(common)


def layer_lr_curves(summary: pd.DataFrame, panels: list[dict] | None = None):
    """Layer probe: loss decrease vs lr, one panel per finetune run with every estimator the layer probe
    ran (``panels``, the MLP probe's groups, are not used: they name estimators the layer probe may not
    run)."""
    run_ids = list(dict.fromkeys(summary["run_id"]))
    short, common = short_ids(run_ids)
    names = sorted(summary["estimator"].unique(), key=lambda n: (n != style.REFERENCE, n))
    fig, axes = style.panel_grid(len(run_ids), panel_height=2.1)
    for ax, run_id in zip(axes, run_ids):
        shown = summary[summary["run_id"] == run_id]
        for name in names:
            errorbar(ax, shown[shown["estimator"] == name], "lr", name)
        ax.set_xscale("log")
        loss_axis(ax, shown)
        ax.set(title=f"run {short[run_id]}", xlabel="learning rate lr (log scale)")
    cols = min(len(axes), 2 if len(axes) <= 4 else 3)
    for ax in axes[::cols]:
        ax.set_ylabel("loss decrease\n(cross-entropy)")
    style.legend_below(fig, *style.collect_legend(axes), title="estimator")
    style.suptitle(fig, f"Layer probe: loss decrease of one step against lr, a panel per finetune run "
                 f"({common}); {ci_text(summary)}" + _edge_note([summary]))
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
    fig, axes = style.panel_grid(len(widths), panel_height=2.8)
    for ax, width in zip(axes, widths):
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
                errorbar(ax, group, "position", name, log=False, linestyle="none")  # categories: no line between them
            else:
                errorbar(ax, group, "weight_decay", name, log=False)
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
    axes[0].set_ylabel("best loss decrease, lr chosen\non the other seeds (cross-entropy)")
    style.legend_below(fig, *style.collect_legend(axes), title="estimator")
    style.suptitle(fig, "Layer probe: best one-step loss decrease vs the finetune's hyper-parameters\n"
                 f"error bars: 95% Student-t CI, {_unit_text(frame)}")
    return fig


def _unit_text(frame: pd.DataFrame) -> str:
    n = sorted(frame["n"].unique())
    count = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    return f"n = {count} per point, unit: {frame['ci_unit'].iloc[0]}"
