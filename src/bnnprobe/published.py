"""The laptop preset's tables, published with the project in ``docs/laptop/``: what a reader can look at
without running anything, and what the tests hold the laptop preset's results to (no verdict rests on a
best lr at the edge of what was tried).

``python -m bnnprobe.published`` copies them from a finished laptop run (``results/tables/``) and writes
``provenance.yaml`` beside them: the commit, the date, the machine and a digest of the checked config the run
used. A test refuses the published tables once the laptop config has changed (another digest): re-run the
laptop preset and this command.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from .config import REPO_CONFIG, assemble_config
from .io import cpu_model

REPO = REPO_CONFIG.parent
LAPTOP_PRESET = REPO / "workflow" / "presets" / "quick.yaml"
PUBLISHED_DIR = REPO / "docs" / "laptop"
# every findings file, and the tables that say where each best lr sits in what was tried
TABLES = ("findings_probe.md", "findings_training.md", "probe_best.csv", "probe_crossfit.csv", "layerprobe_best.csv",
          "layerprobe_crossfit.csv", "training_probe_best.csv", "training_probe_crossfit.csv", "training_lr.csv",
          "training_runs.csv", "training_comparisons.csv", "finetune.md")
PEAKS = "peaks.csv"  # every job's measured peak memory (from its benchmark file)


def laptop_config(root: Path = REPO) -> dict:
    """The checked config of the laptop preset of the checkout at ``root`` (its config.yaml, then its preset),
    as the workflow runs it."""
    return assemble_config([root / "config.yaml", root / LAPTOP_PRESET.relative_to(REPO)])


def config_digest(config: dict) -> str:
    """A digest of a checked config's values (comments and key order do not change it)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def peaks(benchmarks: Path):
    """Each job's measured peak memory and time from a finished run's Snakemake benchmark files (``benchmark``:
    the file's path as the workflow names it, ``max_rss_mb``, ``seconds``); the rules' ``mem_mb`` are tested
    against it."""
    import pandas as pd

    rows = []
    for path in sorted(benchmarks.rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        rows.append({"benchmark": str(path.relative_to(benchmarks.parents[1])), "max_rss_mb": table.max_rss.max(),
                     "seconds": table.s.max()})
    if not rows:
        raise FileNotFoundError(f"no benchmark files under {benchmarks}: run the laptop preset to the end first")
    return pd.DataFrame(rows)


def publish(tables: Path, to: Path = PUBLISHED_DIR) -> Path:
    """Copy :data:`TABLES` from a finished laptop run's ``tables`` folder (``<checkout>/results/tables``) to
    ``to`` with their provenance: that checkout's commit and the digest of its laptop config."""
    import yaml

    root = tables.resolve().parents[1]
    if not (root / "config.yaml").is_file():
        raise FileNotFoundError(f"{tables} is not the results/tables folder of a checkout (no {root / 'config.yaml'})")
    missing = [name for name in TABLES if not (tables / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{tables} lacks {', '.join(missing)}: run the laptop preset to the end first")
    to.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        shutil.copyfile(tables / name, to / name)
    peaks(root / "results" / "benchmarks").to_csv(to / PEAKS, index=False)
    provenance = {"config_digest": config_digest(laptop_config(root)), "commit": _commit(root),
                  "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": cpu_model(),
                  "command": "snakemake --cores 2 --configfile workflow/presets/quick.yaml", "tables": list(TABLES)}
    (to / "provenance.yaml").write_text(yaml.safe_dump(provenance, sort_keys=False))
    return to


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bnnprobe.published", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="results/tables", help="the finished laptop run's tables folder")
    parser.add_argument("--to", default=str(PUBLISHED_DIR), help="where to publish them")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(f"published to {publish(Path(args.tables), Path(args.to))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
