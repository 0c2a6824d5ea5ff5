"""Learning rates chosen out of sample: the cross-fitted tables against a plain loop over seeds."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bnnprobe.analysis.crossfit import NEAR_LINEAR, folds, linearity
from bnnprobe.analysis.tables import probe_tables
from bnnprobe.probes import PROBES

LRS = [0.01, 0.1, 0.3, 1.0]
COLUMNS = PROBES["mlp"]


def _sweep(values: dict, estimator="ste-vanilla", dim=4):
    """Sweep rows from ``values[(seed, batch)] = [decrease at each lr of LRS]``."""
    rows = []
    for (seed, batch), decreases in values.items():
        for lr, decrease in zip(LRS, decreases):
            rows.append({"estimator": estimator, "sigma": math.nan, "eps": math.nan, "step_layer": "all", "dim": dim,
                         "seed": seed, "batch": batch, "lr": lr, "grid": "coarse", "loss_before": 1.0,
                         "loss_after": 1.0 - decrease, "loss_decrease": decrease, "grad_norm": 1.0 + seed,
                         "cos_to_cdg": 0.5, "cos_to_smoothed": math.nan, "smoothed_sigma": math.nan,
                         "seconds": 0.1, "n_loss_evals": 1})
    return pd.DataFrame(rows)


def _naive(values: dict):
    """Leave one seed out by hand: choose on the other seeds' batch means, score on the held-out seed's."""
    seeds = sorted({s for s, _ in values})
    mean_of = {s: np.mean([values[(s, b)] for (t, b) in values if t == s], axis=0) for s in seeds}
    out = {}
    for held in seeds:
        others = np.mean([mean_of[s] for s in seeds if s != held], axis=0)
        chosen = int(np.argmax(others))  # the first (smallest lr) on ties
        out[held] = (LRS[chosen], float(mean_of[held][chosen]))
    everyone = np.mean([mean_of[s] for s in seeds], axis=0)
    return out, LRS[int(np.argmax(everyone))], float(everyone.max())


def test_each_seed_is_scored_at_the_lr_the_other_seeds_chose():
    rng = np.random.default_rng(0)
    values = {(s, b): list(np.array([0.1, 0.5, 0.6, -0.2]) + rng.normal(0, 0.2, 4))
              for s, b in itertools.product(range(4), range(3))}
    runs, summary, best, fold_rows = probe_tables([_sweep(values)], COLUMNS)
    expected, in_sample_lr, in_sample = _naive(values)
    got = fold_rows.set_index("seed")
    for seed, (lr, score) in expected.items():
        assert got.loc[seed, "chosen_lr"] == lr
        assert got.loc[seed, "loss_decrease"] == pytest.approx(score, rel=1e-12)
        assert got.loc[seed, "grad_norm"] == pytest.approx(1.0 + seed)
    scores = np.array([score for _, score in expected.values()])
    row = best.iloc[0]
    assert row["best_lr"] == in_sample_lr and row["loss_decrease_mean"] == pytest.approx(in_sample, rel=1e-12)
    assert row["crossfit_loss_decrease_mean"] == pytest.approx(scores.mean(), rel=1e-12)
    half = stats.t.ppf(0.975, len(scores) - 1) * scores.std(ddof=1) / math.sqrt(len(scores))
    assert row["crossfit_loss_decrease_ci95_low"] == pytest.approx(scores.mean() - half, rel=1e-12)
    assert row["winner_bias"] == pytest.approx(in_sample - scores.mean(), rel=1e-9)
    assert row["crossfit_n"] == 4
    # the in-sample maximum is never below the mean of the held-out scores at the folds' own lrs
    assert row["winner_bias"] >= -1e-12


def test_a_student_that_alone_picks_a_lucky_lr_does_not_report_it():
    # seed 0 alone peaks at lr 1.0 (a lucky batch); the others peak at 0.1: seed 0 is scored at 0.1
    values = {(0, 0): [0.1, 0.2, 0.1, 0.9], (1, 0): [0.1, 0.5, 0.3, 0.0], (2, 0): [0.1, 0.5, 0.3, 0.0]}
    _, _, best, fold_rows = probe_tables([_sweep(values)], COLUMNS)
    got = fold_rows.set_index("seed")
    assert got.loc[0, "chosen_lr"] == 0.1 and got.loc[0, "loss_decrease"] == pytest.approx(0.2)
    # leaving seed 1 out: seeds 0 and 2 average 0.35 at 0.1 and 0.45 at 1.0: lr 1.0, at the grid's edge
    assert got.loc[1, "chosen_lr"] == 1.0 and bool(got.loc[1, "chosen_lr_at_edge"])
    assert got.loc[1, "loss_decrease"] == pytest.approx(0.0)
    row = best.iloc[0]
    assert row["crossfit_folds_at_edge"] == 2 and bool(row["lr_undetermined"])
    assert not bool(row["best_lr_at_edge"])  # in sample, lr 0.1 (mean 0.4) beats 1.0 (0.3)


def test_one_seed_has_no_fold():
    values = {(0, 0): [0.1, 0.2, 0.3, 0.1], (0, 1): [0.1, 0.2, 0.3, 0.1]}
    _, _, best, fold_rows = probe_tables([_sweep(values)], COLUMNS)
    assert fold_rows.empty and best.iloc[0]["crossfit_n"] == 0
    assert math.isnan(best.iloc[0]["crossfit_loss_decrease_mean"])


def test_linearity_is_the_decrease_per_unit_lr_against_one_step_below():
    lrs = [0.01, 0.1, 1.0]
    linear = pd.Series([0.01, 0.1, 1.0], index=lrs)  # D = lr: still the first-order term
    assert linearity(linear, 1.0) == pytest.approx(1.0) and linearity(linear, 1.0) >= NEAR_LINEAR
    quadratic = pd.Series([lr - 0.5 * lr**2 for lr in lrs], index=lrs)  # D = lr - lr^2 / 2, optimum at 1
    assert linearity(quadratic, 1.0) == pytest.approx(0.5 / (1 - 0.05))
    assert math.isnan(linearity(linear, 0.01))  # nothing below the smallest lr
    _, _, best, _ = probe_tables([_sweep({(s, 0): [0.01, 0.1, 0.3, 1.0] for s in range(3)})], COLUMNS)
    assert bool(best.iloc[0]["near_linear"]) and bool(best.iloc[0]["best_lr_at_edge"])


def test_a_decrease_equal_at_every_lr_is_not_at_an_edge():
    from bnnprobe.analysis.lrgrid import best_lr_edge

    assert best_lr_edge(pd.Series([0.0, 0.0, 0.0], index=LRS[:3])) == 0  # a binary layer's step that flips nothing
    assert best_lr_edge(pd.Series([0.3, 0.0, 0.3], index=LRS[:3])) == -1  # the best only at the edges
    assert best_lr_edge(pd.Series([0.1, 0.3, 0.3], index=LRS[:3])) == 0  # inside, tied with the edge
    _, _, best, fold_rows = probe_tables([_sweep({(s, 0): [0.0] * 4 for s in range(3)})], COLUMNS)
    assert not fold_rows["chosen_lr_at_edge"].any() and not bool(best.iloc[0]["lr_undetermined"])
