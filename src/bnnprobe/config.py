"""Config validation: JSON schema (with defaults) plus the checks a schema cannot express.

Used by the Snakefile before any job is planned, and usable on its own::

    from bnnprobe.config import load_config
    config = load_config("config.yaml", overrides="workflow/presets/quick.yaml")
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; the message names the offending key."""


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<top level>"


def deep_update(base: dict, overrides: Mapping) -> dict:
    """Merge ``overrides`` into ``base`` the way Snakemake merges --configfile: dicts recursively, the rest replaced."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def validate_config(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Fill defaults into ``config`` (in place) and check it; raise :class:`ConfigError` naming the key."""
    if not isinstance(config, dict):
        raise ConfigError(f"the config must be a mapping, got {type(config).__name__}")
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft7Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1]
            path.append(missing)
            raise ConfigError(f"invalid config: key '{_key(path)}' is missing (required)")
        raise ConfigError(f"invalid config: key '{_key(path)}': {err.message}")
    _check_semantics(config)
    return config


def _check_semantics(config: dict) -> None:
    for i, name in enumerate(config["estimators"]):
        if name.startswith("nes-"):
            population = int(name.split("-", 1)[1])
            if population < 2 or population % 2:
                raise ConfigError(f"invalid config: key 'estimators[{i}]': NES population of {name!r} must be "
                                  "an even number >= 2 (antithetic pairs)")
    lr = config["lr"]
    if not any(abs(x - lr["quick_check"]) <= 1e-9 * x for x in lr["coarse"]):
        raise ConfigError(f"invalid config: key 'lr.quick_check': {lr['quick_check']} is not on the coarse grid "
                          f"lr.coarse = {lr['coarse']}")
    fine = lr["fine"]
    if fine["mode"] == "fixed" and not fine["low"] < fine["high"]:
        raise ConfigError(f"invalid config: key 'lr.fine.low': {fine['low']} must be below lr.fine.high = {fine['high']}")
    figures = config["figures"]
    if "panels" not in figures:
        figures["panels"] = [{"title": "all estimators", "estimators": list(config["estimators"])}]
    known = set(config["estimators"]) | {"cdg"}
    for i, panel in enumerate(figures["panels"]):
        for j, name in enumerate(panel["estimators"]):
            if name not in known:
                raise ConfigError(f"invalid config: key 'figures.panels[{i}].estimators[{j}]': {name!r} is not "
                                  "in the estimators list")


def load_config(path: str | Path, overrides: str | Path | Mapping | None = None,
                schema_path: Path = SCHEMA_PATH) -> dict:
    try:
        config = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if overrides is not None:
        extra = overrides if isinstance(overrides, Mapping) else yaml.safe_load(Path(overrides).read_text())
        deep_update(config, extra or {})
    return validate_config(config, schema_path)


def probe_estimators(config: dict) -> list[str]:
    """The estimators whose gradients are computed: the configured ones, and CDG as the cosine reference."""
    names = list(config["estimators"])
    return names if "cdg" in names else ["cdg", *names]
