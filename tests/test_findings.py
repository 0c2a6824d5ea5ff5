"""The probe's findings per layer and along sigma: paired differences against hand computation."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.analysis.findings import findings_markdown, knob_comparisons, layer_comparisons


def _rows(estimator, sigma, step_layer, lr, values, reference=True, eps=math.nan):
    return [{"estimator": estimator, "sigma": sigma, "eps": eps, "step_layer": step_layer, "dim": 4, "seed": s,
             "batch": b, "lr": lr, "loss_decrease": v, "cos_to_smoothed": 0.5, "reference_setting": reference}
            for (s, b), v in zip([(0, 0), (0, 1), (1, 0), (1, 1)], values)]


def _best(runs):
    groups = runs.assign(sigma=runs["sigma"].fillna(-1), eps=runs["eps"].fillna(-1)).groupby(
        ["estimator", "sigma", "eps", "step_layer", "dim", "lr"])
    means = groups["loss_decrease"].mean().reset_index()
    best = means.loc[means.groupby(["estimator", "sigma", "eps", "step_layer", "dim"])["loss_decrease"].idxmax()]
    best = best.rename(columns={"lr": "best_lr"}).replace({"sigma": {-1: math.nan}, "eps": {-1: math.nan}})
    best["reference_setting"] = [not (e == "nes-2" and s == 0.1) for e, s in zip(best["estimator"], best["sigma"])]
    return best


def test_layer_shares_and_paired_differences_to_cdg():
    cdg_all, cdg_out = [1.0, 2.0, 3.0, 4.0], [0.5, 1.0, 1.5, 2.0]
    ste_all, ste_out = [0.5, 1.5, 2.0, 3.5], [0.5, 1.0, 1.5, 2.0]
    rows = (_rows("cdg", math.nan, "all", 0.1, cdg_all, eps=0.01) + _rows("cdg", math.nan, "3", 0.1, cdg_out, eps=0.01)
            # a worse lr that must not be picked
            + _rows("cdg", math.nan, "all", 1.0, [0.0] * 4, eps=0.01)
            + _rows("ste-vanilla", math.nan, "all", 1.0, ste_all) + _rows("ste-vanilla", math.nan, "3", 0.1, ste_out))
    runs = pd.DataFrame(rows)
    table = layer_comparisons(runs, _best(runs))
    ste = table[(table["estimator"] == "ste-vanilla")].set_index("step_layer")
    diff = np.subtract(ste_all, cdg_all)
    half = stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2
    assert ste.loc["all", "diff_mean"] == pytest.approx(diff.mean())
    assert ste.loc["all", "diff_ci95_low"] == pytest.approx(diff.mean() - half)
    assert ste.loc["all", "vs_cdg"] == "smaller"  # every pair is below: -0.5, -0.5, -1, -0.5
    assert ste.loc["3", "vs_cdg"] == "identical"  # the output layer: both exact
    assert ste.loc["3", "share_of_all_layers"] == pytest.approx(np.mean(ste_out) / np.mean(ste_all))
    cdg = table[table["estimator"] == "cdg"].set_index("step_layer")
    assert cdg.loc["3", "share_of_all_layers"] == pytest.approx(0.5)
    text = findings_markdown(table, knob_comparisons(runs, _best(runs)))
    assert "| 4 | cdg | 50% |" in text and "ste-vanilla smaller" in text and "1 identical" in text
    assert "No estimator runs at more than one sigma" in text


def test_sigma_against_the_reference_value():
    runs = pd.DataFrame(_rows("nes-2", 0.01, "all", 0.1, [1.0, 1.1, 0.9, 1.0])
                        + _rows("nes-2", 0.1, "all", 0.1, [1.5, 1.2, 1.4, 1.6], reference=False)
                        + _rows("cdg", math.nan, "all", 0.1, [1.0, 1.0, 1.0, 1.0], eps=0.01))
    table = knob_comparisons(runs, _best(runs))
    assert list(table["value"]) == [0.01, 0.1] and list(table["reference"]) == [True, False]
    other = table.iloc[1]
    diff = np.array([0.5, 0.1, 0.5, 0.6])
    assert other["diff_mean"] == pytest.approx(diff.mean())
    assert other["diff_ci95_high"] == pytest.approx(diff.mean() + stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2)
    assert other["vs_reference"] == "larger"
    text = findings_markdown(layer_comparisons(runs, _best(runs)), table)
    assert "nes-2, dim 4, against its reference sigma 0.01: sigma 0.1 larger" in text
