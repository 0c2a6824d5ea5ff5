"""Loss decreases against a direct computation; summary statistics against naive formulas; fine grids."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from bnnprobe.analysis.lrgrid import extension_grid, fine_grid
from bnnprobe.analysis.sweep import loss_decreases, sweep_coarse_and_fine, sweep_groups
from bnnprobe.analysis.tables import best_table, runs_table, summary_table
from bnnprobe.device import Compute
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.mlp.source import SOURCE as MLP
from bnnprobe.probes import PROBES
from bnnprobe.study import compute_record
from reference import layers_from_theta, mse

CPU = Compute.from_config({"device": "cpu"})
MLP_KEY, MLP_COLUMNS = PROBES["mlp"].row_key, PROBES["mlp"].run_columns
BY_DIM = PROBES["mlp"].summary_by


def test_loss_decrease_equals_direct_computation():
    spec = MLPSpec(dim=3, seed=1, batch_size=400, num_batches=1, activation="sign")
    p = MLPProbe(spec, dtype=torch.float64).batch(0)
    g = torch.randn(p.n_coords, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lrs = [1e-3, 0.1, 0.7]
    before, decrease = loss_decreases(p, g, lrs)
    x, y, w = p.x.numpy(), p.y.numpy(), p.theta0.numpy()
    direct_before = mse(layers_from_theta(w, 3, 3), x, y, "sign")
    assert before == pytest.approx(direct_before, rel=1e-12)
    for lr, dec in zip(lrs, decrease):
        after = mse(layers_from_theta(w - lr * g.numpy(), 3, 3), x, y, "sign")
        assert dec == pytest.approx(direct_before - after, rel=1e-10, abs=1e-14)


def test_sweep_rows_and_cosines():
    spec = MLPSpec(dim=2, seed=0, batch_size=300, num_batches=2).as_dict()
    settings = {"eps": 0.05, "scheme": "forward"}
    cdg = compute_record(MLP, spec, "cdg", settings, CPU)
    ste = compute_record(MLP, spec, "ste-vanilla", {"variant": "vanilla"}, CPU)
    no_fine = {"mode": "none", "points": 2, "span_decades": 1.0, "low": 0.01, "high": 1.0}
    ((group, rows, fine_lrs, _),) = sweep_groups(MLP, [ste], {"cdg": [cdg]}, [{"dim": 2}], [0.01, 0.1], no_fine, CPU)
    assert group == {"dim": 2} and fine_lrs == {"all": []} and list(rows.columns) == MLP_COLUMNS
    assert rows["cos_to_smoothed"].isna().all() and rows["sigma"].isna().all() and set(rows["step_layer"]) == {"all"}
    assert len(rows) == 4 and list(rows["batch"]) == [0, 0, 1, 1]
    for b in range(2):
        a, c = ste.gradients[b].double(), cdg.gradients[b].double()
        cos = float(a @ c / (a.norm() * c.norm()))
        assert rows[rows["batch"] == b]["cos_to_cdg"].iloc[0] == pytest.approx(cos, rel=1e-9)
        # the loss decrease of the stored gradient, recomputed on the batch rebuilt from the spec
        problem = MLPProbe(MLPSpec(**spec)).batch(b)
        _, direct = loss_decreases(problem, ste.gradients[b], [0.01, 0.1])
        assert rows[rows["batch"] == b]["loss_decrease"].to_list() == pytest.approx(list(direct), rel=1e-12)
    ((_, rows, _, _),) = sweep_groups(MLP, [cdg], {"cdg": [cdg]}, [{"dim": 2}], [0.1], no_fine, CPU)
    assert rows["cos_to_cdg"].to_list() == pytest.approx([1.0, 1.0]) and (rows["eps"] == 0.05).all()


def test_one_layer_steps_and_cosines_to_the_smoothed_gradient():
    """A step of one layer moves only that layer's coordinates; its cosines are over that layer's."""
    spec = MLPSpec(dim=3, seed=2, batch_size=500, num_batches=1, activation="sign").as_dict()
    cdg = compute_record(MLP, spec, "cdg", {"eps": 0.05, "scheme": "forward"}, CPU)
    smoothed = compute_record(MLP, spec, "smoothed_sigma0.1", {"sigma": 0.1}, CPU)
    nes = compute_record(MLP, spec, "nes-20_sigma0.1", {"population": 20, "sigma": 0.1, "fitness_shaping": False},
                         CPU, )
    assert nes.estimator == "nes-20" and smoothed.estimator == "smoothed"
    no_fine = {"mode": "none", "points": 2, "span_decades": 1.0, "low": 0.01, "high": 1.0}
    ((_, rows, fine_lrs, _),) = sweep_groups(MLP, [nes], {"cdg": [cdg], "smoothed": [smoothed]}, [{"dim": 3}], [0.1],
                                            no_fine, CPU, step_layers=["all", "1", "3"])
    assert set(fine_lrs) == {"all", "1", "3"} and list(rows["step_layer"]) == ["all", "1", "3"]
    assert (rows["sigma"] == 0.1).all() and (rows["smoothed_sigma"] == 0.1).all() and rows["eps"].isna().all()
    g, s, c = (r.gradients[0].double().numpy() for r in (nes, smoothed, cdg))
    problem = MLPProbe(MLPSpec(**spec)).batch(0)
    x, y, w = problem.x.numpy(), problem.y.numpy(), problem.theta0.numpy()
    base = mse(layers_from_theta(w, 3, 3), x, y, "sign")
    for layer, part in (("all", slice(None)), ("1", slice(0, 12)), ("3", slice(24, 36))):
        row = rows[rows["step_layer"] == layer].iloc[0]
        step = np.zeros_like(w)
        step[part] = 0.1 * g[part]
        after = mse(layers_from_theta(w - step, 3, 3), x, y, "sign")
        assert row["loss_decrease"] == pytest.approx(base - after, rel=1e-4, abs=1e-7)
        for ref, column in ((s, "cos_to_smoothed"), (c, "cos_to_cdg")):
            cos = g[part] @ ref[part] / (np.linalg.norm(g[part]) * np.linalg.norm(ref[part]))
            assert row[column] == pytest.approx(cos, rel=1e-5)
    with pytest.raises(Exception, match="step layer '4'"):
        list(sweep_groups(MLP, [nes], {"cdg": [cdg]}, [{"dim": 3}], [0.1], no_fine, CPU, step_layers=["4"]))


def _runs():
    rng = np.random.default_rng(5)
    rows = []
    # an STE-like estimator has no sigma or eps (NaN): its rows must still be grouped, not dropped
    for est, sigma, eps in [("cdg", math.nan, 0.01), ("nes-10", 0.01, math.nan), ("nes-10", 0.1, math.nan),
                            ("ste-vanilla", math.nan, math.nan)]:
        for lr in [0.01, 0.1]:
            for seed in range(2):
                for batch in range(3):
                    rows.append({"estimator": est, "sigma": sigma, "eps": eps, "step_layer": "all", "dim": 4,
                                 "seed": seed, "batch": batch, "lr": lr,
                                 "grid": "coarse", "loss_before": 1.0, "loss_after": 0.0,
                                 "loss_decrease": rng.normal(lr, 0.01), "grad_norm": 1.0, "cos_to_cdg": 0.5,
                                 "cos_to_smoothed": 0.4, "smoothed_sigma": 0.01, "seconds": 0.1, "n_loss_evals": 10})
    return pd.DataFrame(rows)


def _naive_t_interval(values):
    """n, mean, sample std and the Student-t 95% half-width, written out."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return n, mean, std, stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)


def test_summary_statistics_match_naive_formulas():
    runs = runs_table([_runs()], MLP_KEY, MLP_COLUMNS)
    summary = summary_table(runs, BY_DIM)
    assert len(summary) == 4 * 2
    for _, row in summary.iterrows():
        same_sigma = (runs.sigma == row.sigma) | (runs.sigma.isna() & math.isnan(row.sigma))
        values = runs[(runs.estimator == row.estimator) & same_sigma & (runs.lr == row.lr)]["loss_decrease"].to_list()
        n, mean, std, half = _naive_t_interval(values)
        assert row.n == n == 6
        assert row.loss_decrease_mean == pytest.approx(mean)
        assert row.loss_decrease_std == pytest.approx(std)
        assert row.loss_decrease_ci95_low == pytest.approx(mean - half)
        assert row.loss_decrease_ci95_high == pytest.approx(mean + half)
    best = best_table(summary, BY_DIM)
    assert list(best["best_lr"]) == [0.1, 0.1, 0.1, 0.1]
    assert list(best["estimator"]) == ["cdg", "nes-10", "nes-10", "ste-vanilla"]


def test_a_seed_unit_averages_its_batches_before_the_statistics():
    """The layer probe's unit: each seed's batches share its coordinate sample, so the CI is over seeds."""
    runs = runs_table([_runs()], MLP_KEY, MLP_COLUMNS)
    summary = summary_table(runs, BY_DIM, unit=("seed",))
    assert set(summary["ci_unit"]) == {"seed (its batches averaged)"}
    for _, row in summary.iterrows():
        same_sigma = (runs.sigma == row.sigma) | (runs.sigma.isna() & math.isnan(row.sigma))
        rows = runs[(runs.estimator == row.estimator) & same_sigma & (runs.lr == row.lr)]
        seeds = sorted(set(rows["seed"]))
        values = []
        for seed in seeds:  # a plain loop: each seed's mean over its batches
            of_seed = rows[rows["seed"] == seed]["loss_decrease"].to_list()
            values.append(sum(of_seed) / len(of_seed))
        n, mean, std, half = _naive_t_interval(values)
        assert row.n == n == 2
        assert row.loss_decrease_mean == pytest.approx(mean)
        assert row.loss_decrease_ci95_low == pytest.approx(mean - half)
        assert row.loss_decrease_ci95_high == pytest.approx(mean + half)
    assert set(summary_table(runs, BY_DIM)["ci_unit"]) == {"seed x batch"}


def test_best_lr_at_the_grid_edge_is_flagged():
    rows = []
    # cdg peaks inside the grid (at 0.1); nes-10 keeps improving up to the largest lr tried
    decrease = {"cdg": {0.01: 0.1, 0.1: 0.5, 1.0: 0.2}, "nes-10": {0.01: 0.1, 0.1: 0.2, 1.0: 0.3}}
    for est, by_lr in decrease.items():
        for lr, value in by_lr.items():
            rows.append({"estimator": est, "sigma": math.nan, "eps": math.nan, "step_layer": "all", "dim": 4, "lr": lr,
                         "loss_decrease_mean": value})
    best = best_table(pd.DataFrame(rows), BY_DIM)
    assert list(best["best_lr"]) == [0.1, 1.0]
    assert list(best["best_lr_at_edge"]) == [False, True]
    assert list(best["n_lrs_tried"]) == [3, 3]


def test_duplicate_rows_are_refused():
    runs = _runs()
    with pytest.raises(ValueError, match="duplicate"):
        runs_table([runs, runs.head(1)], MLP_KEY, MLP_COLUMNS)


def test_fine_grid_auto_fixed_none():
    coarse = pd.DataFrame({"lr": [1e-3, 1e-2, 1e-1, 1.0] * 2, "loss_decrease": [0.1, 0.5, 0.2, -3.0] * 2})
    auto = fine_grid(coarse, "auto", 5, span_decades=1.0)
    assert auto == [pytest.approx(10**-2.5), pytest.approx(10**-1.5)]  # 1e-3, 1e-2, 1e-1 are coarse points
    fixed = fine_grid(coarse, "fixed", 9, low=1e-2, high=1.0)
    assert len(fixed) == 6 and min(fixed) > 1e-2 and max(fixed) < 1.0  # the log's [1e-2, 1] scan
    assert fine_grid(coarse, "none", 5) == []


def test_extension_grid_looks_beyond_an_edge_best():
    rows = pd.DataFrame({"lr": [0.1, 1.0, 10.0], "loss_decrease": [0.1, 0.2, 0.3]})
    assert extension_grid(rows, 9, 1.0) == pytest.approx([10**1.25, 10**1.5, 10**1.75, 100.0])
    rows["loss_decrease"] = [0.3, 0.2, 0.1]
    assert extension_grid(rows, 5, 1.0) == pytest.approx([10**-1.5, 0.01])
    rows["loss_decrease"] = [0.1, 0.3, 0.2]
    assert extension_grid(rows, 9, 1.0) == []


def test_auto_fine_grid_is_extended_until_the_optimum_is_bracketed():
    # a loss decrease peaking at lr = 30, above the coarse grid and the first fine window
    def sweep_one(record, lrs, grid):
        return pd.DataFrame({"lr": lrs, "grid": grid, "loss_decrease": [-(math.log10(x / 30)) ** 2 for x in lrs]})

    fine = {"mode": "auto", "points": 5, "span_decades": 1.0, "low": 0.01, "high": 1.0, "extend": 2}
    coarse, fine_lrs, fine_rows = sweep_coarse_and_fine([{}], [0.01, 0.1, 1.0], fine, sweep_one=sweep_one)
    # window 0.1..10 around the best coarse lr 1 (coarse points left out), then 31.6 and 100: 31.6 is interior
    assert fine_lrs == pytest.approx([10**-0.5, 10**0.5, 10.0, 10**1.5, 100.0])
    assert list(fine_rows["lr"]) == pytest.approx(fine_lrs) and set(fine_rows["grid"]) == {"fine"}
    _, without, _ = sweep_coarse_and_fine([{}], [0.01, 0.1, 1.0], {**fine, "extend": 0}, sweep_one=sweep_one)
    assert without == pytest.approx([10**-0.5, 10**0.5, 10.0])
    _, fixed, _ = sweep_coarse_and_fine([{}], [0.01, 0.1, 1.0], {**fine, "mode": "fixed"}, sweep_one=sweep_one)
    assert max(fixed) < 1.0  # the log's fixed scan is never extended


def test_device_choice():
    from bnnprobe.device import least_loaded_gpu, resolve_device

    assert least_loaded_gpu([5, 9, 9, 1]) == 1
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert resolve_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            resolve_device("cuda")


def test_the_grid_is_extended_where_a_cross_fitted_choice_would_sit_at_its_edge():
    # both seeds together peak inside (at 1.0), but without seed 0 the best lr is the largest: 10
    rows = pd.DataFrame({"lr": [0.1, 1.0, 10.0] * 2, "seed": [0] * 3 + [1] * 3,
                         "loss_decrease": [0.1, 0.9, 0.0, 0.1, 0.2, 0.3]})
    assert extension_grid(rows[rows.seed == 0], 5, 1.0) == []  # bracketed for seed 0 alone
    assert extension_grid(rows, 5, 1.0) == pytest.approx([10**1.5, 100.0])
    both = rows.assign(loss_decrease=[0.3, 0.2, 0.1, 0.0, 0.9, 0.1])  # without seed 1: the smallest is the best
    assert extension_grid(both, 5, 1.0) == pytest.approx([10**-1.5, 0.01])
