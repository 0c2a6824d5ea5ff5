"""Every estimator family of the registry: parsed in a schedule, computed by its module with the declared
loss evaluations and randomness, costed, given a GPU exactly when it declares one, checked by the config."""

import re
import subprocess
import sys
import textwrap

import pytest
import torch

from bnnprobe.config import ConfigError, load_config
from bnnprobe.cost import _gradient_seconds
from bnnprobe.estimators import estimate
from bnnprobe.estimators.registry import FAMILIES, NAME_PATTERN, check_name, family_of
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.naming import settings_for
from bnnprobe.training.schedule import parse_schedule
from conftest import REPO

CONFIG = load_config(REPO / "config.yaml", REPO / ".test" / "config.yaml")
EXAMPLES = {name: fam.example.replace("-500", "-10").replace("-64", "-10") for name, fam in FAMILIES.items()}


def test_every_family_has_a_module_with_compute():
    for fam in FAMILIES.values():
        assert (REPO / "src" / "bnnprobe" / "estimators" / f"{fam.module}.py").is_file(), fam.name
        assert re.search(r"^def compute\(", (REPO / "src" / "bnnprobe" / "estimators" / f"{fam.module}.py")
                         .read_text(), flags=re.M), fam.name
        assert family_of(fam.example) is fam and NAME_PATTERN.match(fam.example)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_parses_alone_and_inside_a_schedule(name):
    example = EXAMPLES[name]
    assert parse_schedule(example).first == example
    other = "cdg" if name != "cdg" else "ste-vanilla"
    assert parse_schedule(f"{other}>{example}").then == example
    assert parse_schedule(f"{example}>{other}").first == example


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_computes_with_its_declared_evaluations_and_randomness(name):
    example = EXAMPLES[name]
    problem = MLPProbe(MLPSpec(dim=3, seed=0, batch_size=128, num_batches=1, depth=2)).batch(0)
    settings = settings_for(example, CONFIG)
    first = estimate(example, problem, settings, seed_parts=(0,))
    again = estimate(example, problem, settings, seed_parts=(0,))
    other = estimate(example, problem, settings, seed_parts=(1,))
    fam = FAMILIES[name]
    assert first.gradient.shape == (problem.n_coords,) and torch.isfinite(first.gradient).all()
    # counted by hand from each definition (n coordinates)
    n = problem.n_coords
    expected = {"cdg": n + 1, "smoothed": n + 1, "nes": 10, "nes-coord": 10 * n, "ste": 1, "snes": 10,
                "fogzo": 2 * 4 + 1,  # 4 directions, each evaluated on both sides, and the STE's forward pass
                "guided-es": CONFIG["guided_es"]["population"] + len(CONFIG["guided_es"]["guides"])}[name]
    assert first.n_loss_evals == expected
    assert torch.equal(first.gradient, again.gradient)  # seeded
    assert torch.equal(first.gradient, other.gradient) != fam.stochastic


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_has_a_cost_that_grows_with_its_work(name):
    example = EXAMPLES[name]
    rates = {"n_coords": {4: 40}, **{f: {4: (0.0, 1e-6)} for f in FAMILIES}}
    settings = settings_for(example, CONFIG)
    seconds = _gradient_seconds(example, settings, 4, 1000, rates, CONFIG)
    assert seconds > 0
    if FAMILIES[name].count:
        bigger = re.sub(r"\d+$", "40", example)
        # work by hand (a backward pass counted as two loss evaluations): 40 against the example's count
        ratio = {"nes": 40 / 10, "nes-coord": 40 / 10, "snes": 40 / 10, "fogzo": (2 * 40 + 1 + 2) / (2 * 4 + 1 + 2)}
        assert _gradient_seconds(bigger, settings_for(bigger, CONFIG), 4, 1000, rates, CONFIG) == \
            pytest.approx(ratio[name] * seconds)


@pytest.mark.parametrize("name", ["nes-7", "nes-coord-3", "nes-050", "snes-9", "fogzo-0", "ste-vanila", "guided_es",
                                  "cdgg"])
def test_bad_names_are_refused_with_what_to_write(name):
    with pytest.raises(ValueError) as info:
        check_name(name)
    message = str(info.value)
    assert "even number >= 2" in message or "write" in message or "at least 1" in message
    if name in ("ste-vanila", "guided_es", "cdgg"):
        assert "did you mean" in message


def test_gpu_resources_follow_the_registry_flag(tmp_path):
    """A dry run on a GPU config: each gradient and training job asks for a GPU exactly when its family says so."""
    names = [EXAMPLES[n] for n in sorted(FAMILIES) if n != "smoothed"]
    override = tmp_path / "gpu.yaml"
    override.write_text(textwrap.dedent(f"""
        estimators: {names}
        compute: {{device: cuda}}
        training: {{schedules: {[EXAMPLES[n] for n in sorted(FAMILIES)]}, controls: [], probe: {{schedules: []}}}}
        """))
    cmd = [sys.executable, "-m", "snakemake", "--dry-run", "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path),
           "probe", "training", "--configfile", str(REPO / ".test" / "config.yaml"), str(override)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = re.findall(r"^rule (probe_gradients|training_run):\n((?:    .*\n?)+)", result.stdout, flags=re.M)
    seen = set()
    for rule, body in jobs:
        estimator = re.search(r"wildcards: .*?(?:estimator|schedule)=([\w.-]+)", body).group(1)
        estimator = estimator.split("_to_")[-1].split("_")[0]
        gpu = int(re.search(r"\bgpu=(\d+)", body).group(1))
        assert gpu == int(family_of(estimator).gpu), (rule, estimator, gpu)
        seen.add((rule, family_of(estimator).name))
    assert {f for r, f in seen if r == "probe_gradients"} == set(FAMILIES)
    assert {f for r, f in seen if r == "training_run"} == set(FAMILIES)


def test_a_schedule_with_any_family_passes_the_config_check():
    for name in FAMILIES:
        schedule = f"{'cdg' if name != 'cdg' else 'ste-vanilla'}>{EXAMPLES[name]}"
        config = load_config(REPO / "config.yaml", {"training": {"schedules": [schedule], "controls": []}})
        assert config["training"]["schedules"] == [schedule]
    with pytest.raises(ConfigError, match=r"training.schedules\[0\].*'ste-vanila'.*did you mean 'ste-vanilla'"):
        load_config(REPO / "config.yaml", {"training": {"schedules": ["ste-vanila>cdg"], "controls": []}})
