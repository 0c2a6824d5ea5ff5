"""Config validation: JSON schema (with defaults) plus the checks a schema cannot express.

One path, :func:`assemble_config`, is used by the Snakefile before any job is planned and by
``python -m bnnprobe.config``, so the two cannot disagree. Usable on its own::

    from bnnprobe.config import load_config
    config = load_config("config.yaml", overrides="workflow/presets/quick.yaml")
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

from .activations import surrogate_noise_std
from .estimators.registry import FAMILIES, STE_VARIANTS, check_name, family_of, knob_sections
from .naming import format_value, instance, knob_values, split_instance

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
SCHEMA_PATH = REPO_CONFIG.parent / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


def _with_defaults(validator_class):
    """The schema's validator that also fills in defaults, and whose "integer" is a real int:
    JSON Schema draft 7 accepts 1.0e+9 as an integer, which later fails in torch.randn."""
    validate_properties = validator_class.VALIDATORS["properties"]
    type_checker = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults}, type_checker=type_checker)


def _looks_like_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False


def _number_advice(value: str) -> str:
    """How to write the number YAML read as the string ``value``."""
    if "e" in value.lower():  # YAML 1.1 reads 1e-3 as a string: it wants a dot and a signed exponent
        return (f"YAML 1.1 reads {value!r} as a string: write a number with a dot and a signed exponent, "
                f"e.g. {float(value):.1e}")
    return f"{value!r} is quoted, so YAML reads it as a string: write {value} without quotes"


def _hint(err) -> str:
    """What to write instead, for the two number mistakes YAML makes easy."""
    if err.validator == "anyOf":  # a number or a list of numbers: the number branch says what to write
        return next((hint for hint in map(_hint, err.context) if hint), "")
    value, expected = err.instance, err.validator_value
    if err.validator == "enum" and isinstance(value, str) and _looks_like_number(value):
        return f" ({_number_advice(value)})"  # e.g. lr: "auto" or a number
    if err.validator != "type" or isinstance(value, bool):
        return ""
    expected = expected if isinstance(expected, list) else [expected]
    if isinstance(value, str) and _looks_like_number(value) and {"number", "integer"} & set(expected):
        return f" ({_number_advice(value)})"
    if isinstance(value, float) and "integer" in expected and value.is_integer():
        return f" (write it as a whole number: {int(value)})"
    return ""


def _specific(err, path: list) -> tuple:
    """For "a number or a list of numbers" (anyOf/oneOf), the error of the branch the value was meant
    for: a branch failing on the value's type is the wrong branch. Returns (error, key path)."""
    while err.validator in ("anyOf", "oneOf") and err.context:
        wrong = {e.schema_path[0] for e in err.context if e.validator == "type" and not e.relative_path}
        meant = [e for e in err.context if e.schema_path[0] not in wrong]
        if not meant:
            return err, path
        err = max(meant, key=lambda e: len(e.relative_path))
        path = [*path, *err.relative_path]
    return err, path


def _message(err) -> str:
    """jsonschema's message, with the reason where it would only say "not valid": the types a value may
    have, or what a pattern stands for (the schema's description) instead of the regex."""
    if err.validator in ("anyOf", "oneOf"):
        types = [e.validator_value for e in err.context if e.validator == "type" and not e.relative_path]
        flat = [t for sub in types for t in (sub if isinstance(sub, list) else [sub])]
        return f"{err.instance!r} is not of type {' or '.join(dict.fromkeys(flat))}"
    if err.validator == "pattern" and "description" in err.schema:
        return f"{err.instance!r} is not valid: write {err.schema['description']}"
    return err.message


def _key(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def typed_overrides(overrides: Mapping) -> dict:
    """Snakemake's ``--config key=value`` overrides with their nested values typed as YAML reads them.

    Snakemake types a top-level value (``--config steps=5``) but reads a nested one with YAML's base
    loader, which leaves every scalar a string (``--config 'nes={sigma: 0.1}'`` gives ``"0.1"``); this reads
    those strings again with the safe loader. A top-level string stays a string."""
    def typed(value, nested):
        if isinstance(value, Mapping):
            return {k: typed(v, True) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [typed(v, True) for v in value]
        if nested and isinstance(value, str):
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            return parsed if isinstance(parsed, (bool, int, float)) or parsed is None else value
        return value

    return {key: typed(value, False) for key, value in overrides.items()}


def deep_update(base: dict, overrides: Mapping) -> dict:
    """Merge ``overrides`` into ``base`` the way Snakemake merges --configfile: dicts recursively, the rest replaced."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def read_schema(schema_path: Path = SCHEMA_PATH, families=None) -> dict:
    """The config schema, with what the registry declares filled in: the STE variants' names, and the
    section of each family that declares its ``options`` (``families``: the registry's by default)."""
    import copy

    schema = yaml.safe_load(Path(schema_path).read_text())
    schema["definitions"]["ste_variant"]["enum"] = list(STE_VARIANTS)
    sections = schema["properties"]
    for fam in (FAMILIES if families is None else families).values():
        if fam.options is None:
            continue
        if fam.section in sections:
            raise ValueError(f"config section {fam.section!r} is declared twice: in {schema_path} and by the "
                             f"options of estimator family {fam.name!r} (keep one)")
        sections[fam.section] = {"type": "object", "additionalProperties": False, "default": {},
                                 "description": fam.options_doc or f"the options of the {fam.name} estimators",
                                 "properties": copy.deepcopy(fam.options)}
    return schema


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Fill defaults into ``config`` (in place) and check it; raise :class:`ConfigError` naming the key."""
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping, got {type(config).__name__}")
    schema = read_schema(schema_path)
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1]
            path.append(missing)
            raise ConfigError(f"invalid config: key '{_key(path)}' is missing (required)")
        err, path = _specific(err, path)
        raise ConfigError(f"invalid config: key '{_key(path)}': {_message(err)}{_hint(err)}")
    _check_semantics(config)
    return config


def _check_estimator_names(names: list[str], key: str, instances_allowed: bool = False) -> None:
    for i, text in enumerate(names):
        try:
            name, knob, value = split_instance(text)
        except ValueError as error:
            raise ConfigError(f"invalid config: key '{key}[{i}]': {error}") from None
        if knob is not None:
            if not value > 0:
                raise ConfigError(f"invalid config: key '{key}[{i}]': {text!r}: its {knob} must be > 0")
            if not instances_allowed:
                raise ConfigError(f"invalid config: key '{key}[{i}]': {text!r}: this study runs each estimator at "
                                  f"the reference (first) value of its {knob}; write {name!r}")
            if instance(name, value) != text:
                raise ConfigError(f"invalid config: key '{key}[{i}]': write {text!r} as {instance(name, value)!r}")
        try:
            fam = check_name(name)
        except ValueError as error:
            raise ConfigError(f"invalid config: key '{key}[{i}]': {error}") from None
        if fam.training_only:  # every list checked here is one a one-step probe runs
            raise ConfigError(f"invalid config: key '{key}[{i}]': {text!r} trains only (an optimiser with no one-step "
                              "gradient for a probe); put it in training.schedules")


def _check_knob_values(config: dict) -> None:
    """sigma/eps values name their jobs' paths (``nes-500_sigma0.01``): each must be written back exactly."""
    for section, knob in knob_sections():
        raw = config[section][knob]
        for value in raw if isinstance(raw, list) else [raw]:
            if float(format_value(value)) != float(value):
                raise ConfigError(f"invalid config: key '{section}.{knob}': {value!r} has more than 6 significant "
                                  f"digits; its paths would read {format_value(value)}: round it")


def _check_finite(node, path=()) -> None:
    """Every number of the config is finite: ``.nan`` or ``.inf`` pass a schema's minimum, then fail in a job."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_finite(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_finite(value, (*path, i))
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(f"invalid config: key '{_key(list(path))}': {node} is not a finite number")


def fogzo_tied_eps(config: dict) -> float:
    """FOGZO's eps as published: the standard deviation of the noise its guide STE stands for on the
    probe's activation ramp (the clipped identity's where the guide stands for none), to 6 digits."""
    ste = config["ste"]
    std = surrogate_noise_std(config["fogzo"]["guide"], config["probe"]["activation"], ste["steep_k"])
    if std is None:
        std = surrogate_noise_std("vanilla", config["probe"]["activation"])
    return float(format_value(std))


def _check_semantics(config: dict) -> None:
    _check_finite(config)
    _check_estimator_names(config["estimators"], "estimators", instances_allowed=True)
    if config["smoothed"]["sigma"] is None:
        # by default the smoothed gradient is computed at every sigma an estimator uses
        values = [v for fam in FAMILIES.values() if fam.knob == "sigma" and fam.name != "smoothed"
                  for v in knob_values(config, fam.name)]
        values += [value for name, knob, value in map(split_instance, config["estimators"]) if knob == "sigma"]
        config["smoothed"]["sigma"] = list(dict.fromkeys(values))
    if config["fogzo"]["eps"] is None:  # tied to the noise the guide STE stands for (estimators/fogzo.py)
        config["fogzo"]["eps"] = fogzo_tied_eps(config)
    _check_knob_values(config)
    depth = config["probe"]["depth"]
    for i, layer in enumerate(config["probe"]["step_layers"]):
        if layer != "all" and layer > depth:
            raise ConfigError(f"invalid config: key 'probe.step_layers[{i}]': layer {layer} of a network of "
                              f"probe.depth = {depth} layers (1 is the first)")
    lr = config["lr"]
    if not any(abs(x - lr["quick_check"]) <= 1e-9 * x for x in lr["coarse"]):
        raise ConfigError(f"invalid config: key 'lr.quick_check': {lr['quick_check']} is not on the coarse grid "
                          f"lr.coarse = {lr['coarse']}")
    fine = lr["fine"]
    if fine["mode"] == "fixed" and not fine["low"] < fine["high"]:
        raise ConfigError(f"invalid config: key 'lr.fine.low': {fine['low']} must be below lr.fine.high = {fine['high']}")
    finetune = config.get("finetune")
    if finetune is not None and not finetune["runs"]:
        raise ConfigError("invalid config: key 'finetune.runs': no runs (give at least one, or drop the "
                          "finetune section)")
    if finetune is not None:
        from .finetune.runs import resolve_runs

        try:
            resolve_runs(finetune)
        except ValueError as error:
            raise ConfigError(f"invalid config: key 'finetune.runs': {error}") from None
    if config.get("layerprobe") is not None:
        from .layerprobe.checks import LayerProbeConfigError, check_layerprobe

        try:
            check_layerprobe(config["layerprobe"], _check_estimator_names)
        except LayerProbeConfigError as error:
            raise ConfigError(f"invalid config: {error}") from None
    if config.get("training") is not None:
        from .training.checks import TrainingConfigError, check_training

        try:
            check_training(config, [n for n in config["estimators"] if split_instance(n)[1] is None],
                           set(probe_estimators(config)), _check_estimator_names)
        except TrainingConfigError as error:
            raise ConfigError(f"invalid config: {error}") from None
    compute = config["compute"]
    if compute["fused"] == "on" and compute["device"] == "cpu":
        raise ConfigError("invalid config: key 'compute.fused': on needs a CUDA device, but compute.device is cpu "
                          "(the Triton kernel runs on a GPU; use auto or off)")
    finetune = config.get("finetune")
    if finetune is not None and finetune["dataset"] == "imagefolder":
        root = config["data"]["imagefolder"]["root"]
        if not root:
            raise ConfigError("invalid config: key 'data.imagefolder.root': finetune.dataset is imagefolder but no "
                              "root is given (a folder with train/<class>/* and val/<class>/*)")
        if not Path(root).is_dir():
            raise ConfigError(f"invalid config: key 'data.imagefolder.root': {root} is not a folder")
    figures = config["figures"]
    if "panels" not in figures:
        figures["panels"] = [{"title": "all estimators", "estimators": list(config["estimators"])}]
    known = {n for n in config["estimators"] if split_instance(n)[1] is None} | {"cdg", "smoothed"}
    for i, panel in enumerate(figures["panels"]):
        for j, name in enumerate(panel["estimators"]):
            if name not in known:
                raise ConfigError(f"invalid config: key 'figures.panels[{i}].estimators[{j}]': {name!r} is not "
                                  "a plain name in the estimators list (panels show each estimator at its "
                                  "reference sigma/eps)")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (the plain loader keeps the last one
    silently: a sigma list could vanish)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (first at line {seen[key] + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path):
    """Parse a YAML file; a syntax error or a key written twice names the file, line and column."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {path} is not valid YAML{where}: {problem}") from None


def read_config_file(path: str | Path) -> dict:
    """A config file: valid YAML (:func:`read_yaml`) whose top level is a mapping of keys."""
    content = read_yaml(path)
    if not isinstance(content, dict):
        what = "is empty" if content is None else f"holds a {type(content).__name__}, not a mapping of keys"
        raise ConfigError(f"config file {path} {what}")
    return content


def assemble_config(configfiles, overrides: Mapping | None = None, schema_path: Path = SCHEMA_PATH) -> dict:
    """The config a run uses, checked: ``configfiles`` merged in order (the repository's config.yaml first,
    then each ``--configfile``), then the ``--config`` ``overrides`` (as Snakemake parsed them), defaults
    filled in. The Snakefile and ``python -m bnnprobe.config`` both call this."""
    config: dict = {}
    for path in configfiles:
        deep_update(config, read_config_file(path))
    deep_update(config, typed_overrides(overrides or {}))
    return validate_config(config, schema_path)


def load_config(path: str | Path, overrides: str | Path | Mapping | None = None,
                schema_path: Path = SCHEMA_PATH) -> dict:
    """A config file with an optional override file (or mapping) on top, checked."""
    if overrides is None or isinstance(overrides, Mapping):
        return assemble_config([path], overrides, schema_path)
    return assemble_config([path, overrides], None, schema_path)


def probe_estimators(config: dict) -> list[str]:
    """The estimators whose gradients are computed: the configured ones, and CDG as the cosine reference."""
    names = list(config["estimators"])
    return names if "cdg" in names else ["cdg", *names]


def mlp_probe_estimators(config: dict) -> list[str]:
    """The MLP probe's estimators: the configured ones with CDG and the smoothed coordinate gradient
    (the two cosine references)."""
    names = probe_estimators(config)
    return names if "smoothed" in names else [*names, "smoothed"]


def main(argv: list[str] | None = None) -> int:
    """``python -m bnnprobe.config [FILE ...] [--config KEY=VALUE ...]``: check the config that
    ``snakemake --configfile FILE ... --config KEY=VALUE ...`` would run with (the repository's
    config.yaml first, as the Snakefile reads it), through the same code."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m bnnprobe.config",
        description="Check a config as Snakemake would merge it: the repository's config.yaml, then each FILE "
                    "(as --configfile), then the --config overrides.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="config files merged on top, in order")
    parser.add_argument("--config", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides, written as for snakemake --config")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    files = [REPO_CONFIG] + [Path(f) for f in args.files if Path(f).resolve() != REPO_CONFIG]
    try:
        overrides = {}
        if args.config:
            from snakemake.cli import parse_config  # Snakemake's own parser: the same values it would pass
            try:
                overrides = parse_config(args.config)
            except ValueError as exc:
                dotted = next((item for item in args.config if "." in item.partition("=")[0]), None)
                hint = ""
                if dotted:  # probe.batch_size=100: Snakemake's keys are top-level, nested values are YAML
                    key, _, value = dotted.partition("=")
                    head, _, rest = key.partition(".")
                    nested = value
                    for part in reversed(rest.split(".")):
                        nested = f"{{{part}: {nested}}}"
                    hint = f" (a nested key is set as its section: --config '{head}={nested}')"
                raise ConfigError(f"{exc}{hint}") from None
        assemble_config(files, overrides)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    names = " + ".join([str(f) for f in files] + [f"--config {' '.join(args.config)}"] * bool(args.config))
    print(f"config OK: {names}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
