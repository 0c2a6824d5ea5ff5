"""The probes' figures (the MLP probe's, and the helpers the layer probe's use), drawn from the tidy
tables (never from raw gradients). The finetunes and the training study draw their own.

Error bars are Student-t 95% confidence intervals over the independent units (``ci_unit``: the seed, its
batches averaged first). The best loss decrease of an estimator is its cross-fitted one (its lr chosen on
the other seeds, :mod:`bnnprobe.analysis.crossfit`); a point whose best lr is at the edge of the grid is
circled (a lower bound). Loss decreases span orders of magnitude: their axis is logarithmic, or
symmetric-log (linear within 1% of the largest magnitude) where some go negative at large lr.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

LOSS_DECREASE = "loss decrease L(w) - L(w - lr g) (MSE units)"


CROSSFIT = {f"crossfit_loss_decrease_{stat}": f"loss_decrease_{stat}" for stat in ("mean", "ci95_low", "ci95_high")}


def crossfitted(best: pd.DataFrame) -> pd.DataFrame:
    """``best`` with its cross-fitted decrease (and CI) in the columns :func:`errorbar` draws."""
    return best.drop(columns=list(CROSSFIT.values())).rename(columns=CROSSFIT)


def mark_undetermined(ax, best: pd.DataFrame, x: str) -> None:
    """Circle the points whose best lr is at the edge of the grid: their value is only a lower bound."""
    edge = best[best["lr_undetermined"].astype(bool)]
    label = "best lr at the grid's edge (a lower bound)"
    if len(edge):
        shown = label in ax.get_legend_handles_labels()[1]
        ax.scatter(edge[x], edge["loss_decrease_mean"], s=160, facecolors="none", edgecolors="red",
                   linewidths=1.2, label=None if shown else label, zorder=5)


def _style(name: str) -> dict:
    if name == "cdg":
        return {"color": "black", "linestyle": "-", "marker": "o", "linewidth": 2}
    return {"marker": "o", "linewidth": 1.2}


def errorbar(ax, frame: pd.DataFrame, x: str, name: str, **style) -> None:
    """One estimator's mean loss decrease against ``x`` with its 95% CI (a probe's summary rows);
    ``style`` overrides the estimator's line style."""
    frame = frame.sort_values(x)
    mean = frame["loss_decrease_mean"].to_numpy()
    low, high = frame["loss_decrease_ci95_low"].to_numpy(), frame["loss_decrease_ci95_high"].to_numpy()
    yerr = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    ax.errorbar(frame[x], mean, yerr=yerr, label=name, capsize=3, **{**_style(name), **style})


def loss_axis(ax, values: np.ndarray) -> None:
    """Log y where every value is positive, else symmetric-log (linear within 1% of the largest)."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and (finite > 0).all():
        ax.set_yscale("log")
        return
    top = np.abs(finite).max() if finite.size else 1.0
    ax.set_yscale("symlog", linthresh=max(top * 1e-2, 1e-12))
    ax.axhline(0, color="grey", linewidth=0.6)


def _panel_grid(n: int, width: float = 5.0, height: float = 4.2):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, layout="constrained")
    return fig, axes[0]


def _panel_figure(frame: pd.DataFrame, panels: list[dict], x: str, xlabel: str, title: str, log_base: int = 10):
    """One panel per estimator group: loss decrease vs ``x`` with 95% CI error bars."""
    fig, axes = _panel_grid(len(panels))
    for ax, panel in zip(axes, panels):
        shown = frame[frame["estimator"].isin(panel["estimators"])]
        for name in panel["estimators"]:
            errorbar(ax, shown[shown["estimator"] == name], x, name)
        ax.set_xscale("log", base=log_base)
        loss_axis(ax, shown["loss_decrease_mean"].to_numpy())
        ax.set(title=panel["title"], xlabel=xlabel)
        ax.legend(fontsize=8)
    axes[0].set_ylabel(LOSS_DECREASE)
    fig.suptitle(title)
    return fig


def quick_check(summary: pd.DataFrame, panels: list[dict], lr: float):
    """The log's quick check: loss decrease at one lr vs dim, one panel per estimator group."""
    return _panel_figure(summary[np.isclose(summary["lr"], lr)], panels, "dim", "num_dim (neurons per layer)",
                         f"Quick check: one step at lr = {lr:g}, mean and 95% CI over seeds", log_base=2)


def lr_curves(summary: pd.DataFrame, panels: list[dict], dim: int):
    """Loss decrease vs lr for one dim, one panel per estimator group (coarse and fine grids together)."""
    return _panel_figure(summary[summary["dim"] == dim], panels, "lr", "learning rate lr (log scale)",
                         f"num_dim = {dim}: loss decrease vs lr, mean and 95% CI over seeds")


def best_vs_dim(best: pd.DataFrame):
    """Best loss decrease (each estimator's lr chosen out of sample) vs dim."""
    best = crossfitted(best)
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    for name, frame in best.groupby("estimator", sort=True):
        errorbar(ax, frame, "dim", name)
    mark_undetermined(ax, best, "dim")
    ax.set_xscale("log", base=2)
    loss_axis(ax, best["loss_decrease_mean"].to_numpy())
    ax.set(title="Best loss decrease vs num_dim (lr chosen on the other seeds)", xlabel="num_dim (neurons per layer)",
           ylabel=LOSS_DECREASE + " at the best lr")
    ax.legend(fontsize=8)
    return fig


def _cosine_axis(ax, frame: pd.DataFrame, column: str, x: str, exclude: str) -> None:
    """Mean cosine and its 95% CI over seeds (each seed's batches averaged first) per ``x``, a line per
    estimator (not ``exclude``, the reference itself)."""
    from .stats import ci95_halfwidth

    for name, by_name in frame[frame["estimator"] != exclude].groupby("estimator", sort=True):
        per_seed = by_name.groupby([x, "seed"])[column].mean()
        stats = per_seed.groupby(level=0).agg(["mean", "std", "count"])
        if stats["mean"].notna().any():
            half = np.nan_to_num(ci95_halfwidth(stats["std"] / np.sqrt(stats["count"]), stats["count"]))
            ax.errorbar(stats.index, stats["mean"], yerr=half, label=name, capsize=3, **_style(name))
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.set(ylim=(-1.05, 1.05))


def cosine_vs_dim(runs: pd.DataFrame):
    """Cosine similarity of each estimator's gradient to CDG's and to the exact smoothed coordinate
    gradient's on the same batch, vs dim."""
    per_gradient = runs.drop_duplicates(["estimator", "dim", "seed", "batch"])
    fig, axes = _panel_grid(2, width=6.0)
    for ax, column, reference, label in ((axes[0], "cos_to_cdg", "cdg", "CDG"),
                                         (axes[1], "cos_to_smoothed", "smoothed", "the smoothed coordinate gradient")):
        _cosine_axis(ax, per_gradient, column, "dim", reference)
        ax.set_xscale("log", base=2)
        ax.set(title=f"Agreement with {label}", xlabel="num_dim (neurons per layer)",
               ylabel=f"cos(g, g_{reference}) (mean, 95% CI over seeds)")
        ax.legend(fontsize=8)
    return fig


def best_per_layer(best: pd.DataFrame):
    """Best loss decrease vs dim when a step moves one layer only: a panel per step layer (and all)."""
    best = crossfitted(best[best["reference_setting"].astype(bool)])
    layers = sorted(best["step_layer"].astype(str).unique(), key=lambda v: (v != "all", v.zfill(4)))
    fig, axes = _panel_grid(len(layers), width=4.6)
    for ax, layer in zip(axes, layers):
        at = best[best["step_layer"].astype(str) == layer]
        for name, frame in at.groupby("estimator", sort=True):
            errorbar(ax, frame, "dim", name)
        mark_undetermined(ax, at, "dim")
        ax.set_xscale("log", base=2)
        loss_axis(ax, at["loss_decrease_mean"].to_numpy())
        ax.set(title="all layers" if layer == "all" else f"layer {layer} only"
               + (" (linear output)" if layer == layers[-1] and layer != "all" else ""),
               xlabel="num_dim (neurons per layer)")
    axes[0].set_ylabel(LOSS_DECREASE + " at the best lr")
    axes[-1].legend(fontsize=7)
    fig.suptitle("Which layer carries the loss decrease: one step of one layer's coordinates, lr chosen on the "
                 "other seeds per estimator, layer and dim (mean, 95% CI over seeds)")
    return fig


def sigma_eps(best: pd.DataFrame, runs: pd.DataFrame):
    """Best loss decrease (top) and cosine to the smoothed coordinate gradient (bottom) vs the knob
    value (sigma; eps for CDG), a column per dim, a line per estimator with more than one value."""
    best = crossfitted(best[best["step_layer"].astype(str) == "all"])
    runs = runs[runs["step_layer"].astype(str) == "all"]
    best = best.assign(knob=best["sigma"].where(best["sigma"].notna(), best["eps"]))
    counts = best.groupby("estimator")["knob"].nunique()
    swept = sorted(counts[counts > 1].index)
    dims = sorted(best["dim"].unique())
    fig, axes = plt.subplots(2, len(dims), figsize=(4.2 * len(dims), 7.5), squeeze=False, layout="constrained")
    if not swept:
        fig.suptitle("No estimator runs at more than one sigma or eps in this config (list values in "
                     "nes.sigma, guided_es.sigma, smoothed.sigma or cdg.eps)")
        return fig
    per_gradient = runs[runs["estimator"].isin(swept)].drop_duplicates(
        ["estimator", "sigma", "eps", "dim", "seed", "batch"])
    per_gradient = per_gradient.assign(knob=per_gradient["sigma"].where(per_gradient["sigma"].notna(),
                                                                         per_gradient["eps"]))
    for column, dim in enumerate(dims):
        top, bottom = axes[0][column], axes[1][column]
        shown = best[(best["dim"] == dim) & best["estimator"].isin(swept)]
        for name, frame in shown.groupby("estimator", sort=True):
            errorbar(top, frame, "knob", name)
        loss_axis(top, shown["loss_decrease_mean"].to_numpy())
        top.set(xscale="log", title=f"num_dim = {dim}", xlabel="sigma (eps for CDG)")
        _cosine_axis(bottom, per_gradient[per_gradient["dim"] == dim], "cos_to_smoothed", "knob", "smoothed")
        bottom.set(xscale="log", xlabel="sigma (eps for CDG)")
    axes[0][0].set_ylabel("best loss decrease\nL(w) - L(w - lr g) (MSE units)")
    axes[1][0].set_ylabel("cos(g, smoothed gradient)\n(at g's sigma; CDG: the reference one)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("Sigma and eps as study axes: one step with all coordinates, lr chosen on the other seeds "
                 "(mean, 95% CI over seeds)")
    return fig
