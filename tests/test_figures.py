"""The figures: printed size, one style per estimator, nothing drawn that misleads, and the HTML report
in a real browser.

The plotting functions are called on small tables built here and their Axes inspected (what is drawn
where, at what value); tests/test_workflow.py reads every PNG the tiny config writes (:func:`saved_size`)
and opens its HTML report in headless Chromium.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from bnnprobe import style
from bnnprobe.analysis import figures as probe_figures
from bnnprobe.estimators.registry import FAMILIES, STE_VARIANTS
from bnnprobe.io import save_figure
from bnnprobe.layerprobe import figures as layer_figures
from bnnprobe.training import figures as training_figures
from conftest import REPO


def saved_size(path: Path) -> tuple[float, float]:
    """(width in inches, dpi) of a saved PNG, the dpi read from its metadata."""
    with Image.open(path) as image:
        dpi = image.info.get("dpi")
        assert dpi, f"{path} records no dpi"
        return image.size[0] / float(dpi[0]), round(float(dpi[0]))  # pHYs stores dots per metre


def check_page(fig, tmp_path: Path) -> None:
    """``fig`` saved fits the page and has no text below the smallest size."""
    path = tmp_path / "figure.png"
    save_figure(fig, path)
    width, dpi = saved_size(path)
    assert width <= style.PAGE_WIDTH and dpi == style.DPI
    small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
             if t.get_visible() and t.get_text().strip() and t.get_fontsize() < style.MIN_FONT]
    assert not small, small


def edge_points(ax, edge: str) -> list:
    """The x of the points drawn at an axis' edge (not as values) by :func:`bnnprobe.style.at_edge`."""
    return [x for c in ax.collections if c.get_gid() == f"edge-{edge}" for x in c.get_offsets()[:, 0]]


def series(ax) -> dict:
    """label -> the data line of every labelled series an axis draws (errorbars' and plain lines')."""
    out = {c.get_label(): c.lines[0] for c in ax.containers if c.lines[0] is not None}
    out.update({line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")})
    return out


def drawn_y(ax) -> np.ndarray:
    """Every y value of the lines an axis draws as data (not the edge markers)."""
    values = [np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()]
    return np.concatenate(values) if values else np.array([])


# --- one style per estimator


def test_every_family_has_its_own_hue_and_cdg_is_always_black():
    names = {fam: fam if fam not in ("nes", "nes-coord", "fogzo", "stochastic-ste", "span", "smc", "metropolis")
             else f"{fam}-10" for fam in FAMILIES}
    names["ste"] = "ste-vanilla"
    colours = {fam: style.estimator_style(name)["color"] for fam, name in names.items()}
    assert len(set(colours.values())) == len(FAMILIES)
    assert style.estimator_style("cdg")["color"] == "#000000"
    assert style.estimator_style("cdg") == style.estimator_style("cdg")  # the same in every call


def test_members_of_a_family_differ_and_are_the_same_everywhere():
    members = [f"ste-{v}" for v in STE_VARIANTS] + ["nes-500", "nes-5000", "nes-50000"]
    looks = [(style.estimator_style(n)["color"], style.estimator_style(n)["linestyle"]) for n in members]
    assert len(set(looks)) == len(looks)
    assert len({style.estimator_style(f"ste-{v}")["color"] for v in STE_VARIANTS}) == len(STE_VARIANTS)
    # the default config's panels: every estimator one look, whichever panel it is in
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    names = sorted({n for panel in config["figures"]["panels"] for n in panel["estimators"]})
    looks = {n: (style.estimator_style(n)["color"], style.estimator_style(n)["linestyle"]) for n in names}
    assert len(set(looks.values())) == len(names)


def test_a_switch_takes_its_second_estimators_colour_dashed():
    assert style.schedule_style("ste-vanilla>cdg")["color"] == style.estimator_style("cdg")["color"]
    assert style.schedule_style("ste-vanilla>cdg")["linestyle"] == "--"
    assert style.schedule_style("ste-vanilla")["color"] == style.estimator_style("ste-vanilla")["color"]


def summary_rows(names, xs, x="lr", dim=4, mean=lambda name, v: 0.1 * v):
    rows = []
    for name in names:
        for v in xs:
            m = mean(name, v)
            rows.append({"estimator": name, "dim": dim, "lr": 0.1, x: v,
                         "loss_decrease_mean": m, "loss_decrease_ci95_low": m - 0.01,
                         "loss_decrease_ci95_high": m + 0.01, "n": 10, "ci_unit": "seed (its batches averaged)"})
    return pd.DataFrame(rows)


def test_the_same_estimator_has_the_same_colour_in_every_panel(tmp_path):
    summary = summary_rows(["cdg", "nes-10", "ste-vanilla", "smoothed"], [0.01, 0.1, 1.0])
    panels = [{"title": "a", "estimators": ["cdg", "nes-10", "ste-vanilla"]},
              {"title": "b", "estimators": ["cdg", "ste-vanilla", "smoothed"]}]
    fig = probe_figures.lr_curves(summary, panels, 4)
    colours = {}
    for ax in fig.axes[:2]:
        for label, line in series(ax).items():
            colours.setdefault(label, set()).add(line.get_color())
    assert all(len(c) == 1 for c in colours.values()) and colours["ste-vanilla"] == {"#009E73"}
    check_page(fig, tmp_path)


# --- nothing misleading


def test_a_non_positive_decrease_is_marked_at_the_edge_not_plotted(tmp_path):
    # at lr = 1 the step raises the loss: its mean is negative
    summary = summary_rows(["cdg", "nes-10"], [0.01, 0.1, 1.0], mean=lambda n, v: -0.5 if v == 1.0 else 0.1 * v)
    fig = probe_figures.lr_curves(summary, [{"title": "a", "estimators": ["cdg", "nes-10"]}], 4)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"  # not symlog: no tick labels piled up at 0
    y = drawn_y(ax)
    assert y.size and (y > 0).all()
    assert sorted(edge_points(ax, "bottom")) == [1.0, 1.0]
    low, high = ax.get_ylim()
    assert low > 0 and high < 1  # fitted to the positive values (0.001 ... 0.011)
    check_page(fig, tmp_path)


def tuning_table():
    rows = []
    for dim in (2, 3):
        # lr = 1: finite but blown up (1e18, not flagged by the tuning); 10: flagged; 100: not finite
        for lr, loss, diverged in ((0.01, 0.3, False), (0.03, 0.2, False), (0.1, 0.1, False), (1.0, 1e18, False),
                                   (10.0, 1e230, True), (100.0, np.inf, True)):
            rows.append({"estimator": "ste-vanilla", "after": None, "dim": dim, "optimizer": "sgd", "lr": lr,
                         "seed": 1000, "steps": 10, "val_loss": loss, "diverged": diverged, "chosen": lr == 0.1,
                         "at_edge": False})
    return pd.DataFrame(rows)


def test_diverged_tuning_runs_are_marked_never_plotted_as_values(tmp_path):
    fig = training_figures.lr_tuning(tuning_table())
    for ax in fig.axes[:2]:
        y = drawn_y(ax)
        assert np.isfinite(y).all() and y.max() < 1  # 1e230 is not a value on the axis
        assert sorted(edge_points(ax, "top")) == [1.0, 10.0, 100.0]
        assert ax.get_ylim()[1] < 1  # the axis fits the runs that did not diverge
        starred = [c for c in ax.collections if c.get_gid() is None]
        assert np.allclose(starred[0].get_offsets(), [[0.1, 0.1]])
    check_page(fig, tmp_path)


def test_a_cosine_axis_fits_the_data():
    rows = [{"estimator": name, "dim": dim, "seed": seed, "batch": 0, "cos_to_cdg": c + 0.01 * seed,
             "cos_to_smoothed": c} for name, c in (("nes-10", 0.3), ("ste-vanilla", 0.6))
            for dim in (2, 4) for seed in range(3)]
    rows += [{"estimator": "cdg", "dim": dim, "seed": s, "batch": 0, "cos_to_cdg": 1.0, "cos_to_smoothed": 0.9}
             for dim in (2, 4) for s in range(3)]
    fig = probe_figures.cosine_vs_dim(pd.DataFrame(rows))
    low, high = fig.axes[0].get_ylim()
    assert 0.2 < low < 0.3 and 0.6 < high < 0.7


def test_best_vs_dim_shows_the_percent_difference_to_cdg(tmp_path):
    best = summary_rows(["cdg", "nes-10", "ste-vanilla"], [2, 4, 8], x="dim",
                        mean=lambda n, d: {"cdg": 1.0, "nes-10": 0.95, "ste-vanilla": 1.1}[n] * d)
    best = best.assign(lr_undetermined=False, crossfit_n=10)
    for stat in ("mean", "ci95_low", "ci95_high"):
        best[f"crossfit_loss_decrease_{stat}"] = best[f"loss_decrease_{stat}"]
    fig = probe_figures.best_vs_dim(best)
    relative = fig.axes[1]
    assert np.allclose(series(relative)["nes-10"].get_ydata(), -5.0)
    assert np.allclose(series(relative)["ste-vanilla"].get_ydata(), 10.0)
    assert relative.get_ylim()[0] > -10 and relative.get_ylim()[1] < 15  # a few percent fill the axis
    # the error bars at one dim side by side, around it, in the same order at every dim; ticks at the dims
    x = {name: line.get_xdata() for name, line in series(fig.axes[0]).items()}
    assert x["cdg"][0] < x["nes-10"][0] < x["ste-vanilla"][0] and np.allclose(x["nes-10"], [2, 4, 8])
    assert np.allclose(np.asarray(x["ste-vanilla"]) / np.asarray(x["cdg"]), 2 ** style.DODGE_SPREAD)
    assert list(fig.axes[1].get_xticks()) == [2, 4, 8]
    check_page(fig, tmp_path)


def curves_table():
    rows = []
    for schedule, base in (("ste-vanilla", 1.0), ("ste-vanilla>cdg", 0.5)):
        for seed in range(4):
            for step in range(0, 30, 5):
                loss = base * (1 + 0.1 * seed) / (1 + step)
                rows.append({"schedule": schedule, "dim": 2, "seed": seed, "step": step, "test_loss": loss,
                             "switch_step": 10 if ">" in schedule else np.nan, "converged_step": 20,
                             "then_converged_step": 25, "cumulative_cost": 10 * step, "seconds": 0.1 * step,
                             "machine": "test"})
    return pd.DataFrame(rows)


def test_loss_vs_step_draws_each_schedules_mean_over_seeds_with_a_ci(tmp_path):
    curves = curves_table()
    fig = training_figures.loss_vs_step(curves)
    ax = fig.axes[0]
    lines = [line for line in ax.get_lines()]
    assert len(lines) == 2  # one per schedule, not one per seed
    at = curves[(curves["schedule"] == "ste-vanilla") & (curves["step"] == 5)]["test_loss"]
    mean = next(line for line in lines if line.get_label() == "ste-vanilla")
    assert np.isclose(mean.get_ydata()[1], np.exp(np.log(at).mean()))  # geometric mean over the seeds
    assert len(ax.collections) >= 2  # the CI bands
    switch = next(line for line in lines if line.get_label() == "ste-vanilla>cdg")
    assert min(switch.get_xdata()) == 10  # from its first switch on: before it, ste-vanilla's own curve
    check_page(fig, tmp_path)
    alone = training_figures.loss_vs_step(curves[curves["schedule"] == "ste-vanilla>cdg"])
    assert min(alone.axes[0].get_lines()[0].get_xdata()) == 0  # no first estimator alone: the whole run


def test_each_switch_is_drawn_against_its_first_estimator_alone_paired_over_seeds(tmp_path):
    curves = curves_table()
    ratio = {0: 0.9, 1: 0.8, 2: 0.95, 3: 0.7}  # switch / alone per seed, the same at every step
    switch = curves["schedule"] == "ste-vanilla>cdg"
    alone = curves[~switch].set_index(["seed", "step"])["test_loss"]
    curves.loc[switch, "test_loss"] = [alone[(r.seed, r.step)] * ratio[r.seed] for r in curves[switch].itertuples()]
    logs = np.log10(list(ratio.values()))
    t975_3 = 3.182446305284263  # Student-t 97.5% quantile, 3 degrees of freedom
    half = t975_3 * logs.std(ddof=1) / 2
    fig = training_figures.loss_vs_step(curves)
    lower = fig.axes[1]
    drawn = series(lower)["ste-vanilla>cdg"]
    assert list(drawn.get_xdata()) == [10, 15, 20, 25]  # from the switch on, where both ran
    assert np.allclose(drawn.get_ydata(), 100 * (10 ** logs.mean() - 1))
    band = training_figures.switch_differences(curves)
    assert np.allclose(band["low"], 100 * (10 ** (logs.mean() - half) - 1))
    assert np.allclose(band["high"], 100 * (10 ** (logs.mean() + half) - 1)) and (band["n"] == 4).all()
    low, high = lower.get_ylim()
    assert low < band["low"].min() and high > 0  # the band and no-difference both on the axis
    check_page(fig, tmp_path)
    # a switch keeps its second estimator's hue but not its look: markers, a dash; the restart dotted
    single, switched = style.schedule_style("ste-swishsign"), style.schedule_style("ste-vanilla>ste-swishsign")
    assert single["color"] == switched["color"] and single["marker"] is None and switched["marker"]
    assert switched["linestyle"] != single["linestyle"]
    assert style.schedule_style("ste-vanilla>ste-vanilla")["linestyle"] == ":"


def test_loss_vs_cost_labels_a_narrow_log_axis(tmp_path):
    curves = curves_table()
    curves["test_loss"] = 0.2 + curves["test_loss"] / 50  # less than one decade
    fig = training_figures.loss_vs_cost(curves, 2)
    fig.canvas.draw()
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels(minor=True) if t.get_text()]
    labels += [t.get_text() for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert len(labels) >= 2
    check_page(fig, tmp_path)


def test_phase_probe_draws_the_mean_over_seeds(tmp_path):
    rows = [{"schedule": "ste-vanilla", "estimator": "ste-vanilla", "phase": phase, "step_layer": layer, "dim": 2,
             "seed": seed, "batch": 0, "step": 10 * i, "cos_to_cdg": 0.5 + 0.1 * seed, "cos_to_smoothed": 0.4}
            for i, phase in enumerate(("init", "f25", "f50", "f75", "converged")) for layer in ("all", "1")
            for seed in range(3)]
    fig = training_figures.phase_probe(pd.DataFrame(rows), "ste-vanilla")
    ax = fig.axes[0]
    assert np.allclose(series(ax)["to CDG"].get_ydata(), 0.6)  # mean of 0.5, 0.6, 0.7
    assert ax.get_ylim()[0] > 0.2  # fitted, not -1..1
    check_page(fig, tmp_path)


def test_the_layer_probe_draws_a_panel_per_run_with_the_estimators_it_ran(tmp_path):
    summary = pd.concat([summary_rows(["cdg", "nes-10"], [0.01, 0.1]).assign(run_id=run_id)
                         for run_id in ("w2_wd0_bs128", "w2_wd0.0001_bs128", "w4_wd0_bs128")])
    panels = [{"title": "STE", "estimators": ["cdg", "ste-vanilla"]}]  # an estimator it did not run
    fig = layer_figures.layer_lr_curves(summary, panels)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["run w2 wd0", "run w2 wd0.0001", "run w4 wd0"]
    assert all(set(series(ax)) == {"cdg", "nes-10"} for ax in fig.axes[:3])
    check_page(fig, tmp_path)


# --- the tiny config's figures, and the report in a browser


def test_the_default_configs_figures_fit_the_page(tmp_path):
    """The laptop preset's panels (five groups, up to seven estimators each) and its six dims and four step
    layers: page wide, text at least 7 pt, one look per estimator."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    panels, dims = config["figures"]["panels"], config["probe"]["dims"]
    names = sorted({n for panel in panels for n in panel["estimators"]})
    summary = summary_rows(names, dims, x="dim", mean=lambda n, d: 0.01 * d * (1 + len(n) / 20))
    check_page(probe_figures.quick_check(summary, panels, 0.1), tmp_path)
    best = pd.concat([summary.assign(step_layer=layer) for layer in config["probe"]["step_layers"]])
    best = best.assign(reference_setting=True, lr_undetermined=False, crossfit_n=10)
    for stat in ("mean", "ci95_low", "ci95_high"):
        best[f"crossfit_loss_decrease_{stat}"] = best[f"loss_decrease_{stat}"]
    check_page(probe_figures.best_per_layer(best), tmp_path)
    check_page(probe_figures.best_vs_dim(best[best["step_layer"] == "all"]), tmp_path)


def test_eleven_layer_probe_runs_and_a_four_by_three_phase_probe_fit_the_page(tmp_path):
    run_ids = [f"w{w}_wd{wd}_bs128_lr0.002_ep30" for w in (16, 32, 64) for wd in ("0", "1e-05", "0.0001", "0.001")][:11]
    summary = pd.concat([summary_rows(["cdg", "nes-500", "ste-vanilla", "ste-swishsign"], [0.01, 0.1, 1.0])
                         .assign(run_id=run_id) for run_id in run_ids])
    check_page(layer_figures.layer_lr_curves(summary), tmp_path)
    rows = [{"schedule": "ste-vanilla", "estimator": "ste-vanilla", "phase": phase, "step_layer": layer, "dim": dim,
             "seed": seed, "batch": 0, "step": 10 * i, "cos_to_cdg": 0.5, "cos_to_smoothed": 0.4}
            for i, phase in enumerate(("init", "f25", "f50", "f75", "converged")) for layer in ("all", "1", "2", "3")
            for dim in (16, 32, 64) for seed in range(3)]
    check_page(training_figures.phase_probe(pd.DataFrame(rows), "ste-vanilla"), tmp_path)
