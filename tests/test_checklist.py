"""docs/architecture.md's checklist for adding an estimator family, followed literally on a toy family
in a copy of the repository: its module, its registry entry (with its config options), its test, and
nothing else; then the registry's own tests pick it up, the config accepts its derived section and
refuses a bad value naming the key, and the tiny config's MLP probe runs it end to end."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]

MODULE = '''"""A toy family: the vanilla STE's gradient, scaled by ``scale``."""


def compute(problem, settings, seed_parts):
    return settings["scale"] * problem.ste_gradient("vanilla")
'''
ENTRY = '''    Family("toy", r"toy", "toy",
           settings=lambda name, _, config: {"scale": config["toy"]["scale"]},
           loss_evals=lambda s, n: 1, backward_passes=lambda s: 1, example="toy",
           counted=Count("toy", 7, 1, 1), section="toy",
           options={"scale": {"type": "number", "exclusiveMinimum": 0, "default": 0.5}}),
'''
TEST = '''import torch

from bnnprobe.estimators import estimate
from bnnprobe.mlp import MLPProbe, MLPSpec


def test_toy_is_the_vanilla_ste_scaled():
    problem = MLPProbe(MLPSpec(dim=3, seed=0, batch_size=64, num_batches=1)).batch(0)
    toy = estimate("toy", problem, {"scale": 0.5}, seed_parts=("t",)).gradient
    ste = estimate("ste-vanilla", problem, {"variant": "vanilla"}, seed_parts=("t",)).gradient
    torch.testing.assert_close(toy, 0.5 * ste)
'''
# the files the checklist names, and what this test writes into each
STEPS = {"src/bnnprobe/estimators/<module>.py": "src/bnnprobe/estimators/toy.py",
         "src/bnnprobe/estimators/registry.py": "src/bnnprobe/estimators/registry.py",
         "tests/": "tests/test_toy.py"}


def checklist() -> str:
    text = (REPO / "docs/architecture.md").read_text()
    return text[text.index("## Checklist: add an estimator family"):text.index("## Checklist: add a probe")]


def test_the_checklist_takes_three_files():
    steps = re.findall(r"^(\d+)\. (.*?)(?=^\d+\. |\Z)", checklist(), flags=re.M | re.S)
    assert [n for n, _ in steps] == ["1", "2", "3"]
    for (_, step), named in zip(steps, STEPS):
        assert f"`{named}`" in step


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("checklist") / "repo"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True,
                             text=True).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file() and not name.startswith("docs/figures/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    before = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    # step 1: the module; step 2: the registry entry; step 3: its test
    (root / STEPS["src/bnnprobe/estimators/<module>.py"]).write_text(MODULE)
    registry = root / STEPS["src/bnnprobe/estimators/registry.py"]
    anchor = "FAMILIES: dict[str, Family] = {f.name: f for f in [\n"
    assert anchor in registry.read_text()
    registry.write_text(registry.read_text().replace(anchor, anchor + ENTRY))
    (root / STEPS["tests/"]).write_text(TEST)
    after = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == set(STEPS.values())
    return root


def run(root: Path, *args, check=True):
    env = {**os.environ, "PYTHONPATH": str(root / "src")}  # the copy's package, not the installed checkout
    done = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def test_the_registry_tests_and_its_own_pass_on_the_toy_family(copy):
    done = run(copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "toy", "tests/test_registry.py",
               "tests/test_toy.py")
    passed = int(re.search(r"(\d+) passed", done.stdout).group(1))
    over_every_family = (copy / "tests/test_registry.py").read_text().count('parametrize("name", sorted(FAMILIES))')
    assert over_every_family >= 3 and passed == over_every_family + 1 and "failed" not in done.stdout
    where = run(copy, "-c", "import bnnprobe; print(bnnprobe.__file__)").stdout.strip()
    assert Path(where).is_relative_to(copy)


def test_the_config_derives_its_section_and_the_tiny_probe_runs_it(copy):
    estimators = "estimators=[cdg, nes-10, ste-vanilla, guided-es, toy]"
    refused = run(copy, "-m", "bnnprobe.config", ".test/config.yaml", "--config", estimators, "toy={scale: -1}",
                  check=False)
    assert refused.returncode == 1 and "'toy.scale'" in refused.stderr
    sweeps = [f"results/probe/sweeps/{grid}/toy/dim{dim}.csv" for grid in ("coarse", "fine") for dim in (2, 3)]
    run(copy, "-m", "snakemake", "--cores", "2", "--configfile", ".test/config.yaml", "--config", estimators,
        "--", *sweeps)
    rows = pd.concat(pd.read_csv(copy / path) for path in sweeps)
    assert set(rows["estimator"]) == {"toy"} and set(rows["dim"]) == {2, 3} and rows["loss_decrease"].notna().all()
    assert set(rows["seed"]) == {0, 1} and rows["cos_to_cdg"].notna().any()
    assert (rows["cos_to_cdg"].dropna().abs() <= 1 + 1e-6).all()  # NaN where CDG's gradient of a layer is 0
