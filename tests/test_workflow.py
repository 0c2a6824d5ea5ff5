"""The Snakemake workflow end to end on a tiny config, in a temporary copy of the repository."""

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bnnprobe.config import load_config
from bnnprobe.plan import Plan
from bnnprobe.io import load_torch
from bnnprobe.probes import PHASES
from conftest import REPO

pytestmark = pytest.mark.workflow

TINY = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())  # the tiny config users can run too
# the ids of TINY's two finetune runs (width, weight decay, batch size, lr, epochs)
RUN_IDS = ["w2_wd0_bs128_lr0.002_ep3", "w2_wd0.0001_bs128_lr0.004_ep3"]
COPIED = ["Snakefile", "config.yaml", "workflow", "src", "envs", "profiles", ".test"]


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_symlink():  # profiles -> workflow/profiles
            (dest / name).symlink_to(src.readlink())
        elif src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def snakemake(repo: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    (repo / "tiny.yaml").write_text(yaml.safe_dump(config))
    # --configfile takes several values: it goes last so that targets stay targets
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--configfile", "tiny.yaml"]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900)


def current_config(repo: Path) -> dict:
    """The config the repository copy was last run with (a test may have changed it)."""
    return yaml.safe_load((repo / "tiny.yaml").read_text())


def mtimes(repo: Path) -> dict:
    return {str(p.relative_to(repo)): p.stat().st_mtime_ns for p in (repo / "results").rglob("*")
            if p.is_file() and "/logs/" not in str(p) and "/benchmarks/" not in str(p)}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    repo = copy_repo(tmp_path_factory.mktemp("wf") / "repo")
    result = snakemake(repo, TINY)
    assert result.returncode == 0, result.stderr[-4000:]
    return repo


# what the MLP probe of TINY computes: every estimator at each of its sigma/eps values, CDG and the smoothed
# coordinate gradient (the cosine references) at every value in use
INSTANCES = ["cdg_eps0.01", "cdg_eps0.05", "nes-10_sigma0.01", "nes-10_sigma0.1", "nes-coord-10_sigma0.01",
             "nes-coord-10_sigma0.1", "ste-vanilla", "guided-es_sigma0.01", "smoothed_sigma0.01", "smoothed_sigma0.1",
             # FOGZO's eps tied to the noise its guide STE stands for: 0.5 / sqrt(3)
             "fogzo-2_eps0.288675", "snes-10_sigma0.01", "span-4_sigma0.01", "stochastic-ste-2"]
STEP_LAYERS = ["all", "1", "3"]


def test_every_rule_ran_with_expected_rows(done):
    runs = pd.read_csv(done / "results/tables/probe_runs.csv", dtype={"step_layer": str})
    assert TINY["probe"]["step_layers"] == ["all", 1, 3]
    expected = 0
    for instance in INSTANCES:
        name, _, knob_value = instance.partition("_")
        for dim in TINY["probe"]["dims"]:
            grids = json.loads((done / f"results/probe/fine_grids/{instance}/dim{dim}.json").read_text())
            assert sorted(grids["lrs_by_step_layer"]) == sorted(STEP_LAYERS)
            for layer, fine in grids["lrs_by_step_layer"].items():
                expected += (len(TINY["lr"]["coarse"]) + len(fine)) * len(TINY["probe"]["seeds"]) \
                    * TINY["probe"]["num_batches"]
                got = runs[(runs.estimator == name) & (runs.dim == dim) & (runs.step_layer == layer)]
                if knob_value:
                    knob = "sigma" if knob_value.startswith("sigma") else "eps"
                    got = got[got[knob] == float(knob_value.removeprefix(knob))]
                assert sorted(got.lr.unique()) == pytest.approx(sorted(TINY["lr"]["coarse"] + fine))
    assert len(runs) == expected
    assert runs.loss_decrease.notna().all()
    assert not runs.duplicated(["estimator", "sigma", "eps", "step_layer", "lr", "dim", "seed", "batch"]).any()
    assert runs.loss_decrease.notna().all()
    # (a cosine is undefined, NaN, where the stepped layer's gradient is zero: dead units at dim 2)
    assert runs[runs.grad_norm == 0].cos_to_cdg.isna().all()
    runs = runs[runs.grad_norm > 0]
    cdg = runs[(runs.estimator == "cdg") & (runs.eps == 0.01)]
    assert cdg.cos_to_cdg.to_list() == pytest.approx([1.0] * len(cdg))  # CDG at the reference eps is the reference
    smoothed = runs[runs.estimator == "smoothed"]
    assert smoothed.cos_to_smoothed.to_list() == pytest.approx([1.0] * len(smoothed))
    # an estimator at sigma 0.1 is compared with the smoothed gradient at 0.1; an STE with the reference one
    assert set(runs[(runs.estimator == "nes-10") & (runs.sigma == 0.1)].smoothed_sigma) == {0.1}
    assert set(runs[runs.estimator == "ste-vanilla"].smoothed_sigma) == {0.01}
    summary = pd.read_csv(done / "results/tables/probe_summary.csv")
    # the student is the unit: one value per seed, its batches averaged first
    assert (summary.n == len(TINY["probe"]["seeds"])).all() and set(summary.ci_unit) == {"seed (its batches averaged)"}
    best = pd.read_csv(done / "results/tables/probe_best.csv", dtype={"step_layer": str})
    assert len(best) == len(INSTANCES) * len(TINY["probe"]["dims"]) * len(STEP_LAYERS)
    assert best.best_lr_at_edge.dtype == bool and best.lr_undetermined.dtype == bool
    # cross-fitting: each seed scored at the lr the other seed chose, recomputed from the runs table
    folds = pd.read_csv(done / "results/tables/probe_crossfit.csv", dtype={"step_layer": str})
    assert len(folds) == len(best) * len(TINY["probe"]["seeds"])
    all_runs = pd.read_csv(done / "results/tables/probe_runs.csv", dtype={"step_layer": str})
    cdg = all_runs[(all_runs.estimator == "cdg") & (all_runs.eps == 0.01) & (all_runs.step_layer == "all")
                   & (all_runs.dim == 3)]
    means = cdg.groupby(["seed", "lr"]).loss_decrease.mean().unstack("seed")
    for held in means.columns:
        other = [c for c in means.columns if c != held][0]
        chosen = means[other].idxmax()
        row = folds[(folds.estimator == "cdg") & (folds.eps == 0.01) & (folds.step_layer == "all") & (folds.dim == 3)
                    & (folds.seed == held)].iloc[0]
        assert row.chosen_lr == chosen and row.loss_decrease == pytest.approx(means.at[chosen, held])
    assert set(best[~best.reference_setting].apply(lambda r: (r.estimator, r.sigma if r.sigma == r.sigma else r.eps),
                                                   axis=1)) == {("cdg", 0.05), ("nes-10", 0.1), ("nes-coord-10", 0.1),
                                                                ("smoothed", 0.1)}
    figures = ["quick_check", "lr_curves_dim2", "lr_curves_dim3", "best_vs_dim", "cosine_vs_dim", "best_per_layer",
               "sigma_eps"]
    for name in figures:
        data = (done / f"results/figures/probe/{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, name
    layers = pd.read_csv(done / "results/tables/probe_layers.csv", dtype={"step_layer": str})
    # every estimator at its reference setting, per dim and step layer; STE and CDG agree exactly on the output layer
    assert len(layers) == 10 * 2 * 3
    assert set(layers[(layers.step_layer == "3") & layers.estimator.isin(["ste-vanilla", "smoothed"])].vs_cdg) \
        <= {"identical", "indistinguishable", "larger", "smaller"}
    knobs = pd.read_csv(done / "results/tables/probe_sigma_eps.csv")
    assert set(knobs.estimator) == {"cdg", "nes-10", "nes-coord-10", "smoothed"} and len(knobs) == 4 * 2 * 2
    findings = (done / "results/tables/findings_probe.md").read_text()
    assert "## Which layer carries the loss decrease" in findings and "## Sigma and eps" in findings


def test_finetune_table_has_the_logs_layout(done):
    table = pd.read_csv(done / "results/tables/finetune.csv")
    assert list(table.run_id) == RUN_IDS
    for run in table.itertuples():
        metrics = pd.read_csv(done / f"results/finetune/xnor/digits/{run.run_id}/seed0/metrics.csv")
        assert list(metrics.epoch) == [1, 2, 3]
        assert run.train_loss == pytest.approx(metrics.train_loss.tail(2).mean())  # last 2 epochs
        assert run.val_acc == pytest.approx(metrics.val_acc.tail(2).mean())
    markdown = (done / "results/tables/finetune.md").read_text()
    assert markdown.startswith("| Width | Weight Decay | Training Loss | Training Accuracy | Validation Accuracy |")
    assert not list((done / "results/finetune").rglob("checkpoint.pt"))  # removed once a run is complete
    assert (done / "results/figures/finetune/curves.png").stat().st_size > 10_000


def test_layer_probe_tables_and_figures(done):
    runs = pd.read_csv(done / "results/tables/layerprobe_runs.csv")
    assert set(runs.estimator) == {"cdg", "nes-10", "ste-vanilla"}
    assert set(runs.run_id) == set(RUN_IDS)
    assert (runs.k == 6).all() and runs.layer.nunique() == 1 and runs.loss_decrease.notna().all()
    # CDG against itself: cosine 1, or undefined (NaN) where its gradient on the K sampled coordinates is exactly
    # 0 (a binary layer: a step of eps may flip no activation of the batch; it happens at width 2)
    cdg = runs[runs.estimator == "cdg"]
    assert (cdg.grad_norm > 0).any()
    assert cdg.cos_to_cdg[cdg.grad_norm > 0].to_list() == pytest.approx([1.0] * int((cdg.grad_norm > 0).sum()))
    assert cdg.cos_to_cdg[cdg.grad_norm == 0].isna().all()
    # two seeds of two batches each; the summary's unit is the seed, its batches averaged
    assert sorted(set(zip(runs.seed, runs.batch))) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    summary = pd.read_csv(done / "results/tables/layerprobe_summary.csv")
    assert (summary.n == 2).all() and set(summary.ci_unit) == {"seed (its batches averaged)"}
    one = summary.iloc[0]
    at = runs[(runs.estimator == one.estimator) & (runs.run_id == one.run_id) & (runs.lr == one.lr)]
    assert one.loss_decrease_mean == pytest.approx(at.groupby("seed").loss_decrease.mean().mean())
    best = pd.read_csv(done / "results/tables/layerprobe_best.csv")
    assert len(best) == 3 * 2
    for name in ["lr_curves", "best_vs_hyperparameter"]:
        assert (done / f"results/figures/layerprobe/{name}.png").stat().st_size > 10_000


def test_training_tables_findings_and_figures(done):
    training = TINY["training"]
    firsts = {s.split(">")[0] for s in training["schedules"] if ">" in s}
    schedules = set(training["schedules"]) | {f"{a}>{a}" for a in firsts}  # the restarts are added by themselves
    curves = pd.read_csv(done / "results/tables/training_curves.csv")
    assert set(curves.schedule) == schedules
    runs = pd.read_csv(done / "results/tables/training_runs.csv")
    assert len(runs) == len(schedules) * 2 * 2  # schedules x dims x seeds
    assert runs.converged.any() and runs.cap_hit.any()  # the tiny config has both kinds
    for run in runs.itertuples():
        curve = curves[(curves.schedule == run.schedule) & (curves.dim == run.dim) & (curves.seed == run.seed)]
        assert curve.step.max() == (training["steps"] if run.cap_hit else run.end_step)
        if ">" not in run.schedule and run.schedule not in firsts and run.converged:
            assert run.end_step == run.converged_step  # a single estimator stops at its convergence
        if pd.notna(run.switch_step):  # after the switch, the estimator in use is the second one
            first, then = run.schedule.split(">")
            assert run.switch_step == run.converged_step  # at the first estimator's convergence
            assert set(curve[curve.step > run.switch_step].estimator) <= {then}
            assert set(curve[curve.step <= run.switch_step].estimator) == {first}
        # the reported test loss is the window mean of the test batch's curve, not of the validation batch's
        window = curve.sort_values("step").test_loss.iloc[-TINY["training"]["plateau"]["smooth"]:].mean()
        assert run.test_loss_end == pytest.approx(window)
    # each estimator at the lr its tuning chose for that dim: from init, or a switch's second at the switch point
    lr = pd.read_csv(done / "results/tables/training_lr.csv", dtype={"after": str})
    lr["after"] = lr["after"].fillna("")
    assert set(lr.seed) == set(training["tuning"]["seeds"]) and not set(lr.seed) & set(training["seeds"])
    chosen = lr[lr.chosen].drop_duplicates(["estimator", "after", "dim"]).set_index(["estimator", "after", "dim"]).lr
    for run in runs.itertuples():
        parts = run.schedule.split(">")
        assert run.lr == chosen[(parts[0], "", run.dim)]
        if len(parts) == 2:
            assert run.lr_then == chosen[(parts[1], parts[0], run.dim)]
    final = pd.read_csv(done / "results/tables/training_final.csv")
    assert len(final) == len(schedules) * 2 and (final.n == 2).all()
    comparisons = pd.read_csv(done / "results/tables/training_comparisons.csv")
    assert {"first alone, continued", "second alone", "restart", "control"} <= set(comparisons.role)
    assert set(comparisons.axis) == {"converged", "steps", "cost", "seconds"}
    precision = pd.read_csv(done / "results/tables/training_precision.csv")
    assert set(precision.schedule) == set(training["precision"]["schedules"])
    findings = (done / "results/tables/findings_training.md").read_text()
    for heading in ("Do the runs converge", "early, or late?", "does another estimator's step still lower the loss",
                    "Does switching at convergence pay?", "lowest loss per unit cost"):
        assert heading in findings
    figures = ["val_loss_vs_step", "val_loss_vs_cost_dim2", "val_loss_vs_cost_dim3", "lr_tuning",
               "phase_probe_ste-vanilla"]
    for name in figures:
        assert (done / f"results/figures/training/{name}.png").stat().st_size > 10_000


def test_the_probe_along_training_has_every_phase_and_layer(done):
    from bnnprobe.probes import PHASES

    phases = pd.read_csv(done / "results/tables/training_probe_runs.csv", dtype={"step_layer": str})
    assert set(phases.schedule) == {"ste-vanilla"}  # the single-STE schedules of the tiny config
    # the configured estimators, with CDG and the smoothed coordinate gradient (the cosine references)
    assert set(phases.phase) == set(PHASES) and set(phases.estimator) == {"cdg", "nes-10", "ste-vanilla", "smoothed"}
    assert set(phases.step_layer) == {"all", "1", "3"}  # every step layer of the probe
    assert phases[phases.estimator == "smoothed"].cos_to_smoothed.dropna().to_list() == pytest.approx(
        [1.0] * int(phases[phases.estimator == "smoothed"].cos_to_smoothed.notna().sum()))
    assert (phases[phases.phase == "init"].step == 0).all()
    # phase init is the probe's initialisation on the probe's batches: the MLP probe's own rows
    key = ["estimator", "dim", "seed", "batch", "lr", "step_layer"]
    init = phases[phases.phase == "init"].set_index(key).sort_index()
    probe = pd.read_csv(done / "results/tables/probe_runs.csv", dtype={"step_layer": str})
    probe = probe[probe.reference_setting].set_index(key).sort_index()
    probe = probe[probe.index.get_level_values("estimator").isin(["cdg", "nes-10", "ste-vanilla", "smoothed"])]
    common = init.index.intersection(probe.index)
    assert len(common) > 100
    pd.testing.assert_series_equal(init.loss_decrease.loc[common], probe.loss_decrease.loc[common])
    trend = pd.read_csv(done / "results/tables/training_probe_trend.csv", dtype={"step_layer": str})
    assert set(trend.measure) == {"cos_to_cdg", "cos_to_smoothed"} and set(trend.step_layer) == {"all", "1", "3"}
    assert set(trend.change) == {"early", "late"}
    converged = pd.read_csv(done / "results/tables/training_probe_converged.csv", dtype={"step_layer": str})
    assert set(converged.phase) == {"init", "converged"}
    assert set(converged.estimator) == {"cdg", "nes-10", "ste-vanilla", "smoothed"}


def test_gradient_record_has_documented_keys(done):
    from bnnprobe.study import RECORD_FORMAT

    record = load_torch(done / "results/probe/gradients/nes-10_sigma0.01/dim3/seed1.pt")
    assert sorted(record) == sorted(["format", "probe", "estimator", "settings", "extras", "spec", "key", "fingerprint",
                                     "dtype", "seed_parts", "gradients", "loss_before", "seconds", "n_loss_evals",
                                     "device"])
    assert record["estimator"] == "nes-10" and record["extras"] == {}
    assert record["format"] == RECORD_FORMAT and record["probe"] == "mlp" and record["key"] == {"dim": 3, "seed": 1}
    assert record["gradients"].shape == (2, 3 * 3 * 4)
    assert record["settings"] == {"population": 10, "sigma": 0.01, "fitness_shaping": False}
    layer = load_torch(done / f"results/layerprobe/gradients/{RUN_IDS[0]}/cdg/seed0.pt")
    assert layer["probe"] == "layer" and sorted(layer) == sorted(record)  # one record format for every probe
    assert layer["key"]["run_id"] == RUN_IDS[0] and layer["fingerprint"]["coords"].numel() == layer["key"]["k"] == 6


def test_second_run_has_nothing_to_do(done):
    result = snakemake(done, current_config(done), "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def remake_missing_command(repo: Path) -> str:
    """docs/cluster.md's command that remakes deleted intermediate files, for this copy's config."""
    text = (REPO / "docs" / "cluster.md").read_text().split("<!-- remake-missing -->")[1]
    command = re.search(r"```bash\n(.+?)\n```", text, flags=re.S).group(1)
    assert command.count("workflow/presets/quick.yaml") == 2
    return (command.replace("workflow/presets/quick.yaml", "tiny.yaml")
            .replace("snakemake ", f"{sys.executable} -m snakemake "))


def test_deleted_intermediate_files_are_remade_by_the_documented_command(done):
    """A plain run does not remake an intermediate file while what was computed from it is up to date; the
    command of docs/cluster.md does, with its content unchanged, and what is computed from it."""
    sweep = "results/probe/sweeps/coarse/cdg_eps0.01/dim2.csv"
    curve = "results/training/runs/cdg/dim3/seed1/curve.csv"
    kept = {path: pd.read_csv(done / path).drop(columns="seconds", errors="ignore") for path in (sweep, curve)}
    for path in kept:
        (done / path).unlink()
    assert "Nothing to be done" in snakemake(done, current_config(done), "--dry-run").stdout
    result = subprocess.run(remake_missing_command(done), shell=True, cwd=done, capture_output=True, text=True,
                            timeout=900, executable="/bin/bash")
    assert result.returncode == 0, result.stderr[-3000:]
    for path, table in kept.items():  # deterministic: the same rows again
        pd.testing.assert_frame_equal(pd.read_csv(done / path).drop(columns="seconds", errors="ignore"), table)
    assert "Nothing to be done" in snakemake(done, current_config(done), "--dry-run").stdout


def test_damaged_records_are_refused_and_the_advised_command_remakes_them(done):
    """One bit of one gradient flipped inside a record that stays a valid file, and a finetuned model cut
    short: each job reading one stops naming its file, and the command each message gives (both paths in one
    --forcerun) remakes them and everything made from them."""
    record = "results/probe/gradients/nes-10_sigma0.01/dim3/seed1.pt"
    model = Plan.from_config(load_config(REPO / "config.yaml", done / "tiny.yaml")).finetuned_model(RUN_IDS[0])
    sweep = done / "results/probe/sweeps/coarse/nes-10_sigma0.01/dim3.csv"
    kept = pd.read_csv(sweep).drop(columns="seconds")
    data = bytearray((done / record).read_bytes())
    at = bytes(data).index(load_torch(done / record)["gradients"][1, 5].numpy().tobytes())
    data[at] ^= 0x10
    (done / record).write_bytes(bytes(data))
    stat = (done / model).stat()
    (done / model).write_bytes((done / model).read_bytes()[:1000])
    os.utime(done / model, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # damaged in place: nothing looks newer
    failed = snakemake(done, current_config(done), "--keep-going", "--forcerun", "layerprobe_gradients")
    output = failed.stdout + failed.stderr
    assert failed.returncode != 0
    changed = re.search(r"\S*seed1\.pt was changed after it was written.*?--forcerun (\S+)", output)
    cut = re.search(r"cannot read \S*model\.pt \(\w+\): the file is damaged.*?--forcerun (\S+)", output)
    assert changed and changed.group(1) == record, output[-3000:]
    assert cut and cut.group(1) == model, output[-3000:]
    remade = snakemake(done, current_config(done), "--forcerun", changed.group(1), cut.group(1))
    assert remade.returncode == 0, remade.stderr[-3000:]
    load_torch(done / record), load_torch(done / model)  # their checksums hold again
    pd.testing.assert_frame_equal(pd.read_csv(sweep).drop(columns="seconds"), kept)
    assert "Nothing to be done" in snakemake(done, current_config(done), "--dry-run").stdout


@pytest.mark.parametrize("section,change,rule,jobs", [
    ("probe", {"batch_size": 48}, "probe_gradients", len(INSTANCES)),
    ("layerprobe", {"batch_size": 16}, "layerprobe_gradients", 3),
    ("training", {"steps": 150}, "training_run", 9),  # 8 schedules and the restart ste-vanilla>ste-vanilla
])
def test_a_changed_problem_setting_reruns_the_jobs_it_reaches(done, section, change, rule, jobs):
    """Settings that reach a job only through its problem specs (not its paths) re-run it: the specs are a
    param Snakemake compares (one computed from `output` would be left out of its params trigger)."""
    original = current_config(done)
    config = {**original, section: {**original[section], **change}}
    try:
        result = snakemake(done, config, "--dry-run", "--quiet", "rules")
    finally:
        (done / "tiny.yaml").write_text(yaml.safe_dump(original))  # the next tests run the config that ran
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(rf"^{rule}\s+{jobs}$", result.stdout, flags=re.M), result.stdout


def test_a_moved_checkout_has_nothing_to_do(done, tmp_path):
    moved = tmp_path / "elsewhere" / "repo"
    shutil.copytree(done, moved, symlinks=True)  # copy2: contents and mtimes, as mv or rsync -a would keep
    result = snakemake(moved, current_config(done), "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


def changes(repo: Path, config: dict) -> tuple[set, set]:
    """Run with ``config``; the result files written again, and the new ones."""
    before = mtimes(repo)
    result = snakemake(repo, config)
    assert result.returncode == 0, result.stderr[-3000:]
    after = mtimes(repo)
    return {p for p in before if after[p] != before[p]}, set(after) - set(before)


def test_changing_one_sigma_value_runs_only_that_values_jobs(done):
    config = current_config(done)
    rewritten, created = changes(done, {**config, "nes": {"sigma": [0.01, 0.2]}})  # was [0.01, 0.1]
    # nothing that exists is computed again: 0.1's records stay (no longer targets), 0.2 gets its own jobs,
    # with the smoothed gradient at 0.2 as its cosine reference
    assert not {p for p in rewritten if "/gradients/" in p or "/sweeps/" in p}, rewritten
    assert {p for p in created if "/gradients/" in p} == {
        f"results/probe/gradients/{e}_sigma0.2/dim{d}/seed{s}.pt"
        for e in ("nes-10", "nes-coord-10", "smoothed") for d in (2, 3) for s in (0, 1)}
    assert {p for p in created if "/sweeps/" in p} == {
        f"results/probe/sweeps/{g}/{e}_sigma0.2/dim{d}.csv"
        for g in ("coarse", "fine") for e in ("nes-10", "nes-coord-10", "smoothed") for d in (2, 3)}
    assert "results/tables/probe_runs.csv" in rewritten
    record = load_torch(done / "results/probe/gradients/nes-coord-10_sigma0.2/dim2/seed0.pt")
    assert record["settings"] == {"samples": 10, "sigma": 0.2} and record["estimator"] == "nes-coord-10"
    assert set(record["extras"]) == {"loss_grad_sigma", "natural_loss_grad_mu", "natural_loss_grad_sigma"}


def planned_changes(repo: Path, config: dict) -> tuple[set, set]:
    """What a run with ``config`` would write (Snakemake's dry run; the copy's config is then put back): the
    result files it would write again, and the new ones."""
    kept = current_config(repo)
    try:
        result = snakemake(repo, config, "--dry-run")
    finally:
        (repo / "tiny.yaml").write_text(yaml.safe_dump(kept))
    assert result.returncode == 0, result.stderr[-3000:]
    planned = {p for line in re.findall(r"^    output: (.+)$", result.stdout, flags=re.M) for p in line.split(", ")}
    existing = set(mtimes(repo))
    return planned & existing, planned - existing


def test_changing_the_reference_sigma_reruns_the_studies_that_use_it(done):
    """(A dry run: the run itself is the previous test's kind; this one is about which jobs re-run.)"""
    config = {**current_config(done), "nes": {"sigma": [0.02, 0.2]}}
    rewritten, created = planned_changes(done, config)
    gradients = {p for p in rewritten if "/gradients/" in p}
    # the layer probe and the probe along training run NES (and the latter the smoothed gradient) at the
    # reference sigma, in place
    assert gradients == (layer_records("nes-10") | phase_records("nes-10") | phase_records("smoothed"))
    assert {p for p in created if "/gradients/" in p} == {
        f"results/probe/gradients/{e}_sigma0.02/dim{d}/seed{s}.pt"
        for e in ("nes-10", "nes-coord-10", "smoothed") for d in (2, 3) for s in (0, 1)}
    sweeps = {p for p in rewritten if "/sweeps/" in p}
    # the smoothed gradient's reference sigma moved with nes.sigma's first value (it is every sigma in use):
    # the MLP sweeps whose cos_to_smoothed compares with it are swept again, from their stored gradients: the
    # estimators with no sigma of their own (not guided-es, snes or span: their sigma 0.01 is still in use, so
    # they keep their own smoothed reference)
    assert sweeps == ({f"results/probe/sweeps/{g}/{e}/dim{d}.csv" for g in ("coarse", "fine")
                       for e in ("cdg_eps0.01", "cdg_eps0.05", "ste-vanilla", "fogzo-2_eps0.288675",
                                 "stochastic-ste-2") for d in (2, 3)}
                      | {f"results/layerprobe/sweeps/{g}/{r}/nes-10.csv" for g in ("coarse", "fine")
                         for r in RUN_IDS}
                      # every sweep along training: its smoothed reference was recomputed at the new sigma
                      | {f"results/training/probe/sweeps/{g}/ste-vanilla/{e}/dim{d}/{ph}.csv" for g in ("coarse", "fine")
                         for e in ("cdg", "nes-10", "ste-vanilla", "smoothed") for d in (2, 3) for ph in PROBED})
    assert not any("/training/runs/" in p for p in rewritten)  # no training schedule of the tiny config uses NES
    assert not any("/finetune/" in p for p in rewritten)  # the finetunes do not depend on NES
    # the layer probe's NES job those records come from runs at the new reference sigma (its job is its params)
    (tiny := done / "changed.yaml").write_text(yaml.safe_dump(config))
    layer_job = Plan.from_config(load_config(REPO / "config.yaml", tiny)).jobs("layer")["nes-10"]
    assert layer_job.settings["sigma"] == 0.02
    assert f"results/layerprobe/gradients/{RUN_IDS[0]}/nes-10/seed0.pt" in layer_job.records


PROBED = tuple(PHASES)  # the phases the probe along training computes


def layer_records(estimator: str) -> set:
    return {f"results/layerprobe/gradients/{r}/{estimator}/seed{s}.pt"
            for r in RUN_IDS for s in TINY["layerprobe"]["seeds"]}


def phase_records(estimator: str) -> set:
    return {f"results/training/probe/gradients/ste-vanilla/{estimator}/dim{d}/seed{s}/{ph}.pt"
            for d in (2, 3) for s in (0, 1) for ph in PROBED}


def planned_after_editing(repo: Path, module: str) -> set:
    """Append a comment to a library module, dry-run, put the module back as it was (its mtime too): the files
    the jobs Snakemake would run then write (those it plans from the edit and those downstream of them)."""
    path = repo / "src" / "bnnprobe" / module
    text, stat = path.read_text(), path.stat()
    path.write_text(text + "\n# edited\n")  # Snakemake compares checksums: a touch alone re-runs nothing
    try:
        result = snakemake(repo, current_config(repo), "--dry-run")
    finally:
        path.write_text(text)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert result.returncode == 0, result.stderr[-3000:]
    return {p for line in re.findall(r"^    output: (.+)$", result.stdout, flags=re.M) for p in line.split(", ")}


def test_editing_a_library_module_reruns_the_jobs_that_use_it(done):
    rewritten = planned_after_editing(done, "estimators/ste.py")
    gradients = {p for p in rewritten if "/gradients/" in p}
    # ste.py is run by the STE estimators and by those an STE guides (guided ES, FOGZO, span search), not by
    # CDG, NES, SNES or the stochastic STE (its own forward); the STE training runs use it too, and every
    # estimator's probe along those runs reads their (re-written) snapshots
    assert gradients == ({f"results/probe/gradients/{e}/dim{d}/seed{s}.pt"
                          for e in ("ste-vanilla", "guided-es_sigma0.01", "fogzo-2_eps0.288675", "span-4_sigma0.01")
                          for d in (2, 3) for s in (0, 1)}
                         | layer_records("ste-vanilla")
                         | phase_records("cdg") | phase_records("nes-10") | phase_records("ste-vanilla")
                         | phase_records("smoothed"))
    runs = {p.split("/")[3] for p in rewritten if p.startswith("results/training/runs/")}
    # every schedule that runs an STE (FOGZO's directions are drawn around one; the restart at the STE's
    # convergence too), not CDG or SNES alone
    assert runs == {"ste-vanilla", "ste-vanilla_to_cdg", "ste-vanilla_to_fogzo-2", "ste-vanilla_to_ste-steep",
                    "ste-vanilla_to_ste-vanilla"}


@functools.lru_cache(maxsize=None)
def modules_loaded_by(names: tuple) -> dict:
    """Estimator name -> the estimator modules Python loads to run it once (the independent account of its
    code): one process, each estimator run with every estimator module it did not need beforehand unloaded,
    so that each imports its modules afresh."""
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(REPO / "src")!r})
        from bnnprobe.config import load_config
        from bnnprobe.estimators import estimate
        from bnnprobe.mlp import MLPProbe, MLPSpec
        from bnnprobe.naming import settings_for
        config = load_config({str(REPO / "config.yaml")!r}, {str(REPO / ".test" / "config.yaml")!r})
        problem = MLPProbe(MLPSpec(dim=2, seed=0, batch_size=64, num_batches=1)).batch(0)
        base = {{m for m in sys.modules if m.startswith("bnnprobe.estimators.")}}
        loaded = {{}}
        for name in {names!r}:
            for module in [m for m in sys.modules if m.startswith("bnnprobe.estimators.") and m not in base]:
                del sys.modules[module]
            estimate(name, problem, settings_for(name, config), (0,))
            loaded[name] = sorted(m for m in sys.modules if m.startswith("bnnprobe.estimators."))
        print(json.dumps(loaded))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return {name: {m.rsplit(".", 1)[1] + ".py" for m in modules}
            for name, modules in json.loads(result.stdout.splitlines()[-1]).items()}


@pytest.fixture(scope="module")
def every_job(done):
    """Every job of the tiny config's DAG as (inputs, outputs), from one dry run that plans them all, and the
    plan of that config."""
    result = snakemake(done, current_config(done), "--dry-run", "--forceall")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = []
    for block in re.split(r"\n(?=\S*rule \w+:)", result.stdout):
        outputs = re.search(r"^    output: (.+)$", block, flags=re.M)
        inputs = re.search(r"^    input: (.+)$", block, flags=re.M)
        if outputs:
            jobs.append((set(inputs.group(1).split(", ")) if inputs else set(), set(outputs.group(1).split(", "))))
    assert len(jobs) > 50
    return jobs, Plan.from_config(load_config(REPO / "config.yaml", done / "tiny.yaml"))


def rerun_by_editing(jobs: list, path: str) -> set:
    """The outputs Snakemake re-makes once the file at ``path`` (an input) is newer than the outputs: the jobs
    that read it, then every job that reads what one of them writes."""
    stale, rewritten = {path}, set()
    while True:
        more = {o for inputs, outputs in jobs if inputs & stale for o in outputs} - rewritten
        if not more:
            return rewritten
        rewritten |= more
        stale = more


ESTIMATOR_MODULES = sorted(p.name for p in (REPO / "src/bnnprobe/estimators").glob("*.py")
                           if p.name not in ("__init__.py", "registry.py"))


def test_editing_an_estimator_module_reruns_exactly_the_jobs_that_load_it(every_job):
    """For every estimator family's module, the jobs whose inputs it is (with what reads their outputs) are
    exactly the MLP probe gradient jobs and the training runs of the estimators that load it (checked against
    what Python loads, not the tracking code). The tiny config runs every family, so no module's set is empty.
    (A real edit and dry run is checked for ste.py above.)"""
    jobs, plan = every_job
    loaded = modules_loaded_by(tuple(sorted({i.name for i in plan.mlp_instances}
                                            | {n for job in plan.training.values() for n in job.estimators})))
    for module in ESTIMATOR_MODULES:
        outputs = rerun_by_editing(jobs, f"src/bnnprobe/estimators/{module}")
        planned = {p.split("/")[3] for p in outputs if p.startswith("results/probe/gradients/")}
        runs = {p.split("/")[3] for p in outputs if p.startswith("results/training/runs/")}
        expected = {i.label for i in plan.mlp_instances if module in loaded[i.name]}
        expected_runs = {slug for slug, job in plan.training.items()
                         if any(module in loaded[name] for name in job.estimators)}
        assert planned == expected and runs == expected_runs, module
        assert expected or expected_runs, f"the tiny config runs nothing that loads {module}"


def test_editing_figures_redraws_exactly_the_figures_drawn_with_it(done):
    figures = {p for p in mtimes(done) if p.startswith("results/figures/")}
    training = {p for p in figures if p.startswith("results/figures/training/")}
    probes = {p for p in figures if p.startswith(("results/figures/probe/", "results/figures/layerprobe/"))}
    # the probes' figures are drawn with analysis/figures.py; the finetunes and the training study own theirs
    redrawn = planned_after_editing(done, "analysis/figures.py")
    assert redrawn == probes and len(redrawn) >= 8
    redrawn = planned_after_editing(done, "training/figures.py")
    assert redrawn == training and len(training) >= 4


@pytest.mark.parametrize("edit,key", [
    ({"estimators": ["cdg", "nes-7"]}, "estimators[1]"),
    ({"lr": {"coarse": [0.1, -1.0]}}, "lr.coarse[1]"),
    ({"probe": {"dims": [0], "seeds": [0]}}, "probe.dims[0]"),
])
def test_invalid_config_fails_before_any_job(tmp_path, edit, key):
    repo = copy_repo(tmp_path / "repo")
    result = snakemake(repo, {**TINY, **edit})
    assert result.returncode != 0
    assert key in result.stderr + result.stdout
    assert not (repo / "results").exists()


def test_non_finite_loss_stops_the_job_with_a_message(tmp_path):
    repo = copy_repo(tmp_path / "repo")
    # weights of scale 1e39 overflow float32: the job must stop, not write a record
    config = {**TINY, "estimators": ["cdg"], "probe": {**TINY["probe"], "dims": [2], "seeds": [0],
                                                       "init_scale": 1e39},
              "figures": {"panels": [{"title": "CDG", "estimators": ["cdg"]}]},
              "training": {**TINY["training"], "probe": {"estimators": ["cdg"]}}}
    result = snakemake(repo, config, "--cores", "1", "results/probe/gradients/cdg_eps0.01/dim2/seed0.pt")
    assert result.returncode != 0
    log = (repo / "results/logs/probe/gradients/cdg_eps0.01.log").read_text()
    assert "NaN or infinite" in log
    # the default profile (profiles/default) prints the failing job's log on the console
    assert "NaN or infinite" in result.stdout + result.stderr
    assert not (repo / "results/probe/gradients/cdg_eps0.01/dim2/seed0.pt").exists()
    assert not list((repo / "results/probe/gradients/cdg_eps0.01/dim2").glob("*.part"))


def test_html_report_bundles_every_figure_and_table(done):
    result = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "tiny.yaml", "--report",
                             "results/report.html"], cwd=done, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (done / "results/report.html").read_text(errors="replace")
    for name in ["quick_check.png", "lr_curves_dim2.png", "lr_curves_dim3.png", "best_vs_dim.png",
                 "cosine_vs_dim.png", "best_per_layer.png", "sigma_eps.png", "probe_summary.csv", "probe_best.csv",
                 "probe_layers.csv", "findings_probe.md"]:
        assert name in html, name
    assert "Probe study" in html


def test_every_figure_of_the_tiny_config_fits_the_page(done):
    from test_figures import saved_size
    from bnnprobe import style

    pngs = sorted((done / "results" / "figures").rglob("*.png"))
    assert len(pngs) >= 12
    too_wide = {}
    for path in pngs:
        width, dpi = saved_size(path)
        assert dpi == style.DPI, path
        if width > style.PAGE_WIDTH:
            too_wide[str(path.relative_to(done))] = round(width, 2)
    assert not too_wide, too_wide


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
def test_the_html_report_renders_in_a_headless_browser(done, tmp_path):
    """The tiny run's ``snakemake --report`` in headless Chromium: the page renders, not blank."""
    report = done / "results" / "report.html"
    if not report.exists():  # made by test_html_report_bundles_every_figure_and_table when run with it
        made = subprocess.run([sys.executable, "-m", "snakemake", "--configfile", "tiny.yaml", "--report",
                               "results/report.html"], cwd=done, capture_output=True, text=True, timeout=300)
        assert made.returncode == 0, made.stderr[-3000:]
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
                    f"--screenshot={shot}", "--virtual-time-budget=5000", report.as_uri()],
                   capture_output=True, text=True, timeout=120)
    assert shot.exists()
    from PIL import Image
    import numpy as np

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (1000, 1400)
    assert pixels.std() > 5  # something rendered: not a blank page
