"""The laptop preset's published tables (docs/laptop/, ``python -m bnnprobe.published``): made with the
laptop config as it is now, and no verdict in them rests on a best lr at the edge of what was tried."""

import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from bnnprobe.published import PEAKS, PUBLISHED_DIR, TABLES, config_digest, laptop_config
from conftest import REPO

BEST = [name for name in TABLES if name.endswith("_best.csv")]
CROSSFIT = [name for name in TABLES if name.endswith("_crossfit.csv")]
FINDINGS = [name for name in TABLES if name.startswith("findings_")]


def used_by_findings(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a finding reads: every estimator at its reference setting, and the sigma/eps axis with all
    layers stepped (an axis value stepping one layer only is tabulated, and used by none)."""
    if "reference_setting" not in table:
        return table
    return table[table["reference_setting"].astype(bool) | (table["step_layer"].astype(str) == "all")]


def test_the_published_tables_are_the_laptop_configs():
    provenance = yaml.safe_load((PUBLISHED_DIR / "provenance.yaml").read_text())
    assert provenance["config_digest"] == config_digest(laptop_config()), (
        "docs/laptop/ was made with another laptop config: run `snakemake --cores 2 --configfile "
        "workflow/presets/quick.yaml`, then `python -m bnnprobe.published`")
    assert provenance["tables"] == list(TABLES)
    assert all((PUBLISHED_DIR / name).stat().st_size > 0 for name in TABLES)


@pytest.mark.parametrize("name", BEST)
def test_no_best_lr_a_laptop_finding_uses_is_at_an_edge(name):
    table = used_by_findings(pd.read_csv(PUBLISHED_DIR / name))
    assert len(table) and "lr_undetermined" in table
    edge = table[table["lr_undetermined"].astype(bool)]
    assert edge.empty, f"{name}: best lr at an edge of the grid in\n{edge.head(10).to_string()}"
    assert (table["crossfit_folds_at_edge"] == 0).all() and not table["best_lr_at_edge"].astype(bool).any()


@pytest.mark.parametrize("name", CROSSFIT)
def test_no_cross_fitted_choice_a_laptop_finding_uses_is_at_an_edge(name):
    folds = used_by_findings(pd.read_csv(PUBLISHED_DIR / name))
    assert len(folds) and not folds["chosen_lr_at_edge"].astype(bool).any()


def test_no_tuned_training_lr_is_at_an_edge():
    tuning = pd.read_csv(PUBLISHED_DIR / "training_lr.csv")
    chosen = tuning[tuning["chosen"].astype(bool)]
    assert len(chosen) and not chosen["at_edge"].astype(bool).any(), chosen[chosen["at_edge"].astype(bool)]


@pytest.mark.parametrize("name", [*FINDINGS, "training_comparisons.csv"])
def test_no_finding_of_the_laptop_run_is_undetermined_at_an_edge(name):
    text = (PUBLISHED_DIR / name).read_text()
    assert "undetermined: the best lr" not in text and "(edge)" not in text


def test_every_laptop_job_asks_for_half_again_its_measured_peak_memory(tmp_path):
    """Every cluster job the laptop preset plans (a dry run of all of it) asks for mem_mb at least 1.5 times
    the peak its benchmark file recorded in the published run (same config: the first test); the jobs that run
    on the submitting host (localrule) ask for nothing."""
    cmd = [sys.executable, "-m", "snakemake", "--dry-run", "--forceall", "--cores", "2", "-s", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(REPO / "workflow" / "presets" / "quick.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rules = re.split(r"^(?:use )?rule ", "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk")),
                     flags=re.M)
    local = {rule.split()[0].rstrip(":") for rule in rules[1:] if "localrule: True" in rule}
    asked = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        name = re.match(r"(?:local)?rule (\w+):", block)
        benchmark = re.search(r"^    benchmark: (\S+)$", block, flags=re.M)
        if name and benchmark and name.group(1) not in local:
            mem = re.search(r"^    resources: .*\bmem_mb=(\d+)", block, flags=re.M)
            assert mem, f"rule {name.group(1)} is a cluster job that asks for no mem_mb"
            asked[benchmark.group(1)] = int(mem.group(1))
    peaks = pd.read_csv(PUBLISHED_DIR / PEAKS).set_index("benchmark").max_rss_mb
    measured = peaks[peaks.index.isin(asked)]
    assert len(asked) > 50 and len(measured) == len(asked), sorted(set(asked) - set(peaks.index))[:10]
    short = {b: (asked[b], peak) for b, peak in measured.items() if asked[b] < 1.5 * peak}
    assert not short, f"mem_mb below 1.5x the measured peak (asked, peak MB): {short}"
