"""The cost table: its job counts are the workflow's, its work scales with the config."""

import re
import subprocess
import sys

import pytest

from bnnprobe.config import assemble_config, load_config
from bnnprobe.cost import cost_table, project
from conftest import REPO

# rules -> the cost table's stages
STAGES = {"probe": ["probe_gradients", "probe_sweep"],
          "training": ["training_run", "training_tune", "training_switch_points", "training_switch_tune",
                       "training_precision"],
          "phase probe": ["training_probe_gradients", "training_probe_sweep"],
          "finetune": ["finetune_pretrain", "finetune_xnor"], "layer probe": ["layerprobe_gradients", "layerprobe_sweep"]}


def fake_rates(config):
    from bnnprobe.finetune.runs import resolve_runs

    dims = set(config["probe"]["dims"])
    per_dim = {d: (0.0, 1e-9 * d * d) for d in dims}  # (fixed seconds, seconds per sample)
    widths = {r["width"] for r in resolve_runs(config["finetune"])}
    from bnnprobe.estimators.registry import FAMILIES

    return {"startup": 4.0, "n_coords": {d: d * d for d in dims}, **{kind: per_dim for kind in ["eval", *FAMILIES]},
            "resnet": {w: {"train": 1e-4 * w, "eval": 3e-5 * w, "layer_copy": 1e-5 * w} for w in widths}}


MANY_SEEDS = "probe: {seeds: [%s]}\ntraining: {seeds: [%s]}\n" % (
    ", ".join(map(str, range(100))), ", ".join(map(str, range(30))))


@pytest.mark.parametrize("preset", [".test/config.yaml", "workflow/presets/quick.yaml", None, "many seeds"])
def test_job_counts_are_the_workflows(preset, tmp_path):
    """The cost command counts each stage's jobs from the plan the workflow runs: the same numbers as
    Snakemake's dry run, for the tiny, laptop and paper configs and the laptop one with 100 probe and 30
    training seeds."""
    files = [REPO / preset] if preset not in (None, "many seeds") else []
    if preset == "many seeds":
        (many := tmp_path / "many.yaml").write_text(MANY_SEEDS)
        files = [REPO / "workflow" / "presets" / "quick.yaml", many]
    config = assemble_config([REPO / "config.yaml", *files], {})
    stages = project(config, fake_rates(config))
    cmd = [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
           "--directory", str(tmp_path / "work")] + (["--configfile", *map(str, files)] if files else [])
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    counts = {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M)}
    for stage, rules in STAGES.items():
        assert stages[stage]["jobs"] == sum(counts.get(r, 0) for r in rules), stage


def test_the_projection_says_what_each_job_asks_for_and_warns_when_far_above_the_laptop_run():
    from bnnprobe.cost import LARGE_VS_LAPTOP, size_warning
    from bnnprobe.plan import job_mem_mb

    config = load_config(REPO / "config.yaml", REPO / "workflow" / "presets" / "quick.yaml")
    stages = project(config, fake_rates(config))
    # a probe job: 1.5 x (a 1024 MB process + 1.5 x the 16 MB CPU block + 12 float64 copies of 8192 x 64)
    assert stages["probe"]["mem_mb"] == job_mem_mb(config, "probe") == int(1.5 * (1024 + 24 + 12 * 8192 * 64 * 8 / 2**20))
    assert stages["finetune"]["mem_mb"] == 8000
    table = cost_table(stages, None, {stage: 123.4 for stage in stages})
    assert "| mem_mb per job |" in table and f"| {stages['probe']['mem_mb']} |" in table and "| 123 |" in table
    total = sum(v["seconds"] for v in stages.values())
    assert size_warning(stages, total) == "" and size_warning(stages, None) == ""
    warning = size_warning(stages, total / (2 * LARGE_VS_LAPTOP))
    assert warning.startswith("warning: this config projects") and f"{2 * LARGE_VS_LAPTOP} times" in warning


def test_rates_are_measured_once_per_config_and_device_and_read_back_as_measured(tmp_path, monkeypatch):
    import bnnprobe.cost as cost

    calls = []

    def measure(config, device):
        calls.append(device)
        return {"startup": 3.5, "n_coords": {2: 4}, "cdg": {2: (0.1, 1e-6)}, "resnet": {8: {"train": 1e-4}}}

    monkeypatch.setattr(cost, "measure_rates", measure)
    config = load_config(REPO / "config.yaml", REPO / ".test" / "config.yaml")
    first, said = cost.cached_rates(config, "cpu", tmp_path)
    again, said_again = cost.cached_rates(config, "cpu", tmp_path)
    assert calls == ["cpu"] and again == first and set(again["cdg"]) == {2}  # an int key, as measured
    assert again["cdg"][2] == (0.1, 1e-6) and "measured now" in said and "measured earlier" in said_again
    cost.cached_rates({**config, "probe": {**config["probe"], "batch_size": 99}}, "cpu", tmp_path)
    assert calls == ["cpu", "cpu"]  # another config: measured again
    cost.cached_rates(config, "cpu", tmp_path, remeasure=True)
    assert len(calls) == 3
    for path in tmp_path.glob("rates_*.txt"):
        path.write_text("{damaged")
    assert cost.cached_rates(config, "cpu", tmp_path)[0] == first and len(calls) == 4


def test_mlp_work_scales_with_the_batch_and_start_up_does_not():
    config = load_config(REPO / "config.yaml", REPO / ".test" / "config.yaml")
    rates = fake_rates(config)
    small = project(config, rates)["probe"]
    config["probe"]["batch_size"] *= 2
    large = project(config, rates)["probe"]
    startup = small["jobs"] * rates["startup"]
    assert large["seconds"] - startup == pytest.approx(2 * (small["seconds"] - startup))
    table = cost_table({"probe": small}, {"probe": small["seconds"] / 2})
    assert "| probe |" in table and "| 2.00 |" in table


def test_layer_probe_work_scales_with_its_batches_and_start_up_does_not():
    config = load_config(REPO / "config.yaml", REPO / "workflow" / "presets" / "quick.yaml")
    rates = fake_rates(config)
    small = project(config, rates)["layer probe"]
    config["layerprobe"]["num_batches"] *= 3
    large = project(config, rates)["layer probe"]
    startup = small["jobs"] * rates["startup"]
    assert large["jobs"] == small["jobs"]
    assert large["seconds"] - startup == pytest.approx(3 * (small["seconds"] - startup))


def test_the_gpu_benchmark_runs_quick_on_a_cpu():
    """benchmarks/gpu.py --quick: the smoke test of the GPU benchmark (the fused kernel is tested in test_fused)."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--quick"], capture_output=True,
                            text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for line in ("NES-200 dim 8", "exact CDG dim 8", "XNOR-ResNet-18 width 8", "layer probe NES-20", "| total |"):
        assert line in result.stdout, result.stdout


@pytest.mark.parametrize("args,message", [
    (["--configfile", "missing.yaml"], "config file missing.yaml does not exist"),
    (["--configfile", "config.yaml", "--measured", "/nonexistent"], "--measured /nonexistent is not a folder"),
    (["--configfile", "config.yaml", "BAD"], "did you mean 'ste-vanilla'"),
])
def test_the_cost_command_refuses_bad_input_in_one_line(args, message, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimators: [cdg, ste-vanila]\n")
    args = [str(bad) if a == "BAD" else a for a in args]
    result = subprocess.run([sys.executable, "-m", "bnnprobe.cost", *args], capture_output=True, text=True,
                            cwd=REPO, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_job_hours_read_as_minutes_hours_or_days():
    from bnnprobe.cost import readable_hours

    assert readable_hours(0.5) == "30.0 min" and readable_hours(5) == "5.0 h" and readable_hours(147000) == "6,125 days"


def test_the_cuda_paths_benchmark_runs_quick_on_a_cpu():
    """benchmarks/cuda_paths.py --quick: the smoke test of the GPU-vs-CPU comparison (both sides on a CPU here)."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cuda_paths.py"), "--quick"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Training a student" in result.stdout and "val loss cpu" in result.stdout, result.stdout[-2000:]
