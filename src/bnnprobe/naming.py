"""Estimator names as the config writes them, their sigma/eps axes, and the config values each one
depends on (torch-free: the config check and the plan use it).

The names are those of the families of :mod:`bnnprobe.estimators.registry`. Sigma and eps are study
axes: each family's knob (``cdg.eps``, ``nes.sigma``, ...) may be a list. The MLP probe runs every value as
its own *instance*, named ``<estimator>_<knob><value>`` (``nes-500_sigma0.1``, ``cdg_eps0.01``;
an STE has no knob and its instance is its name). The first value of a list is the *reference*
value: the one the other studies (training, layer probe, phase probe) and the main figures use.
An instance name in the MLP probe's ``estimators`` adds one point for that estimator only.
"""

from __future__ import annotations

import re

from .estimators.registry import FAMILIES, NAME_REGEX, NAME_PATTERN, STE_VARIANTS, family_of  # noqa: F401

# a name, or a name with the value of its knob (the instance of one point of a sigma/eps axis)
KNOB_NAMES = sorted({f.knob for f in FAMILIES.values() if f.knob})
_INSTANCE_PARTS = re.compile(
    rf"^(?P<name>{NAME_REGEX})(?:_(?P<knob>{'|'.join(KNOB_NAMES)})(?P<value>[0-9][0-9.e+-]*))?$")


def family(name: str) -> str:
    """The family name of estimator ``name`` (:mod:`bnnprobe.estimators.registry`)."""
    return family_of(name).name


def format_value(value: float) -> str:
    """A knob value as it appears in instance names and paths: ``0.01``, ``0.001``, ``1e-05``."""
    return format(float(value), "g")


def knob_values(config: dict, fam: str) -> list[float]:
    """The values of family ``fam``'s knob (a number or a list in the config), reference first."""
    f = FAMILIES[fam]
    raw = config[f.section][f.knob]
    return [float(v) for v in (raw if isinstance(raw, list) else [raw])]


def reference_value(config: dict, fam: str) -> float:
    return knob_values(config, fam)[0]


def instance(name: str, value: float | None) -> str:
    """The instance name of estimator ``name`` at knob ``value`` (an STE's is its name)."""
    knob = family_of(name).knob
    return f"{name}_{knob}{format_value(value)}" if knob else name


def split_instance(text: str) -> tuple[str, str | None, float | None]:
    """``nes-500_sigma0.1`` -> ``("nes-500", "sigma", 0.1)``; a plain name -> ``(name, None, None)``."""
    match = _INSTANCE_PARTS.match(text) if isinstance(text, str) else None
    if not match:
        family_of(str(text).split("_")[0])  # names what is wrong with the estimator part, if anything
        raise ValueError(f"unknown estimator {text!r}: expected a name (cdg, nes-500, ...) or a name with its "
                         f"knob value (nes-500_sigma0.01, cdg_eps0.01)")
    name, knob, value = match["name"], match["knob"], match["value"]
    if knob is None:
        return name, None, None
    if family_of(name).knob != knob:
        raise ValueError(f"{text!r}: estimator {name} has no knob {knob}")
    return name, knob, float(value)


def settings_for(text: str, config: dict) -> dict:
    """The config values estimator ``text`` depends on, and nothing else: a plain name takes the
    reference value of its knob, an instance name its own.

    Snakemake receives exactly this as the gradient rule's params, so changing, say,
    NES sigma re-runs the NES jobs and leaves CDG and STE untouched.
    """
    name, _, value = split_instance(text)
    fam = family_of(name)
    if fam.knob and value is None:
        value = reference_value(config, fam.name)
    return fam.settings(name, value, config)
