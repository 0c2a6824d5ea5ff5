"""Figures of the training study, drawn from its tables, in the look every figure shares
(:mod:`bnnprobe.style`: a schedule has its estimator's colour; a switch ``A>B`` B's, dashed).

Against step, each schedule is drawn as the geometric mean of its seeds' test losses (the mean of log10)
with its Student-t 95% CI over the seeds (the independent runs) that reached that step; each seed's switch
(v) and convergence (o) are marked on it where they happened. Under it, each switch against its first
estimator alone, continued (the control the findings compare it with): their test losses' ratio paired
over seeds, in percent, so that the differences the findings state are visible where they are claimed. Against cost and wall time seeds spend
different amounts at the same step: there every run is its own thin line.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import style  # noqa: E402
from ..probes import PHASES  # noqa: E402

style.apply()

TEST_LOSS = "test loss (MSE, log scale)"
AXIS_LABELS = {"cost": "cost: loss evaluations, a backprop pass counted as two (log scale)",
               "seconds": "wall time, seconds (log scale)",
               "step": "training step"}


def _line(schedule: str) -> dict:
    return style.schedule_style(schedule)


def _events(ax, run: pd.DataFrame, schedule: str, x: str, y: pd.Series, colour: str) -> None:
    """A run's switch (v) and convergence (o), on the curve ``y`` (indexed like ``run``'s ``x``)."""
    converged = run["then_converged_step"] if ">" in schedule else run["converged_step"]
    for step, marker in ((run["switch_step"].iloc[0], "v"), (converged.iloc[0], "o")):
        if pd.notna(step):
            at = run[run["step"] >= step].head(1)
            if len(at) and at[x].iloc[0] in y.index:
                ax.scatter(at[x], [y.loc[at[x].iloc[0]]], marker=marker, s=16, color=colour, edgecolor="black",
                           linewidth=0.4, zorder=6)


def _runs(ax, frame: pd.DataFrame, x: str) -> None:
    """Each run's curve (thin, its schedule's style); its switch (v) and convergence (o) marked."""
    for (schedule, seed), run in frame.groupby(["schedule", "seed"], sort=True):
        run = run.sort_values("step")
        line = {**_line(schedule), "marker": None, "markevery": None}
        line.update(linewidth=0.8, alpha=0.75)
        first = seed == frame.loc[frame["schedule"] == schedule, "seed"].min()
        ax.plot(run[x], run["test_loss"], label=schedule if first else None, **line)
        _events(ax, run, schedule, x, run.set_index(x)["test_loss"], line["color"])


def seed_means(frame: pd.DataFrame, x: str = "step") -> pd.DataFrame:
    """Per schedule and ``x``: the geometric mean test loss over seeds (mean of log10), its 95% CI
    (``low``, ``high``; NaN with one seed) and n (the seeds that reached ``x``)."""
    logs = frame.assign(log=np.log10(frame["test_loss"].where(frame["test_loss"] > 0)))
    rows = []
    for schedule, at in logs.groupby("schedule", sort=True):
        stats = style.mean_ci(at.groupby(x)["log"])
        stats = stats.assign(schedule=schedule, geomean=10 ** stats["mean"], low=10 ** (stats["mean"] - stats["half"]),
                             high=10 ** (stats["mean"] + stats["half"]))
        rows.append(stats.reset_index())
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _means(ax, frame: pd.DataFrame) -> None:
    """Each schedule's geometric mean over seeds against step with its 95% CI band; events of each seed. A switch
    whose first estimator alone is drawn too is drawn from its first seed's switch on."""
    means = seed_means(frame)
    drawn = set(means["schedule"]) if len(means) else set()
    for schedule, at in means.groupby("schedule", sort=True):
        first, _, then = schedule.partition(">")
        if then and first in drawn:  # before its first switch a switch is its first estimator's run: drawn already
            start = frame.loc[frame["schedule"] == schedule, "switch_step"].min()
            at = at[at["step"] >= start] if pd.notna(start) else at
        line = _line(schedule)
        ax.plot(at["step"], at["geomean"], label=schedule, **line)
        ax.fill_between(at["step"], at["low"], at["high"], color=line["color"], alpha=0.15, linewidth=0)
        curve = at.set_index("step")["geomean"]
        for _, run in frame[frame["schedule"] == schedule].groupby("seed"):
            _events(ax, run.sort_values("step"), schedule, "step", curve, line["color"])


def switch_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """Each switch ``A>B`` whose first estimator A also ran alone (its control, continued after converging),
    at every step from a seed's switch on where both runs of that seed were evaluated: the mean over seeds of
    log10(switch / A alone) of the test loss, with its Student-t 95% CI over the seeds (the unit), written
    as percent (``mean``, ``low``, ``high``; 100 (10^d - 1)) and n."""
    rows = []
    singles = set(frame["schedule"])
    for schedule in sorted(s for s in singles if ">" in s):
        first = schedule.partition(">")[0]
        if first not in singles:
            continue
        switch = frame[frame["schedule"] == schedule]
        alone = frame.loc[frame["schedule"] == first, ["seed", "step", "test_loss"]]
        pairs = switch.merge(alone, on=["seed", "step"], suffixes=("", "_alone"))
        pairs = pairs[(pairs["step"] >= pairs["switch_step"]) & (pairs["test_loss"] > 0)
                      & (pairs["test_loss_alone"] > 0)]
        if not len(pairs):
            continue
        stats = style.mean_ci(np.log10(pairs["test_loss"] / pairs["test_loss_alone"]).groupby(pairs["step"]))
        rows.append(pd.DataFrame({"schedule": schedule, "step": stats.index, "n": stats["n"].to_numpy(),
                                  "mean": 100 * (10 ** stats["mean"].to_numpy() - 1),
                                  "low": 100 * (10 ** (stats["mean"] - stats["half"]).to_numpy() - 1),
                                  "high": 100 * (10 ** (stats["mean"] + stats["half"]).to_numpy() - 1)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["schedule", "step", "n", "mean", "low", "high"])


def _differences(ax, frame: pd.DataFrame) -> None:
    """:func:`switch_differences` of one dim: a line per switch with its CI band, 0 (no difference) marked."""
    drawn = [0.0]
    for schedule, at in switch_differences(frame).groupby("schedule", sort=True):
        line = _line(schedule)
        band = at[at["n"] >= 2]  # one seed left is no mean over seeds
        ax.plot(band["step"], band["mean"], label=schedule, **line)
        ax.fill_between(band["step"], band["low"], band["high"], color=line["color"], alpha=0.15, linewidth=0)
        drawn += list(band["mean"]) + list(band["low"]) + list(band["high"])
    ax.axhline(0.0, color="#444444", linewidth=0.7, zorder=1)
    style.fit_limits(ax, drawn)


def _n_text(frame: pd.DataFrame) -> str:
    n = frame.groupby("schedule")["seed"].nunique()
    return f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"


def loss_vs_cost(curves: pd.DataFrame, dim: int):
    """One dim: validation loss against cost (top) and wall time (bottom), log x, every run."""
    at_dim = curves[curves["dim"] == dim]
    fig, axes = plt.subplots(2, 1, figsize=(style.WIDTH, 6.4), layout="constrained")
    for ax, x in zip(axes, ("cumulative_cost", "seconds")):
        shown = at_dim[(at_dim[x] > 0) & (at_dim["step"] > 0)]  # a log axis: from the first step on
        _runs(ax, shown, x)
        ax.set(xscale="log", yscale="log", xlabel=AXIS_LABELS["cost" if x == "cumulative_cost" else "seconds"],
               ylabel=TEST_LOSS)
        style.log_ticks(ax, "y")
        style.log_ticks(ax, "x")
    machine = at_dim["machine"].dropna().unique()
    style.legend_below(fig, *style.collect_legend(axes[:1]), title="schedule (A>B: a switch, dashed); "
                       "v switch, o converged")
    style.suptitle(fig, f"num_dim = {dim}: test loss against what it cost, a line per run ({_n_text(at_dim)} seeds "
                 "per schedule)" + (f"\nwall time on {machine[0]}" if len(machine) == 1 else ""))
    return fig


def loss_vs_step(curves: pd.DataFrame):
    """Test loss against step, a column per dim: each schedule's geometric mean over seeds with its 95% CI
    (top); each switch against its first estimator alone, continued, paired over seeds (below, where the
    study has both)."""
    dims = sorted(curves["dim"].unique())
    paired = len(switch_differences(curves)) > 0
    rows = 2 if paired else 1
    fig, grid = plt.subplots(rows, len(dims), figsize=(style.WIDTH, 2.9 * rows + 0.9), squeeze=False,
                             sharex="col", layout="constrained", height_ratios=[1.4, 1][:rows])
    for col, dim in enumerate(dims):
        ax = grid[0, col]
        _means(ax, curves[curves["dim"] == dim])
        ax.set(yscale="log", title=f"num_dim = {dim}", ylabel=TEST_LOSS if col == 0 else None)
        style.log_ticks(ax)
        if paired:
            _differences(grid[1, col], curves[curves["dim"] == dim])
            style.panel_title(grid[1, col], f"num_dim = {dim}: each switch A>B against A alone, continued",
                              len(dims))
            grid[1, col].set(ylabel="test loss vs A alone, %" if col == 0 else None)
        grid[-1, col].set(xlabel=AXIS_LABELS["step"])
    axes = list(grid.flat)
    style.legend_below(fig, *style.collect_legend(axes), title="schedule (A>B: a switch, dashed with B's marker, "
                       "from its first switch on: before it, A alone's curve;\nA>A: the restart, dotted); "
                       "v a seed's switch, o its convergence")
    below = ("; below: the switch's test loss relative to A alone's at the same step, paired over seeds "
             "(mean and 95% CI over seeds, from each seed's switch on)") if paired else ""
    style.suptitle(fig, "Training the student: test loss against step, geometric mean over seeds and its 95% CI "
                   f"(n = {_n_text(curves)} seeds;\nat each step over the seeds still running){below}")
    return fig


# a tuning run whose final loss exceeds this many times the median of its panel (every estimator and lr at
# that dim) blew up: drawn as diverged, like a non-finite one
BLOWUP = 100.0


def tuning_means(frame: pd.DataFrame, bound: float = np.inf) -> pd.DataFrame:
    """One estimator's tuning per lr: the mean final validation loss over its tuning seeds (``val_loss``),
    NaN where a seed diverged (not finite, flagged, or above ``bound``), as the tuning counts it (+inf),
    and whether one did (``diverged``)."""
    diverged = frame["diverged"].astype(bool) | ~np.isfinite(frame["val_loss"]) | (frame["val_loss"] > bound)
    means = frame["val_loss"].where(~diverged).groupby(frame["lr"]).mean()
    any_diverged = diverged.groupby(frame["lr"]).any()
    return pd.DataFrame({"val_loss": means.where(~any_diverged), "diverged": any_diverged}).sort_index()


def blowup_bound(at_dim: pd.DataFrame) -> float:
    finite = at_dim.loc[np.isfinite(at_dim["val_loss"]) & ~at_dim["diverged"].astype(bool), "val_loss"]
    return BLOWUP * float(finite.median()) if len(finite) else np.inf


def lr_tuning(tuning: pd.DataFrame):
    """The lr tuning: mean final validation loss over the tuning seeds against lr, a panel per dim, a line
    per estimator; the chosen lr starred, a diverged lr (:func:`tuning_means`, :data:`BLOWUP`) an x at the
    panel's upper edge (never a value)."""
    dims = sorted(tuning["dim"].unique())
    fig, axes = style.panel_grid(len(dims), panel_height=2.6)
    for ax, dim in zip(axes, dims):
        at_dim = tuning[tuning["dim"] == dim]
        values = []
        for name, frame in at_dim.groupby("estimator", sort=True):
            line = style.estimator_style(name)
            means = tuning_means(frame, blowup_bound(at_dim))
            ok = means["val_loss"].dropna()
            values += list(ok)
            ax.plot(ok.index, ok.values, label=f"{name} ({frame['optimizer'].iloc[0]})", **line)
            bad = means.index[means["diverged"]]
            style.at_edge(ax, bad, "top", None, colour=line["color"], marker="x")
            chosen = frame[frame["chosen"].astype(bool)]
            if len(chosen):
                lr = float(chosen["lr"].iloc[0])
                if np.isfinite(means["val_loss"].get(lr, np.nan)):
                    ax.scatter([lr], [means["val_loss"][lr]], marker="*", s=80, color=line["color"],
                               edgecolor="black", linewidth=0.5, zorder=7)
        ax.set(xscale="log", yscale="log", title=f"num_dim = {dim}", xlabel="learning rate (log scale)",
               ylabel="val. loss after the budget (MSE)")
        if values:
            ax.set_ylim(min(values) / 1.3, max(values) * 1.3)
        style.log_ticks(ax)
    style.legend_below(fig, *style.collect_legend(axes), title="estimator (optimiser); * chosen lr", cols=3)
    seeds = tuning["seed"].nunique() if "seed" in tuning else 1
    style.suptitle(fig, "Each estimator's learning rate, tuned on seeds disjoint from the reported ones: mean "
                   f"final validation loss over n = {seeds} tuning seed(s)\nx at the upper edge: a tuning run "
                   f"diverged at that lr (not finite, or above {BLOWUP:g} x the panel's median loss); no value drawn")
    return fig


def phase_probe(runs: pd.DataFrame, schedule: str):
    """The one-step probe along one training run: the run's own STE's cosine to CDG (solid) and to the
    smoothed gradient (dashed) at each phase, a row per stepped layer, a column per dim; the mean over
    seeds (each seed's batches averaged first) with its 95% CI."""
    own = runs[(runs["schedule"] == schedule) & (runs["estimator"] == schedule)]
    own = own.drop_duplicates(["phase", "step_layer", "dim", "seed", "batch"])
    layers = sorted(own["step_layer"].astype(str).unique(), key=lambda v: (v != "all", v.zfill(4)))
    dims = sorted(own["dim"].unique())
    phases = [p for p in PHASES if p in set(own["phase"])]
    names = {"init": "init", "converged": "conv."} | {p: f"{round(100 * PHASES[p])}%" for p in phases
                                                       if p not in ("init", "converged")}
    fig, axes = plt.subplots(len(layers), len(dims), figsize=(style.WIDTH, min(1.9 * len(layers) + 1.1,
                             style.MAX_HEIGHT)), squeeze=False, sharex=True, layout="constrained")
    colour = style.schedule_style(schedule)["color"]
    for row, layer in enumerate(layers):
        for col, dim in enumerate(dims):
            ax = axes[row, col]
            frame = own[(own["step_layer"].astype(str) == layer) & (own["dim"] == dim)]
            per_seed = frame.groupby(["phase", "seed"])[["cos_to_cdg", "cos_to_smoothed"]].mean()
            drawn = []
            for column, line, label in (("cos_to_cdg", "-", "to CDG"), ("cos_to_smoothed", "--",
                                                                         "to the smoothed gradient")):
                stats = style.mean_ci(per_seed[column].groupby(level=0)).reindex(phases)
                x = np.arange(len(phases))
                half = np.nan_to_num(stats["half"].to_numpy())
                ax.errorbar(x, stats["mean"], yerr=half, color=colour, linestyle=line, marker="o"
                            if line == "-" else "s", markersize=3, capsize=2, elinewidth=0.8, label=label,
                            markerfacecolor=colour if line == "-" else "white")
                drawn += list(stats["mean"] - half) + list(stats["mean"] + half)
            style.fit_limits(ax, drawn, bounds=(-1.02, 1.02))
            ax.set_xticks(range(len(phases)), [names[p] for p in phases])
            ax.set_title(f"dim {dim}, " + ("all layers" if layer == "all" else f"layer {layer}"))
            if col == 0:
                ax.set_ylabel("cosine")
            if row == len(layers) - 1:
                ax.set_xlabel("phase (of its converged step)")
    n = own.groupby(["phase", "step_layer", "dim"])["seed"].nunique()
    count = f"{n.min()}" if len(n) and n.min() == n.max() else (f"{n.min()}-{n.max()}" if len(n) else "0")
    style.legend_below(fig, *style.collect_legend([axes[0, 0]]), title=f"cosine of {schedule}'s gradient")
    style.suptitle(fig, f"The gradient of {schedule} along its own training; mean and 95% CI over seeds (n = {count}, "
                 "unit: seed,\nits batches averaged first), each phase at the step that seed reached it")
    return fig
