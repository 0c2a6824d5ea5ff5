"""Figures of the training study, drawn from its tables.

Every run is drawn as its own thin line (a seed is an independent run; averaging curves over seeds
that switched at different steps or spent different costs would draw curves no run followed), with
each schedule's colour, its test loss; markers show each seed's switch (v) and convergence (o) where it
happened.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TEST_LOSS = "test loss (MSE, log scale)"
AXIS_LABELS = {"cost": "cost: loss evaluations spent, a backprop pass counted as two (log scale)",
               "seconds": "wall time, seconds on the machine that ran it (log scale)",
               "step": "training step"}


def _colours(schedules) -> dict:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(sorted(schedules))}


def _runs(ax, frame: pd.DataFrame, x: str, colours: dict) -> None:
    """Each run's curve; its switch (v) and convergence (o) marked where they happened."""
    for (schedule, seed), run in frame.groupby(["schedule", "seed"], sort=True):
        run = run.sort_values("step")
        colour = colours[schedule]
        ax.plot(run[x], run["test_loss"], color=colour, linewidth=0.9, alpha=0.7,
                label=schedule if seed == frame.loc[frame["schedule"] == schedule, "seed"].min() else None)
        converged = run["then_converged_step"] if ">" in schedule else run["converged_step"]
        for step, marker in ((run["switch_step"].iloc[0], "v"), (converged.iloc[0], "o")):
            if pd.notna(step):
                at = run[run["step"] >= step].head(1)
                ax.scatter(at[x], at["test_loss"], marker=marker, s=28, color=colour, edgecolor="black",
                           linewidth=0.5, zorder=5)


def loss_vs_cost(curves: pd.DataFrame, dim: int):
    """One dim: validation loss against cost (left) and wall time (right), log x, every run."""
    at_dim = curves[curves["dim"] == dim]
    colours = _colours(at_dim["schedule"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    for ax, x in zip(axes, ("cumulative_cost", "seconds")):
        shown = at_dim[(at_dim[x] > 0) & (at_dim["step"] > 0)]  # a log axis: from the first step on
        _runs(ax, shown, x, colours)
        ax.set(xscale="log", yscale="log", xlabel=AXIS_LABELS["cost" if x == "cumulative_cost" else "seconds"],
               ylabel=TEST_LOSS)
    axes[0].legend(fontsize=7, title="schedule (a line per seed; v switch, o converged)", title_fontsize=7)
    machine = at_dim["machine"].dropna().unique()
    fig.suptitle(f"num_dim = {dim}: test loss against what it cost"
                 + (f" (wall time on {machine[0]})" if len(machine) == 1 else ""))
    return fig


def loss_vs_step(curves: pd.DataFrame):
    """Validation loss against step, a panel per dim, every run."""
    dims = sorted(curves["dim"].unique())
    colours = _colours(curves["schedule"].unique())
    cols = min(3, len(dims))
    rows = -(-len(dims) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False, layout="constrained")
    for ax, dim in zip(axes.flat, dims):
        _runs(ax, curves[curves["dim"] == dim], "step", colours)
        ax.set(yscale="log", title=f"num_dim = {dim}", xlabel=AXIS_LABELS["step"], ylabel=TEST_LOSS)
    for ax in list(axes.flat)[len(dims):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7, title="schedule (a line per seed; v switch, o converged)", title_fontsize=7)
    fig.suptitle("Training the student: test loss against step")
    return fig


def lr_tuning(tuning: pd.DataFrame):
    """The lr tuning: mean final validation loss over the tuning seeds against lr, a panel per dim, a line
    per estimator; the chosen lr starred, diverged lrs marked x at the top."""
    dims = sorted(tuning["dim"].unique())
    fig, axes = plt.subplots(1, len(dims), figsize=(4.6 * len(dims), 4.2), squeeze=False, layout="constrained")
    colours = _colours(tuning["estimator"].unique())
    for ax, dim in zip(axes[0], dims):
        at_dim = tuning[tuning["dim"] == dim]
        finite = at_dim.loc[np.isfinite(at_dim["val_loss"]), "val_loss"]
        top = float(finite.max()) * 1.5 if len(finite) else 1.0
        for name, frame in at_dim.groupby("estimator", sort=True):
            means = frame.groupby("lr")["val_loss"].mean()
            ok = means[np.isfinite(means)]
            ax.plot(ok.index, ok.values, marker=".", color=colours[name], label=f"{name} ({frame['optimizer'].iloc[0]})")
            bad = means[~np.isfinite(means)]
            ax.scatter(bad.index, [top] * len(bad), marker="x", color=colours[name])
            chosen = frame[frame["chosen"]]
            if len(chosen):
                lr = float(chosen["lr"].iloc[0])
                ax.scatter([lr], [means[lr]], marker="*", s=140, color=colours[name], edgecolor="black", zorder=5)
        ax.set(xscale="log", yscale="log", title=f"num_dim = {dim}", xlabel="learning rate (log scale)",
               ylabel="validation loss after the tuning budget" if dim == dims[0] else "")
    axes[0][0].legend(fontsize=7, title="estimator (optimiser); * chosen, x diverged", title_fontsize=7)
    fig.suptitle("Each estimator's learning rate, tuned on seeds disjoint from the reported ones")
    return fig


def phase_probe(runs: pd.DataFrame, schedule: str):
    """The one-step probe along one training run: the run's own STE's cosine to CDG (solid) and to the
    smoothed gradient (dashed), a row per stepped layer, a column per dim, each phase at the step where
    that seed reached it (a line per seed, the mean over its batches)."""
    own = runs[(runs["schedule"] == schedule) & (runs["estimator"] == schedule)]
    own = own.drop_duplicates(["phase", "step_layer", "dim", "seed", "batch"])
    layers = sorted(own["step_layer"].astype(str).unique(), key=lambda v: (v != "all", v.zfill(4)))
    dims = sorted(own["dim"].unique())
    fig, axes = plt.subplots(len(layers), len(dims), figsize=(3.8 * len(dims), 2.6 * len(layers) + 0.6),
                             squeeze=False, sharex="col", layout="constrained")
    seeds = sorted(own["seed"].unique())
    colours = _colours(seeds)
    for row, layer in enumerate(layers):
        for col, dim in enumerate(dims):
            ax = axes[row, col]
            frame = own[(own["step_layer"].astype(str) == layer) & (own["dim"] == dim)]
            per_seed = frame.groupby(["seed", "phase"]).agg(step=("step", "first"), cdg=("cos_to_cdg", "mean"),
                                                            smoothed=("cos_to_smoothed", "mean")).reset_index()
            for seed, points in per_seed.groupby("seed"):
                points = points.sort_values("step")
                ax.plot(points["step"], points["cdg"], marker="o", markersize=3, color=colours[seed], linewidth=1)
                ax.plot(points["step"], points["smoothed"], linestyle="--", color=colours[seed], linewidth=0.8)
            ax.set(ylim=(-0.05, 1.05), title=f"dim {dim}, layer {layer}" if layer != "all" else f"dim {dim}, all layers")
            if col == 0:
                ax.set_ylabel("cosine")
            if row == len(layers) - 1:
                ax.set_xlabel("training step (init, 25 %, 50 %, 75 % of its converged step, converged)")
    handles = [plt.Line2D([], [], color="black", marker="o", label="to CDG"),
               plt.Line2D([], [], color="black", linestyle="--", label="to the smoothed gradient")]
    handles += [plt.Line2D([], [], color=colours[s], label=f"seed {s}") for s in seeds]
    axes[0, 0].legend(handles=handles, fontsize=6)
    fig.suptitle(f"The gradient of {schedule} along its own training: cosine to CDG and to the smoothed gradient")
    return fig
