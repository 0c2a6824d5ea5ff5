"""The probes' figures (the MLP probe's, and the helpers the layer probe's use), drawn from the tidy
tables (never from raw gradients). The finetunes and the training study draw their own; every study's
figures share one look (:mod:`bnnprobe.style`: an estimator's colour and marker, the page's width).

Error bars are Student-t 95% confidence intervals over the independent units (``ci_unit``: the seed, its
batches averaged first). The best loss decrease of an estimator is its cross-fitted one (its lr chosen on
the other seeds, :mod:`bnnprobe.analysis.crossfit`); a point whose best lr is at the edge of the grid is
circled (a lower bound). Loss decreases span orders of magnitude: their axis is logarithmic, and a mean
that is not positive (the step raised the loss) is drawn as an open triangle at the axis' lower edge,
never as a number; a CI that reaches below 0 runs off the bottom of the axis.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import style  # noqa: E402

style.apply()

LOSS_DECREASE = "loss decrease L(w) - L(w - lr g) (MSE)"
DIM = "num_dim (width, log scale)"

CROSSFIT = {f"crossfit_loss_decrease_{stat}": f"loss_decrease_{stat}" for stat in ("mean", "ci95_low", "ci95_high")}


def crossfitted(best: pd.DataFrame) -> pd.DataFrame:
    """``best`` with its cross-fitted decrease (and CI) in the columns :func:`errorbar` draws."""
    best = best.drop(columns=list(CROSSFIT.values())).rename(columns=CROSSFIT)
    if "crossfit_n" in best:
        best = best.assign(n=best["crossfit_n"])
    return best


def ci_text(frame: pd.DataFrame) -> str:
    """"n = 10 seeds" or "n = 8-10 seeds": the number of independent units behind each point and their kind."""
    n = sorted(pd.to_numeric(frame["n"], errors="coerce").dropna().astype(int).unique()) if "n" in frame else []
    unit = str(frame["ci_unit"].dropna().iloc[0]) if "ci_unit" in frame and frame["ci_unit"].notna().any() else "seed"
    count = "?" if not n else (f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}")
    return f"mean and 95% CI, n = {count} per point, unit: {unit}"


def mark_undetermined(ax, best: pd.DataFrame, x: str) -> None:
    """Circle the points whose best lr is at the edge of the grid: their value is only a lower bound."""
    edge = best[best["lr_undetermined"].astype(bool)]
    if ax.get_yscale() == "log":  # a mean <= 0 is drawn at the axis' edge, not at a value
        edge = edge[edge["loss_decrease_mean"] > 0]
    label = "best lr at the grid's edge (a lower bound)"
    if len(edge):
        shown = label in ax.get_legend_handles_labels()[1]
        ax.scatter(edge[x], edge["loss_decrease_mean"], s=70, facecolors="none", edgecolors="red",
                   linewidths=1.0, label=None if shown else label, zorder=5)


def errorbar(ax, frame: pd.DataFrame, x: str, name: str, log: bool = True, **overrides):
    """One estimator's mean loss decrease against ``x`` with its 95% CI (a probe's summary rows), in the
    estimator's style (``overrides`` change it). On a log axis (``log``) only positive means are drawn as
    values; the others at the axis' lower edge (:func:`bnnprobe.style.at_edge`). Returns the drawn
    errorbar container (None if no point is positive)."""
    if frame.empty:  # not run here: no legend entry either
        return None
    frame = frame.sort_values(x)
    kwargs = {**style.estimator_style(name), **overrides}
    mean = frame["loss_decrease_mean"].to_numpy(dtype=float)
    low = frame["loss_decrease_ci95_low"].to_numpy(dtype=float)
    high = frame["loss_decrease_ci95_high"].to_numpy(dtype=float)
    shown = np.isfinite(mean) & ((mean > 0) if log else True)
    if log:
        ax.set_yscale("log")
        edge = frame[x].to_numpy()[np.isfinite(mean) & (mean <= 0)]
        style.at_edge(ax, edge, "bottom", None, colour=kwargs["color"], marker="v")
    if not shown.any():
        ax.plot([], [], label=name, **{k: v for k, v in kwargs.items() if k != "capsize"})  # in the legend
        return None
    m = mean[shown]
    yerr = np.vstack([np.nan_to_num(m - low[shown]), np.nan_to_num(high[shown] - m)])
    if log:  # a CI reaching below 0 runs to the bottom of the axis
        yerr[0] = np.where(low[shown] > 0, yerr[0], m * (1 - 1e-9))
    return ax.errorbar(frame[x].to_numpy()[shown], m, yerr=yerr, label=name, capsize=2, elinewidth=0.8,
                       **kwargs)


def loss_axis(ax, frame: pd.DataFrame) -> None:
    """A log y axis fitted to the positive means and CI bounds of ``frame`` (a CI that reaches below 0 runs
    off the bottom), with numbers on it wherever it spans less than two decades."""
    values = frame[["loss_decrease_mean", "loss_decrease_ci95_low", "loss_decrease_ci95_high"]].to_numpy(float)
    means = values[:, 0]
    positive = values[np.isfinite(values) & (values > 0)]
    ax.set_yscale("log")
    if positive.size:
        low = max(positive.min(), means[np.isfinite(means) & (means > 0)].min() / 1e3) if (means > 0).any() \
            else positive.min()
        ax.set_ylim(low / 1.6, positive.max() * 1.6)
    style.log_ticks(ax)


def _edge_note(frames) -> str:
    if any((f["loss_decrease_mean"] <= 0).any() for f in frames):
        return "\nopen triangles at the lower edge: mean <= 0 (the step raised the loss)"
    return ""


def _panel_figure(frame: pd.DataFrame, panels: list[dict], x: str, xlabel: str, title: str, log_base: int = 10):
    """One panel per estimator group: loss decrease vs ``x`` with 95% CI error bars; one legend."""
    fig, axes = style.panel_grid(len(panels))
    for ax, panel in zip(axes, panels):
        shown = frame[frame["estimator"].isin(panel["estimators"])]
        for name in panel["estimators"]:
            errorbar(ax, shown[shown["estimator"] == name], x, name)
        ax.set_xscale("log", base=log_base)
        if x == "dim":
            style.value_ticks(ax, frame["dim"].unique())
        loss_axis(ax, shown)
        style.panel_title(ax, panel["title"], min(len(panels), 2 if len(panels) <= 4 else 3))
        ax.set_xlabel(xlabel)
    for ax in axes[::min(len(axes), 2 if len(axes) <= 4 else 3)]:
        ax.set_ylabel("loss decrease (MSE)\nL(w) - L(w - lr g)")
    style.legend_below(fig, *style.collect_legend(axes), title="estimator (CDG: the reference, black)")
    style.suptitle(fig, title + _edge_note([frame]))
    return fig


def quick_check(summary: pd.DataFrame, panels: list[dict], lr: float):
    """The log's quick check: loss decrease at one lr vs dim, one panel per estimator group."""
    at = summary[np.isclose(summary["lr"], lr)]
    return _panel_figure(at, panels, "dim", DIM, f"Quick check: one step at lr = {lr:g} (the same lr for every "
                         f"estimator); {ci_text(at)}", log_base=2)


def lr_curves(summary: pd.DataFrame, panels: list[dict], dim: int):
    """Loss decrease vs lr for one dim, one panel per estimator group (coarse and fine grids together)."""
    at = summary[summary["dim"] == dim]
    return _panel_figure(at, panels, "lr", "learning rate lr (log scale)",
                         f"num_dim = {dim}: loss decrease of one step against lr (coarse and fine grids); "
                         f"{ci_text(at)}")


def percent_to_reference(best: pd.DataFrame, x: str = "dim") -> pd.DataFrame:
    """Each estimator's mean best decrease relative to CDG's at the same ``x``: 100 (m - m_CDG) / m_CDG
    (column ``percent``); empty without CDG rows."""
    ref = best[best["estimator"] == style.REFERENCE].groupby(x)["loss_decrease_mean"].mean()
    others = best[best["estimator"] != style.REFERENCE]
    ref_at = others[x].map(ref)
    return others.assign(percent=100 * (others["loss_decrease_mean"] - ref_at) / ref_at.abs())[
        lambda f: np.isfinite(f["percent"])]


def best_vs_dim(best: pd.DataFrame):
    """Best loss decrease (each estimator's lr chosen out of sample) vs dim (top), and each estimator's
    mean relative to CDG's in percent (bottom: the gaps of a few percent a log axis hides)."""
    best = crossfitted(best)
    fig, (ax, rel) = plt.subplots(2, 1, figsize=(style.WIDTH, 6.8), sharex=True, layout="constrained",
                                  height_ratios=[3, 2])
    side = style.dodge(best, "dim", sorted(best["estimator"].unique()))  # the error bars side by side
    for name, frame in side.groupby("estimator", sort=True):
        errorbar(ax, frame, "dim", name)
    mark_undetermined(ax, side, "dim")
    ax.set_xscale("log", base=2)
    loss_axis(ax, best)
    ax.set(ylabel="best " + LOSS_DECREASE)
    percent = percent_to_reference(best)
    for name, frame in percent.groupby("estimator", sort=True):
        frame = frame.sort_values("dim")
        rel.plot(frame["dim"], frame["percent"], label=name, **style.estimator_style(name))
    rel.axhline(0, **{**style.estimator_style(style.REFERENCE), "marker": None, "linewidth": 1.2})
    style.fit_limits(rel, np.append(percent["percent"].to_numpy(), 0.0))
    rel.set(xlabel=DIM, ylabel="relative to CDG's mean (%)\n100 (m - m_CDG) / m_CDG")
    style.value_ticks(rel, best["dim"].unique())
    style.legend_below(fig, *style.collect_legend([ax]), title="estimator (CDG: the reference, black)")
    style.suptitle(fig, "Best loss decrease against num_dim, lr chosen on the other seeds per estimator and dim; "
                 f"{ci_text(best)}\nbottom: difference of the means to CDG's (no CI)" + _edge_note([best]))
    return fig


def _cosine_axis(ax, frame: pd.DataFrame, column: str, x: str, exclude: str) -> list:
    """Mean cosine and its 95% CI over seeds (each seed's batches averaged first) per ``x``, a line per
    estimator (not ``exclude``, the reference itself). Returns every CI bound drawn."""
    drawn = []
    shown = frame[frame["estimator"] != exclude]
    order = sorted(shown["estimator"].unique())
    for name, by_name in shown.groupby("estimator", sort=True):
        per_seed = by_name.groupby([x, "seed"])[column].mean()
        stats = style.mean_ci(per_seed.groupby(level=0))
        if x == "dim":  # the error bars side by side (:func:`bnnprobe.style.dodge`)
            stats.index = style.dodge(pd.DataFrame({"dim": stats.index, "estimator": name}), "dim", order)["dim"]
        if stats["mean"].notna().any():
            half = np.nan_to_num(stats["half"].to_numpy())
            ax.errorbar(stats.index, stats["mean"], yerr=half, label=name, capsize=2, elinewidth=0.8,
                        **style.estimator_style(name))
            drawn += list(stats["mean"] - half) + list(stats["mean"] + half)
    return drawn


def cosine_axis_limits(ax, drawn) -> None:
    """Cosine axis fitted to the CI bounds drawn, within [-1, 1]; the 0 line only where the range spans it."""
    style.fit_limits(ax, drawn, bounds=(-1.02, 1.02))
    low, high = ax.get_ylim()
    if low < 0 < high:
        ax.axhline(0, color="grey", linewidth=0.6)


def cosine_vs_dim(runs: pd.DataFrame):
    """Cosine similarity of each estimator's gradient to CDG's and to the exact smoothed coordinate
    gradient's on the same batch, vs dim."""
    per_gradient = runs.drop_duplicates(["estimator", "dim", "seed", "batch"])
    fig, axes = style.panel_grid(2, panel_height=3.2)
    for ax, column, reference, label in ((axes[0], "cos_to_cdg", "cdg", "CDG"),
                                         (axes[1], "cos_to_smoothed", "smoothed", "the smoothed gradient")):
        cosine_axis_limits(ax, _cosine_axis(ax, per_gradient, column, "dim", reference))
        ax.set_xscale("log", base=2)
        style.value_ticks(ax, per_gradient["dim"].unique())
        ax.set(title=f"cosine to {label}", xlabel=DIM, ylabel=f"cos(g, g_{reference})")
    n = per_gradient.groupby(["estimator", "dim"])["seed"].nunique()
    count = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    style.legend_below(fig, *style.collect_legend(axes), title="estimator")
    style.suptitle(fig, "Agreement of each estimator's gradient with the references on the same batch; mean and "
                 f"95% CI, n = {count} per point (unit: seed, its batches averaged first)")
    return fig


def _layer_order(values) -> list[str]:
    return sorted({str(v) for v in values}, key=lambda v: (v != "all", v.zfill(4)))


def best_per_layer(best: pd.DataFrame):
    """Best loss decrease vs dim when a step moves one layer only: a panel per step layer (and all)."""
    best = crossfitted(best[best["reference_setting"].astype(bool)])
    layers = _layer_order(best["step_layer"])
    fig, axes = style.panel_grid(len(layers))
    order = sorted(best["estimator"].unique())
    for ax, layer in zip(axes, layers):
        at = style.dodge(best[best["step_layer"].astype(str) == layer], "dim", order)  # error bars side by side
        for name, frame in at.groupby("estimator", sort=True):
            errorbar(ax, frame, "dim", name)
        mark_undetermined(ax, at, "dim")
        ax.set_xscale("log", base=2)
        style.value_ticks(ax, best["dim"].unique())
        loss_axis(ax, at)
        ax.set(title="all layers" if layer == "all" else f"layer {layer} only"
               + (" (linear output)" if layer == layers[-1] and layer != "all" else ""), xlabel=DIM)
    for ax in axes[::min(len(axes), 2 if len(axes) <= 4 else 3)]:
        ax.set_ylabel("best loss decrease (MSE)\nL(w) - L(w - lr g)")
    style.legend_below(fig, *style.collect_legend(axes), title="estimator (CDG: the reference, black)")
    style.suptitle(fig, "Which layer carries the loss decrease: one step of one layer's coordinates, lr chosen on the "
                 f"other seeds\nper estimator, layer and dim; {ci_text(best)}" + _edge_note([best]))
    return fig


def knob_label(best: pd.DataFrame, swept: list[str]) -> str:
    """The x label of the sigma/eps figure: the knob of the estimators actually drawn."""
    eps = [n for n in swept if best.loc[best["estimator"] == n, "sigma"].isna().all()]
    sigma = [n for n in swept if n not in eps]
    parts = (["sigma"] if sigma else []) + ([f"eps ({', '.join(eps)})"] if eps else [])
    return " or ".join(parts) + " (log scale)"


def sigma_eps(best: pd.DataFrame, runs: pd.DataFrame):
    """Best loss decrease (top rows) and cosine to the smoothed coordinate gradient (bottom rows) vs the
    knob value (sigma, or eps), a panel per dim, a line per estimator with more than one value."""
    best = crossfitted(best[best["step_layer"].astype(str) == "all"])
    runs = runs[runs["step_layer"].astype(str) == "all"]
    best = best.assign(knob=best["sigma"].where(best["sigma"].notna(), best["eps"]))
    counts = best.groupby("estimator")["knob"].nunique()
    swept = sorted(counts[counts > 1].index)
    dims = sorted(best["dim"].unique())
    cols = min(3, len(dims))
    rows = -(-len(dims) // cols)
    if not swept:
        fig, ax = plt.subplots(figsize=(style.WIDTH, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No estimator runs at more than one sigma or eps in this config (list values in\n"
                "nes.sigma, guided_es.sigma, smoothed.sigma or cdg.eps)", ha="center", va="center")
        return fig
    fig, grid = plt.subplots(2 * rows, cols, figsize=(style.WIDTH, min(2.0 * 2 * rows + 1.0, style.MAX_HEIGHT)),
                             squeeze=False, layout="constrained")
    per_gradient = runs[runs["estimator"].isin(swept)].drop_duplicates(
        ["estimator", "sigma", "eps", "dim", "seed", "batch"])
    per_gradient = per_gradient.assign(knob=per_gradient["sigma"].where(per_gradient["sigma"].notna(),
                                                                         per_gradient["eps"]))
    xlabel = knob_label(best, swept)
    used = []
    for i, dim in enumerate(dims):
        top, bottom = grid[i // cols][i % cols], grid[rows + i // cols][i % cols]
        used += [top, bottom]
        shown = best[(best["dim"] == dim) & best["estimator"].isin(swept)]
        for name, frame in shown.groupby("estimator", sort=True):
            errorbar(top, frame, "knob", name)
        loss_axis(top, shown)
        top.set(xscale="log", title=f"best decrease, num_dim = {dim}")
        cosine_axis_limits(bottom, _cosine_axis(bottom, per_gradient[per_gradient["dim"] == dim],
                                                "cos_to_smoothed", "knob", "smoothed"))
        bottom.set(xscale="log", title=f"cosine to the smoothed gradient, num_dim = {dim}")
        if i // cols == rows - 1:
            bottom.set_xlabel(xlabel)
        if i % cols == 0:
            top.set_ylabel("best " + LOSS_DECREASE.split(" (")[0])
            bottom.set_ylabel("cos(g, g_smoothed)")
    for ax in grid.flat:
        if ax not in used:
            ax.set_visible(False)
    style.legend_below(fig, *style.collect_legend(used), title="estimator")
    style.suptitle(fig, "Sigma and eps as study axes: one step with all coordinates, lr chosen on the other seeds; "
                 f"{ci_text(best)}\nloss decrease in MSE; cosine at g's sigma (CDG: at the reference sigma)"
                 + _edge_note([best]))
    return fig
