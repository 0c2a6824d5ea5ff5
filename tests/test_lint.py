"""The workflow's rules pass Snakemake's linter and snakefmt, and the paper preset's DAG builds fast."""

import re
import shutil
import subprocess
import sys
import time


from conftest import REPO


def test_snakemake_lint_reports_nothing():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Lints for" not in output, output


def test_snakefmt_check_passes():
    snakefmt = shutil.which("snakefmt") or str(REPO / ".venv" / "bin" / "snakefmt")
    files = ["Snakefile", *map(str, sorted((REPO / "workflow" / "rules").glob("*.smk")))]
    result = subprocess.run([snakefmt, "--check", *files], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_paper_preset_dry_run_lists_every_job(tmp_path):
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules", "-s",
                             str(REPO / "Snakefile"), "--directory", str(tmp_path)], capture_output=True,
                            text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", result.stdout, flags=re.M))
    # 28 estimator instances (cdg; nes-500/5000/50000 and nes-coord-500/5000/50000 at 3 sigmas each; 5 STEs;
    # guided-es; smoothed at the 3 sigmas): a gradient job (6 dims x 3 seeds) and a sweep job (all dims, all
    # step layers) per instance; a layer-probe gradient job (11 finetune runs x 3 seeds) and a layer sweep job
    # per estimator (8)
    assert counts.get("probe_gradients") == "28", result.stdout
    assert counts.get("probe_sweep") == "28", result.stdout
    assert counts.get("layerprobe_gradients") == "8" and counts.get("layerprobe_sweep") == "8", result.stdout
    print(f"paper preset dry run: {seconds:.1f} s")
