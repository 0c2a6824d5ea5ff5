"""The probe's findings per layer and along sigma: paired differences over seeds, each estimator at its
out-of-sample lr, against hand computation; no verdict at the lr grid's edge."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.analysis.findings import findings_markdown, knob_comparisons, layer_comparisons
from bnnprobe.analysis.tables import probe_tables
from bnnprobe.probes import PROBES

LRS = [0.01, 0.1, 1.0]
SEEDS = [0, 1, 2, 3]


def _rows(estimator, step_layer, curve, per_seed, sigma=math.nan, eps=math.nan, batches=2):
    """Sweep rows: at each lr the decrease ``curve[lr] * per_seed[seed]`` (the same for every batch of a
    seed except a +-0.01 batch effect that averages out)."""
    rows = []
    for seed, scale in zip(SEEDS, per_seed):
        for batch in range(batches):
            for lr, value in zip(LRS, curve):
                rows.append({"estimator": estimator, "sigma": sigma, "eps": eps, "step_layer": step_layer, "dim": 4,
                             "seed": seed, "batch": batch, "lr": lr, "grid": "coarse", "loss_before": 1.0,
                             "loss_after": 1.0, "loss_decrease": value * scale + (0.01 if batch else -0.01),
                             "grad_norm": 2.0, "cos_to_cdg": 0.5, "cos_to_smoothed": 0.25, "smoothed_sigma": 0.01,
                             "seconds": 0.1, "n_loss_evals": 1})
    return rows


def _tables(rows, reference_values=None):
    runs, _, best, fold_rows = probe_tables([pd.DataFrame(rows)], PROBES["mlp"], reference_values or {})
    return fold_rows, best


PEAKED = [0.2, 1.0, 0.1]  # best at lr 0.1, inside the grid


def test_layer_shares_and_paired_differences_to_cdg_over_seeds():
    cdg_all, ste_all = [1.0, 2.0, 3.0, 4.0], [0.5, 1.5, 2.0, 3.5]
    rows = (_rows("cdg", "all", PEAKED, cdg_all, eps=0.01) + _rows("cdg", "3", PEAKED, [0.5, 1.0, 1.5, 2.0], eps=0.01)
            + _rows("ste-vanilla", "all", PEAKED, ste_all) + _rows("ste-vanilla", "3", PEAKED, [0.5, 1.0, 1.5, 2.0]))
    fold_rows, best = _tables(rows, {"cdg": 0.01})
    table = layer_comparisons(fold_rows, best)
    ste = table[(table["estimator"] == "ste-vanilla")].set_index("step_layer")
    diff = np.subtract(ste_all, cdg_all)  # one difference per seed, its batches averaged: the batch effect cancels
    half = stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2
    assert ste.loc["all", "n_pairs"] == 4
    assert ste.loc["all", "diff_mean"] == pytest.approx(diff.mean())
    assert ste.loc["all", "diff_ci95_low"] == pytest.approx(diff.mean() - half)
    assert ste.loc["all", "vs_cdg"] == "smaller"  # every seed is below: -0.5, -0.5, -1, -0.5
    assert ste.loc["3", "vs_cdg"] == "identical"  # the output layer: both exact
    assert ste.loc["3", "share_of_all_layers"] == pytest.approx(np.mean([0.5, 1.0, 1.5, 2.0]) / np.mean(ste_all))
    assert ste.loc["all", "grad_norm_mean"] == 2.0
    assert ste.loc["all", "winner_bias"] == 0.0  # exactly: not summation-order noise
    text = findings_markdown(table, knob_comparisons(fold_rows, best))
    assert "| 4 | cdg | 50% |" in text and "ste-vanilla smaller" in text and "1 identical" in text
    assert "No estimator runs at more than one sigma" in text
    assert "| 1 | cdg |" in text and "| 2 | ste-vanilla |" in text  # the ranking, with its gradient norms


def test_a_best_lr_at_the_grids_edge_gives_no_verdict():
    rising = [0.01, 0.1, 1.0]  # linear in lr: the largest is the best, the optimum may lie beyond the grid
    rows = _rows("cdg", "all", PEAKED, [1.0, 2.0, 3.0, 4.0], eps=0.01) + _rows("nes-10", "all", rising,
                                                                               [5.0, 6.0, 7.0, 8.0], sigma=0.01)
    fold_rows, best = _tables(rows, {"cdg": 0.01, "nes-10": 0.01})
    table = layer_comparisons(fold_rows, best).set_index("estimator")
    assert table.loc["nes-10", "diff_mean"] > 0  # far larger, and still no verdict
    assert table.loc["nes-10", "vs_cdg"] == "undetermined: the best lr of nes-10 is at the edge of the grid"
    text = findings_markdown(layer_comparisons(fold_rows, best), knob_comparisons(fold_rows, best))
    assert "1 undetermined (an lr at the grid's edge)" in text
    assert "| - | nes-10 |" in text and "edge; near-linear" in text


def test_sigma_against_the_reference_value():
    rows = (_rows("nes-2", "all", PEAKED, [1.0, 1.1, 0.9, 1.0], sigma=0.01)
            + _rows("nes-2", "all", PEAKED, [1.5, 1.2, 1.4, 1.6], sigma=0.1)
            + _rows("cdg", "all", PEAKED, [1.0, 1.0, 1.0, 1.0], eps=0.01))
    fold_rows, best = _tables(rows, {"cdg": 0.01, "nes-2": 0.01})
    table = knob_comparisons(fold_rows, best)
    assert list(table["value"]) == [0.01, 0.1] and list(table["reference"]) == [True, False]
    other = table.iloc[1]
    diff = np.array([0.5, 0.1, 0.5, 0.6])
    assert other["diff_mean"] == pytest.approx(diff.mean())
    assert other["diff_ci95_high"] == pytest.approx(diff.mean() + stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2)
    assert other["vs_reference"] == "larger"
    text = findings_markdown(layer_comparisons(fold_rows, best), table)
    assert "nes-2, dim 4, against its reference sigma 0.01: sigma 0.1 larger" in text
