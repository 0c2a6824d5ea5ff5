"""Invalid configs are rejected with a message naming the key (library level and before any Snakemake job)."""

import copy
import re
import subprocess
import sys

import pytest
import yaml

from bnnprobe.config import ConfigError, load_config, validate_config
from conftest import REPO

BASE = yaml.safe_load((REPO / "config.yaml").read_text())


def broken(edit):
    config = copy.deepcopy(BASE)
    edit(config)
    return config


def _set(path, value):
    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(path):
    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


INVALID = [
    ("unknown estimator", _set(["estimators"], ["cdg", "adam"]), "estimators[1]"),
    ("lr zero", _set(["lr", "coarse"], [0.0, 0.1]), "lr.coarse[0]"),
    ("lr negative", _set(["lr", "coarse"], [0.1, -1.0]), "lr.coarse[1]"),
    ("dim zero", _set(["probe", "dims"], [0, 4]), "probe.dims[0]"),
    ("NES population odd", _set(["estimators"], ["cdg", "nes-501"]), "estimators[1]"),
    ("NES population too small", _set(["estimators"], ["nes-0"]), "estimators[0]"),
    ("missing dims", _delete(["probe", "dims"]), "probe.dims"),
    ("missing lr", _delete(["lr"]), "lr"),
    ("wrong type batch size", _set(["probe", "batch_size"], "large"), "probe.batch_size"),
    ("float seed", _set(["probe", "seeds"], [0, 1.5]), "probe.seeds[1]"),
    ("eps zero", _set(["cdg", "eps"], 0), "cdg.eps"),
    ("sigma negative", _set(["nes", "sigma"], -0.1), "nes.sigma"),
    ("unknown scheme", _set(["cdg", "scheme"], "backward"), "cdg.scheme"),
    ("unknown activation", _set(["probe", "activation"], "relu"), "probe.activation"),
    ("typo key", _set(["probe", "num_batchs"], 3), "probe"),
    ("quick check off grid", _set(["lr", "quick_check"], 0.3), "lr.quick_check"),
    ("guided population odd", _set(["guided_es", "population"], 51), "guided_es.population"),
    ("alpha above one", _set(["guided_es", "alpha"], 1.5), "guided_es.alpha"),
    ("fixed scan reversed", lambda c: c["lr"]["fine"].update(mode="fixed", low=1.0, high=0.01), "lr.fine.low"),
    ("panel names unknown estimator", _set(["figures", "panels"], [{"title": "x", "estimators": ["nes-7"]}]),
     "figures.panels[0].estimators[0]"),
    ("bad device", _set(["compute", "device"], "tpu"), "compute.device"),
    ("layer-probe NES population zero", _set(["layerprobe", "estimators"], ["cdg", "nes-0"]),
     "layerprobe.estimators[1]"),
    ("layer-probe NES population odd", _set(["layerprobe", "estimators"], ["nes-3"]), "layerprobe.estimators[0]"),
    ("layer name unknown", _set(["layerprobe", "layer"], "no_such_layer"), "layerprobe.layer"),
    ("float batch size", _set(["probe", "batch_size"], 1.0e9), "probe.batch_size"),
    ("no finetune runs", _set(["finetune", "runs"], []), "finetune.runs"),
    ("NES name with a leading zero", _set(["estimators"], ["cdg", "nes-50", "nes-050"]), "estimators[2]"),
    ("YAML 1.1 string for a number", _set(["nes", "sigma"], "1e-3"), "nes.sigma"),
]


@pytest.mark.parametrize("name,edit,key", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_config_names_the_key(name, edit, key):
    with pytest.raises(ConfigError) as info:
        validate_config(broken(edit))
    assert f"'{key}" in str(info.value), str(info.value)


def test_defaults_are_filled_and_valid_configs_pass(tmp_path):
    minimal = {"probe": {"dims": [2], "seeds": [0]}, "estimators": ["cdg"], "lr": {"coarse": [0.1]}}
    config = validate_config(minimal)
    assert config["probe"]["batch_size"] == 160000
    assert config["nes"]["sigma"] == 0.01
    assert config["lr"]["fine"]["mode"] == "auto"
    assert config["figures"]["panels"][0]["estimators"] == ["cdg"]
    quick = load_config(REPO / "config.yaml", REPO / "workflow" / "presets" / "quick.yaml")
    assert quick["probe"]["batch_size"] == 8192 and quick["probe"]["dims"] == BASE["probe"]["dims"]


def test_broken_yaml_is_reported(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("probe: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_number_mistakes_say_what_to_write():
    with pytest.raises(ConfigError, match=r"YAML 1.1 reads '1e-3' as a string.*1\.0e-03"):
        validate_config(broken(_set(["nes", "sigma"], "1e-3")))
    with pytest.raises(ConfigError, match=r"whole number: 1000000000"):
        validate_config(broken(_set(["probe", "batch_size"], 1.0e9)))
    # a quoted whole number is not an exponent mistake
    with pytest.raises(ConfigError, match=r"'2' is quoted, so YAML reads it as a string: write 2 without quotes"):
        validate_config(broken(_set(["probe", "batch_size"], "2")))
    # "auto" or a number: the number branch's advice, not only the word's
    with pytest.raises(ConfigError, match=r"'training.lr'.*not one of \['auto'\].*YAML 1.1 reads '1e-3'.*1\.0e-03"):
        validate_config(broken(_set(["training", "lr"], "1e-3")))


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("probe:\n  dims: [2, 4\n  seeds: [0]\nlr: {coarse: [0.1]}\n")
    with pytest.raises(ConfigError, match=r"c\.yaml is not valid YAML, line \d+, column \d+"):
        load_config(path)


def test_layer_names_match_the_model():
    import torch

    from bnnprobe.layerprobe.checks import probe_layers
    from bnnprobe.finetune.resnet import ResNet18

    model = ResNet18(10, width=2, in_channels=3, image_size=32, binary=True)
    expected = [name for name, module in model.named_modules()
                if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))]
    assert sorted(probe_layers()) == sorted(expected)
    for layer in probe_layers():  # every name the check accepts is a layer the probe can use
        assert f"{layer}.weight" in dict(model.named_parameters())


def test_config_check_command(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("estimators: [cdg, nes-3]\n")
    result = subprocess.run([sys.executable, "-m", "bnnprobe.config", str(REPO / "config.yaml"), str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "estimators[1]" in result.stderr
    result = subprocess.run([sys.executable, "-m", "bnnprobe.config", str(REPO / "config.yaml"),
                             str(REPO / "workflow/presets/quick.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_memory_budget_default_follows_the_device():
    import torch

    from bnnprobe.device import resolve_memory_budget

    config = load_config(REPO / "config.yaml")
    assert config["compute"]["memory_budget_mb"] == "auto"
    assert resolve_memory_budget("auto", torch.device("cpu")) == 16
    assert resolve_memory_budget("auto", torch.device("cuda", 0)) == 2048
    assert resolve_memory_budget("auto", torch.device("cpu"), "layer") == 1024
    assert resolve_memory_budget(512, torch.device("cpu")) == 512
    with pytest.raises(ConfigError, match="compute.memory_budget_mb"):
        validate_config(broken(_set(["compute", "memory_budget_mb"], 8)))


BAD_SCHEDULES = [
    ("ste-vanila>nes-50", "'ste-vanila' is not an estimator"),
    ("ste-vanilla>", "empty side"),
    ("ste-vanilla>adam", "'adam' is not an estimator"),
    # an instance name where a schedule reads the estimator's name: say so, not "did you mean nes-50001"
    ("nes-500_sigma0.1", r"write the estimator alone, 'nes-500': here its sigma is the first value"),
]


@pytest.mark.parametrize("schedule,message", BAD_SCHEDULES)
def test_bad_training_schedules_fail_before_any_job(schedule, message):
    with pytest.raises(ConfigError, match=rf"'training.schedules\[1\]'.*{message}"):
        validate_config(broken(_set(["training", "schedules"], ["cdg", schedule])))


def test_training_patience_and_switch_step_are_checked():
    with pytest.raises(ConfigError, match="training.plateau.patience"):
        validate_config(broken(_set(["training", "plateau"], {"patience": 0})))
    with pytest.raises(ConfigError, match="training.switch"):
        validate_config(broken(lambda c: c["training"].update(switch=5000, steps=2000)))
    config = validate_config(broken(lambda c: (c["probe"].update(dims=[2, 8]), c["training"].pop("dims"))))
    assert config["training"]["dims"] == [2, 8] and config["training"]["schedules"][0] == "ste-vanilla"
    assert config["training"]["precision"]["dims"] == [8]  # the largest training dim


BAD_TRAINING = [
    (lambda t: t.update(eval_every=500, steps=100), "training.eval_every.*only at its start and end"),
    (lambda t: t["tuning"].update(seeds=[0, 1000]) if "tuning" in t else t.update(tuning={"seeds": [0, 1000]}), "training.tuning.seeds.*disjoint"),
    (lambda t: t.update(controls=["cdg>ste-vanilla"]), "training.controls\\[0\\]"),
    (lambda t: t.update(lr="fast"), "training.lr"),
    (lambda t: t.update(precision={"dims": [7]}), "training.precision.dims\\[0\\]"),
    (lambda t: t.update(schedules=["ste-vanilla>nes-coord-51"]), "samples per coordinate"),
    # a tolerance of 100 % or more calls every evaluation a plateau
    (lambda t: t.update(plateau={"patience": 5, "rel_tol": 1.5}), "training.plateau.rel_tol"),
    # a rule that needs more evaluations than a run has can never decide a plateau
    (lambda t: t.update(steps=100, eval_every=20, plateau={"patience": 5, "smooth": 10}),
     "training.plateau.smooth.*at most 6"),
    (lambda t: t.update(steps=1000, eval_every=10, precision={"steps": 5000}), "training.precision.steps"),
    (lambda t: t.update(decay={"factor": 1.0}), "training.decay.factor"),
]


@pytest.mark.parametrize("edit,message", BAD_TRAINING)
def test_bad_training_settings_fail_before_any_job(edit, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(broken(lambda c: edit(c["training"])))


AXIS_MISTAKES = [
    ("a value paths cannot name", _set(["nes", "sigma"], [0.01, 0.0123456789]), "nes.sigma.*round it"),
    ("an instance written two ways", _set(["estimators"], ["cdg", "nes-500_sigma0.10"]), "as 'nes-500_sigma0.1'"),
    ("a knob the estimator lacks", _set(["estimators"], ["cdg", "ste-vanilla_sigma0.1"]), "estimators\\[1\\]"),
    ("eps for NES", _set(["estimators"], ["cdg", "nes-500_eps0.1"]), "has no knob eps"),
    ("odd per-parameter samples", _set(["estimators"], ["cdg", "nes-coord-51"]), "samples per coordinate"),
    ("per-parameter samples with a zero", _set(["estimators"], ["cdg", "nes-coord-050"]), "nes-coord-50"),
    ("a step layer beyond the depth", _set(["probe", "step_layers"], ["all", 4]), "probe.step_layers\\[1\\]"),
    ("a step layer named wrongly", _set(["probe", "step_layers"], ["first"]), "probe.step_layers\\[0\\]"),
    ("smoothed on a ResNet layer", _set(["layerprobe", "estimators"], ["cdg", "smoothed"]), "MLP probe only"),
    ("an instance in the layer probe", _set(["layerprobe", "estimators"], ["cdg", "nes-500_sigma0.1"]),
     "layerprobe.estimators\\[1\\]"),
    ("an empty sigma list", _set(["nes", "sigma"], []), "nes.sigma"),
]


@pytest.mark.parametrize("what,edit,message", AXIS_MISTAKES, ids=[m[0] for m in AXIS_MISTAKES])
def test_sigma_eps_axis_mistakes_are_named(what, edit, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(broken(edit))


def test_axes_expand_to_one_instance_per_value():
    from bnnprobe.naming import settings_for, split_instance
    from bnnprobe.plan import Plan

    config = validate_config(broken(lambda c: (c.pop("training"), c.update(
        estimators=["nes-50", "nes-50_sigma0.5", "ste-vanilla", "guided-es"],
        cdg={"eps": [0.01, 1e-05]}, nes={"sigma": [0.01, 0.001]},
        figures={"panels": [{"title": "t", "estimators": ["nes-50"]}]}))))
    plan = Plan.from_config(config)
    assert [i.label for i in plan.mlp_instances] == [
        "cdg_eps0.01", "cdg_eps1e-05", "nes-50_sigma0.01", "nes-50_sigma0.001", "nes-50_sigma0.5", "ste-vanilla",
        "guided-es_sigma0.01", "smoothed_sigma0.01", "smoothed_sigma0.001", "smoothed_sigma0.5"]
    # the smoothed reference follows every sigma in use, the nes list first
    assert config["smoothed"]["sigma"] == [0.01, 0.001, 0.5]
    assert settings_for("cdg_eps1e-05", config)["eps"] == 1e-05
    assert settings_for("nes-50", config)["sigma"] == 0.01  # a plain name: the reference value
    assert split_instance("nes-coord-500_sigma0.1") == ("nes-coord-500", "sigma", 0.1)
    assert plan.reference_values(plan.mlp_instances) == {
        "cdg": 0.01, "guided-es": 0.01, "nes-50": 0.01, "smoothed": 0.01}


BAD_FILES = [
    ("nes:\n  sigma: 0.1\nnes:\n  sigma: 0.2\n", r"c\.yaml is not valid YAML, line 3.*'nes' appears twice \(first at line 1\)"),
    ("probe:\n  batch_size: 10\n  batch_size: 20\n", r"'batch_size' appears twice"),
    ("", r"c\.yaml is empty"),
    ("- a\n- b\n", r"c\.yaml holds a list, not a mapping"),
]


@pytest.mark.parametrize("text,message", BAD_FILES)
def test_config_files_refuse_duplicate_keys_and_non_mappings_naming_the_file(tmp_path, text, message):
    from bnnprobe.config import read_config_file

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_config_file(path)


def test_nested_config_overrides_are_typed_as_yaml_reads_them(tmp_path):
    """Snakemake reads a nested --config value with YAML's base loader (every scalar a string)."""
    import subprocess
    import sys

    from bnnprobe.config import typed_overrides

    assert typed_overrides({"nes": {"sigma": ["0.02", "0.2"], "fitness_shaping": "true"}, "steps": "5",
                            "probe": {"activation": "sign"}}) == {
        "nes": {"sigma": [0.02, 0.2], "fitness_shaping": True}, "steps": "5", "probe": {"activation": "sign"}}
    cmd = [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "probe", "--configfile", str(REPO / ".test" / "config.yaml"),
           "--config", "nes={sigma: [0.02, 0.2]}", "probe={dims: [2, 4]}"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    # 15 instances (nes-10 and nes-coord-10 at both sigmas, the smoothed gradient at those and guided ES's 0.01,
    # cdg at 2 eps, ste-vanilla, guided-es, fogzo-2, snes-10, span-4, stochastic-ste-2): one gradient job each
    assert re.search(r"^probe_gradients\s+15$", result.stdout, flags=re.M), result.stdout


FAILING_LATER = [
    (_set(["estimators"], ["cdg", "nes-50_sigma0"]), r"estimators\[1\].*sigma must be > 0"),
    (_set(["estimators"], ["cdg_eps0", "nes-50"]), r"estimators\[0\].*eps must be > 0"),
    (_set(["nes", "sigma"], float("inf")), r"nes\.sigma.*not a finite number"),
    (_set(["probe", "init_scale"], float("nan")), r"probe\.init_scale.*not a finite number"),
    (_set(["lr", "coarse"], [0.1, float("inf")]), r"lr\.coarse\[1\].*not a finite number"),
    (_set(["compute"], {"device": "cpu", "fused": "on"}), r"compute\.fused.*compute\.device is cpu"),
    (lambda c: c["finetune"].update(dataset="imagefolder"), r"data\.imagefolder\.root.*no root"),
    (lambda c: (c["finetune"].update(dataset="imagefolder"), c["data"]["imagefolder"].update(root="/no/such")),
     r"data\.imagefolder\.root.*/no/such is not a folder"),
    # the same finetune run twice (a list of runs: refused by the check as by the workflow)
    (lambda c: c["finetune"]["runs"].append(dict(c["finetune"]["runs"][0])), r"finetune\.runs.*duplicate runs"),
]


@pytest.mark.parametrize("edit,message", FAILING_LATER)
def test_values_that_would_fail_in_a_job_are_refused_before_it(edit, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(broken(edit))


# "a number or a list of numbers" and patterns: the message gives the reason of the branch the value was
# meant for, not "is not valid under any of the given schemas" or a regex
REASONS = [
    (_set(["nes", "sigma"], 0), r"'nes\.sigma': 0 is less than or equal to the minimum of 0"),
    (_set(["nes", "sigma"], [0.1, 0.1]), r"'nes\.sigma': \[0\.1, 0\.1\] has non-unique elements"),
    (_set(["nes", "sigma"], [0.1, 0]), r"'nes\.sigma\[1\]': 0 is less than or equal to the minimum"),
    (_set(["nes", "sigma"], [[0.1]]), r"'nes\.sigma\[0\]': \[0\.1\] is not of type 'number'"),
    (_set(["nes", "sigma"], True), r"'nes\.sigma': True is not of type number or array"),
    (_set(["nes", "sigma"], []), r"'nes\.sigma': \[\] should be non-empty"),
    (_set(["probe", "step_layers"], [0]), r"'probe\.step_layers\[0\]': 0 is less than the minimum of 1"),
    (_set(["compute", "memory_budget_mb"], 8), r"'compute\.memory_budget_mb': 8 is less than the minimum of 16"),
    (_set(["compute", "device"], "tpu"), r"'compute\.device': 'tpu' is not valid: write auto, cpu, cuda"),
]


@pytest.mark.parametrize("edit,message", REASONS)
def test_messages_give_the_reason(edit, message):
    with pytest.raises(ConfigError, match=message) as info:
        validate_config(broken(edit))
    assert "any of the given schemas" not in str(info.value) and "^(" not in str(info.value)


# --config overrides as a user types them (nested values included)
BAD_OVERRIDES = [
    (["nes={sigma: 0}"], "nes.sigma"),
    (["probe={dims: [0, 4]}"], r"probe.dims\[0\]"),
    (["estimators=[cdg, ste-vanila]"], "did you mean 'ste-vanilla'"),
    (["compute={device: tpu}"], "compute.device"),
    (["steps=5"], "'steps' was unexpected"),
]


def _bad_cases(tmp_path):
    """Every bad case above that a user can write on top of config.yaml: as a config file (--configfile)
    or as --config overrides. (A deleted key cannot be: the merge with config.yaml restores it.)"""
    edits = [edit for _, edit, _ in INVALID if not edit.__qualname__.startswith("_delete")]
    edits += [edit for edit, _ in FAILING_LATER + REASONS] + [edit for _, edit, _ in AXIS_MISTAKES]
    edits += [_set(["training", "schedules"], ["cdg", schedule]) for schedule, _ in BAD_SCHEDULES]
    edits += [(lambda e: lambda c: e(c["training"]))(edit) for edit, _ in BAD_TRAINING]
    texts = [yaml.safe_dump(broken(edit)) for edit in edits] + [text for text, _ in BAD_FILES]
    cases = []
    for i, text in enumerate(texts):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text)
        cases.append(([str(path)], []))
    return cases + [([], overrides) for overrides, _ in BAD_OVERRIDES]


# Snakemake reads every --configfile itself before the Snakefile runs and refuses one that is not a mapping
# with this message, which names no file (docs/configuration.md says so; the check command names it)
SNAKEMAKES_OWN = "Config file must be given as JSON or YAML with keys at top level"


def test_the_check_command_refuses_every_bad_case_naming_it(tmp_path, capsys):
    """python -m bnnprobe.config refuses every bad case of this file, as a config file or as --config overrides,
    with a message (the Snakefile reads, merges and checks through the same function: next test)."""
    from bnnprobe.config import main

    cases = _bad_cases(tmp_path)
    assert len(cases) > 50
    for files, overrides in cases:
        code = main([*files, *(["--config", *overrides] if overrides else [])])
        assert code == 1 and capsys.readouterr().err.strip(), (files, overrides)


def test_snakemake_refuses_a_bad_config_with_the_check_commands_message(tmp_path, capsys):
    """The Snakefile hands assemble_config what Snakemake read (config.yaml, every --configfile in order, the
    --config overrides): on one case of each kind (a file, an override, both, a second file overriding a
    first, a list of runs, a file that is no mapping) Snakemake refuses it before any job, with the message of
    python -m bnnprobe.config."""
    from concurrent.futures import ThreadPoolExecutor

    from bnnprobe.config import main

    def write(name, edit):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(broken(edit)) if callable(edit) else edit)
        return str(path)

    good = write("good.yaml", lambda c: c)
    cases = [([write("file.yaml", _set(["nes", "sigma"], 0))], []),
             ([], ["probe={dims: [0, 4]}"]),
             ([good], ["estimators=[cdg, ste-vanila]"]),
             ([write("first.yaml", _set(["lr", "quick_check"], 0.1)), write("second.yaml", "lr:\n  quick_check: 0.5\n")],
              []),
             ([write("runs.yaml", lambda c: c["finetune"]["runs"].append(dict(c["finetune"]["runs"][0])))], []),
             ([write("list.yaml", "- a\n- b\n")], [])]

    def snakemake(case):
        files, overrides = case
        cmd = [sys.executable, "-m", "snakemake", "--dry-run", "--quiet", "rules", "-s", str(REPO / "Snakefile"),
               "--directory", str(tmp_path / "work")]
        cmd += ["--configfile", *files] * bool(files) + ["--config", *overrides] * bool(overrides)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(snakemake, cases))
    for (files, overrides), run in zip(cases, runs):
        code = main([*files, *(["--config", *overrides] if overrides else [])])
        message = capsys.readouterr().err.strip()
        assert code == 1 and message, (files, overrides)
        output = run.stdout + run.stderr
        expected = SNAKEMAKES_OWN if re.search(r"is empty|not a mapping", message) else message
        assert run.returncode != 0 and expected in output, (message, output[-2000:])
    assert not (tmp_path / "work" / "results").exists()


def test_a_dotted_override_is_told_how_to_set_a_nested_key(capsys):
    """Snakemake's --config takes top-level keys; probe.batch_size=100 is refused with the spelling it reads."""
    from bnnprobe.config import main

    assert main(["--config", "training.plateau.patience=3"]) == 1
    assert "--config 'training={plateau: {patience: 3}}'" in capsys.readouterr().err
    assert main(["--config", "training={plateau: {patience: 3}}"]) == 0  # and that spelling is accepted


def test_the_check_command_names_a_file_it_cannot_read(tmp_path, capsys):
    from bnnprobe.config import main

    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"probe:\n  dims: [\xd0\xff]\n")
    for path, message in [(tmp_path / "none.yaml", "none.yaml does not exist"), (tmp_path, "is a folder"),
                          (binary, "cannot read config file .*b.yaml.*utf-8")]:
        assert main([str(path)]) == 1
        assert re.search(message, capsys.readouterr().err)


@pytest.mark.parametrize("key", [("fogzo", "guide"), ("guided_es", "guides"), ("span", "guides")])
def test_the_ste_variant_options_accept_exactly_the_registrys_variants(key):
    """The schema's STE-variant options come from the registry's one list: each variant is accepted, and a
    name that is not one is refused naming the key."""
    from bnnprobe.estimators.registry import STE_VARIANTS
    one = key[1] == "guide"

    def with_option(value):
        return broken(lambda config: config.setdefault(key[0], {}).update({key[1]: value if one else [value]}))

    for variant in STE_VARIANTS:
        assert validate_config(with_option(variant))[key[0]][key[1]] == (variant if one else [variant])
    with pytest.raises(ConfigError, match=re.escape(f"{key[0]}.{key[1]}")):
        validate_config(with_option("sign"))
