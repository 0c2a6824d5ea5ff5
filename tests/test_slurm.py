"""The slurm profile on a live single-node SLURM (started on 127.0.0.1 by tests/slurm/start.sh).

Runs the tiny config's MLP probe (gradient and sweep jobs as cluster jobs, tables and figures on the
submitting host) through sbatch and checks its tables equal a local run's. The probe alone: the
plugin's status checks back off by 10 s whenever no job finished, so every further stage of the DAG
costs tens of seconds of waiting, and the other studies' jobs reach sbatch through the same profile.
Skipped, with the reason, only where slurm-wlm and munge cannot be installed.
"""

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from test_workflow import TINY, copy_repo, snakemake

pytestmark = pytest.mark.workflow
SLURM = REPO / "tests" / "slurm"
# The profile is used as written, except what a 2-core test node cannot give: a partition
# named "debug", 1 thread and 500 MB per job, quick status checks.
HEAVY = ["probe_gradients", "probe_sweep", "layerprobe_gradients", "layerprobe_sweep", "training_run",
         "training_probe_gradients", "training_probe_sweep"]
SITE = ["--default-resources", "slurm_partition=debug", "runtime=30", "mem_mb=500", "cpus_per_task=1",
        "--set-threads", *[f"{rule}=1" for rule in HEAVY],
        "--set-resources", *[f"{rule}:mem_mb=500" for rule in HEAVY],
        "--slurm-init-seconds-before-status-checks", "2", "--jobs", "4"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("slurm")
    started = subprocess.run(["bash", str(SLURM / "start.sh"), str(scratch)], capture_output=True, text=True,
                             timeout=600)
    if started.returncode == 3:
        pytest.skip(f"no SLURM here: {started.stderr.strip()}")
    assert started.returncode == 0, started.stdout + started.stderr
    pids = [int((scratch / "run" / f"{name}.pid").read_text()) for name in ("munged", "slurmctld", "slurmd")]
    yield scratch
    subprocess.run(["bash", str(SLURM / "stop.sh"), str(scratch)], timeout=120)
    alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert not alive, f"daemons still running after stop.sh: {alive}"


# the figure panels' estimators (every other family's jobs go through the same rules; the workflow tests run them)
PROBED = {**TINY, "estimators": ["cdg", "nes-10", "ste-vanilla", "guided-es"]}


def test_slurm_profile_runs_the_workflow_through_sbatch(slurm, tmp_path):
    on_slurm = copy_repo(tmp_path / "slurm")
    result = snakemake(on_slurm, PROBED, "probe", "--profile", "workflow/profiles/slurm", *SITE)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    # the jobs really went through sbatch
    submitted = re.findall(r"submitted with SLURM jobid (\d+)", result.stdout + result.stderr)
    assert len(submitted) >= 8, (result.stdout + result.stderr)[-3000:]
    local = copy_repo(tmp_path / "local")
    assert snakemake(local, PROBED, "probe").returncode == 0
    for table in ["probe_summary.csv", "probe_best.csv"]:
        a = pd.read_csv(on_slurm / "results" / "tables" / table).drop(columns=["seconds_mean"])
        b = pd.read_csv(local / "results" / "tables" / table).drop(columns=["seconds_mean"])
        pd.testing.assert_frame_equal(a, b)
    runs_a = pd.read_csv(on_slurm / "results" / "tables" / "probe_runs.csv").drop(columns=["seconds"])
    runs_b = pd.read_csv(local / "results" / "tables" / "probe_runs.csv").drop(columns=["seconds"])
    pd.testing.assert_frame_equal(runs_a, runs_b)
