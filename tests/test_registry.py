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
        path = REPO / "src" / "bnnprobe" / "estimators" / f"{fam.module}.py"
        assert path.is_file(), fam.name
        assert re.search(r"^def compute\(", path.read_text(), flags=re.M), fam.name
        # an optimiser of its own also steps in training: train_step(problem, settings, lr, state, seed_parts)
        assert bool(re.search(r"^def train_step\(", path.read_text(), flags=re.M)) == fam.optimiser, fam.name
        assert family_of(fam.example) is fam and NAME_PATTERN.match(fam.example)
        assert family_of(fam.counted.name) is fam


class CountingProblem:
    """Counts what an estimator asks of ``problem``: rows of loss evaluations (outermost calls only, so a
    path built on another is counted once), backprop passes, and whether a fast exact path answered."""

    FAST_PATHS = ("exact_cdg", "smoothed_coordinate_gradient", "coordinate_loss_changes")

    def __init__(self, problem):
        self.problem, self.evals, self.passes, self.fast, self._depth = problem, 0, 0, False, 0
        for method, evals, passes in [("losses", lambda a: len(a[0]), None),
                                      ("paired_losses", lambda a: 2 * len(a[1]), None),
                                      ("ste_gradient", lambda a: 1, lambda a: 1),
                                      ("stochastic_ste_gradient", lambda a: a[2], lambda a: a[2])]:
            if hasattr(problem, method):
                setattr(problem, method, self._counted(getattr(problem, method), evals, passes))
        for method in self.FAST_PATHS:
            setattr(problem, method, self._fast(getattr(problem, method)))

    def _counted(self, original, evals, passes):
        def counted(*args):
            if self._depth == 0:
                self.evals += evals(args)
                self.passes += passes(args) if passes else 0
            self._depth += 1
            try:
                return original(*args)
            finally:
                self._depth -= 1
        return counted

    def _fast(self, original):
        def fast(*args):
            out = original(*args)
            self.fast = self.fast or out is not None
            return out
        return fast


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_parses_alone_and_inside_a_schedule(name):
    example = EXAMPLES[name]
    assert parse_schedule(example).first == example
    other = "cdg" if name != "cdg" else "ste-vanilla"
    assert parse_schedule(f"{other}>{example}").then == example
    assert parse_schedule(f"{example}>{other}").first == example


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_declares_its_cost_as_counted_by_hand(name):
    fam = FAMILIES[name]
    worked = fam.counted
    settings = {**settings_for(worked.name, CONFIG), **worked.settings}
    assert fam.loss_evals(settings, worked.n_coords) == worked.loss_evals
    assert fam.backward_passes(settings) == worked.backward_passes


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_computes_with_its_declared_evaluations_and_randomness(name):
    """What the estimate really asks of the problem (counted) is what the family declares; a family
    that a fast exact path answers (CDG, the smoothed gradient, per-parameter NES on the MLP) asks for
    fewer evaluations than its definition, never more."""
    example = EXAMPLES[name]
    fam = FAMILIES[name]
    settings = settings_for(example, CONFIG)
    spec = MLPSpec(dim=3, seed=0, batch_size=128, num_batches=1, depth=2)
    problem = MLPProbe(spec).batch(0)
    counter = CountingProblem(MLPProbe(spec).batch(0))
    first = estimate(example, counter.problem, settings, seed_parts=(0,))
    again = estimate(example, problem, settings, seed_parts=(0,))
    other = estimate(example, problem, settings, seed_parts=(1,))
    n = problem.n_coords
    assert first.gradient.shape == (n,) and torch.isfinite(first.gradient).all()
    assert first.n_loss_evals == fam.loss_evals(settings, n)
    if counter.fast:
        assert counter.evals <= first.n_loss_evals and counter.passes <= fam.backward_passes(settings)
    else:
        assert (counter.evals, counter.passes) == (first.n_loss_evals, fam.backward_passes(settings))
    assert torch.equal(first.gradient, again.gradient)  # seeded
    assert torch.equal(first.gradient, other.gradient) != fam.stochastic


@pytest.mark.parametrize("name", sorted(n for n, f in FAMILIES.items() if f.count))
def test_each_familys_evaluations_grow_with_the_number_in_its_name(name):
    """Counted at two sizes (the families without a fast exact path): the number in the name is what the
    declared cost says it is."""
    fam = FAMILIES[name]
    spec = MLPSpec(dim=2, seed=0, batch_size=32, num_batches=1, depth=2)
    for number in (2, 6):
        example = re.sub(r"\d+$", str(number), EXAMPLES[name])
        counter = CountingProblem(MLPProbe(spec).batch(0))
        settings = settings_for(example, CONFIG)
        estimate(example, counter.problem, settings, seed_parts=(0,))
        if not counter.fast:
            assert counter.evals == fam.loss_evals(settings, counter.problem.n_coords), example


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_has_a_cost_that_grows_with_its_work(name):
    example = EXAMPLES[name]
    rates = {"n_coords": {4: 40}, **{f: {4: (0.0, 1e-6)} for f in FAMILIES}}
    settings = settings_for(example, CONFIG)
    seconds = _gradient_seconds(example, settings, 4, 1000, rates, CONFIG)
    assert seconds > 0
    fam = FAMILIES[name]
    if fam.count:
        bigger = re.sub(r"\d+$", "40", example)
        # the work of each (a backward pass counted as two loss evaluations; the formulas are checked against
        # the worked examples and the counted evaluations above)
        ratio = fam.work(settings_for(bigger, CONFIG), 40) / fam.work(settings, 40)
        assert ratio > 1
        assert _gradient_seconds(bigger, settings_for(bigger, CONFIG), 4, 1000, rates, CONFIG) == \
            pytest.approx(ratio * seconds)


@pytest.mark.parametrize("name", ["nes-7", "nes-coord-3", "nes-050", "snes-9", "fogzo-0", "ste-vanila", "guided_es",
                                  "cdgg", "span-3", "smc-0", "metropolis-0", "stochastic-ste-0", "ste-identiy"])
def test_bad_names_are_refused_with_what_to_write(name):
    with pytest.raises(ValueError) as info:
        check_name(name)
    message = str(info.value)
    assert "even number >= 2" in message or "write" in message or "at least 1" in message
    if name in ("ste-vanila", "guided_es", "cdgg", "ste-identiy"):
        assert "did you mean" in message


def test_gpu_resources_follow_the_registry_flag(tmp_path):
    """A dry run on a GPU config: each gradient and training job asks for a GPU exactly when its family says so."""
    names = [EXAMPLES[n] for n in sorted(FAMILIES) if n != "smoothed" and not FAMILIES[n].training_only]
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
    assert {f for r, f in seen if r == "probe_gradients"} == {n for n, f in FAMILIES.items() if not f.training_only}
    assert {f for r, f in seen if r == "training_run"} == set(FAMILIES)


def test_a_schedule_with_any_family_passes_the_config_check():
    for name in FAMILIES:
        schedule = f"{'cdg' if name != 'cdg' else 'ste-vanilla'}>{EXAMPLES[name]}"
        config = load_config(REPO / "config.yaml", {"training": {"schedules": [schedule], "controls": []}})
        first = schedule.split(">")[0]
        assert config["training"]["schedules"] == [schedule, f"{first}>{first}"]  # and its restart control
    with pytest.raises(ConfigError, match=r"training.schedules\[0\].*'ste-vanila'.*did you mean 'ste-vanilla'"):
        load_config(REPO / "config.yaml", {"training": {"schedules": ["ste-vanila>cdg"], "controls": []}})


TRAINING_ONLY = sorted(n for n, f in FAMILIES.items() if f.training_only)


@pytest.mark.parametrize("name", TRAINING_ONLY)
@pytest.mark.parametrize("key,override", [
    ("estimators[1]", lambda e: {"estimators": ["cdg", e]}),
    ("training.probe.estimators[0]", lambda e: {"training": {"probe": {"estimators": [e]}}}),
    ("layerprobe.estimators[1]", lambda e: {"layerprobe": {"estimators": ["cdg", e]}}),
])
def test_a_training_only_family_is_refused_where_a_probe_would_run_it(name, key, override):
    with pytest.raises(ConfigError, match=rf"key '{re.escape(key)}': '{EXAMPLES[name]}' trains only.*training.schedules"):
        load_config(REPO / "config.yaml", override(EXAMPLES[name]))


def test_a_section_from_a_familys_options_is_in_the_schema_once():
    from dataclasses import replace

    from bnnprobe.config import read_schema

    schema = read_schema()
    derived = [f for f in FAMILIES.values() if f.options is not None]
    assert derived  # at least one family's section comes from its options
    for fam in derived:
        assert schema["properties"][fam.section]["properties"] == fam.options
    twice = {**FAMILIES, "cdg": replace(FAMILIES["cdg"], options={"eps": {"type": "number"}})}
    with pytest.raises(ValueError, match="section 'cdg' is declared twice"):
        read_schema(families=twice)
