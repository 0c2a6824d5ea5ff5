"""Estimator names, their sigma/eps axes, and the config values each one depends on (no torch: the
Snakefile imports this).

Names: ``cdg``, ``nes-<population>``, ``nes-coord-<samples per coordinate>``, ``smoothed``,
``ste-<variant>`` (vanilla, steep, swishsign, polynomial) and ``guided-es``.

Sigma and eps are study axes: ``cdg.eps``, ``nes.sigma`` (NES and per-parameter NES),
``guided_es.sigma`` and ``smoothed.sigma`` may each be a list. The MLP probe runs every value as
its own *instance*, named ``<estimator>_<knob><value>`` (``nes-500_sigma0.1``, ``cdg_eps0.01``;
an STE has no knob and its instance is its name). The first value of a list is the *reference*
value: the one the other studies (training, layer probe, phase probe) and the main figures use.
An instance name in the MLP probe's ``estimators`` adds one point for that estimator only.
"""

from __future__ import annotations

import re

STE_VARIANTS = ("vanilla", "steep", "swishsign", "polynomial")

NAME_REGEX = r"cdg|smoothed|nes-[0-9]+|nes-coord-[0-9]+|ste-(?:vanilla|steep|swishsign|polynomial)|guided-es"
NAME_PATTERN = re.compile(rf"^(?:{NAME_REGEX})$")
# a name, or a name with the value of its knob (the instance of one point of a sigma/eps axis);
# without groups, so that Snakemake can use it as a wildcard constraint
INSTANCE_REGEX = rf"(?:{NAME_REGEX})(?:_(?:sigma|eps)[0-9][0-9.e+-]*)?"
_INSTANCE_PARTS = re.compile(rf"^(?P<name>{NAME_REGEX})(?:_(?P<knob>sigma|eps)(?P<value>[0-9][0-9.e+-]*))?$")

# The library modules each estimator family runs, for Snakemake to re-run jobs when they change.
FAMILY_MODULES = {
    "cdg": ["estimators/cdg.py"],
    "nes": ["estimators/es.py"],
    "nes-coord": ["estimators/coordinate.py"],
    "smoothed": ["estimators/coordinate.py"],
    "ste": ["estimators/ste.py", "binary.py"],
    "guided-es": ["estimators/es.py", "estimators/ste.py", "binary.py"],
}

# the knob of each family that is a study axis, and the config section that holds it
KNOBS = {"cdg": ("eps", "cdg"), "nes": ("sigma", "nes"), "nes-coord": ("sigma", "nes"),
         "smoothed": ("sigma", "smoothed"), "guided-es": ("sigma", "guided_es")}


def family(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"unknown estimator {name!r}: expected cdg, smoothed, nes-<even population>, "
            f"nes-coord-<even samples>, guided-es or ste-<{'|'.join(STE_VARIANTS)}>"
        )
    if name.startswith("nes-coord-"):
        return "nes-coord"
    return "nes" if name.startswith("nes-") else "ste" if name.startswith("ste-") else name


def format_value(value: float) -> str:
    """A knob value as it appears in instance names and paths: ``0.01``, ``0.001``, ``1e-05``."""
    return format(float(value), "g")


def knob_values(config: dict, fam: str) -> list[float]:
    """The values of family ``fam``'s knob (a number or a list in the config), reference first."""
    knob, section = KNOBS[fam]
    raw = config[section][knob]
    return [float(v) for v in (raw if isinstance(raw, list) else [raw])]


def reference_value(config: dict, fam: str) -> float:
    return knob_values(config, fam)[0]


def instance(name: str, value: float | None) -> str:
    """The instance name of estimator ``name`` at knob ``value`` (an STE's is its name)."""
    fam = family(name)
    if fam not in KNOBS:
        return name
    return f"{name}_{KNOBS[fam][0]}{format_value(value)}"


def split_instance(text: str) -> tuple[str, str | None, float | None]:
    """``nes-500_sigma0.1`` -> ``("nes-500", "sigma", 0.1)``; a plain name -> ``(name, None, None)``."""
    match = _INSTANCE_PARTS.match(text)
    if not match:
        raise ValueError(f"unknown estimator {text!r}: expected a name (cdg, nes-500, ...) or a name with its "
                         "knob value (nes-500_sigma0.01, cdg_eps0.01)")
    name, knob, value = match["name"], match["knob"], match["value"]
    fam = family(name)
    if knob is None:
        return name, None, None
    if fam not in KNOBS or KNOBS[fam][0] != knob:
        raise ValueError(f"{text!r}: estimator {name} has no knob {knob}")
    return name, knob, float(value)


def instances(names: list[str], config: dict) -> list[str]:
    """Every instance of ``names``, in config order without repeats: a plain name gives one per value of
    its knob, an instance name (``nes-500_sigma0.1``: one more point for one estimator) itself."""
    out = []
    for text in names:
        name, knob, _ = split_instance(text)
        fam = family(name)
        if knob is not None or fam not in KNOBS:
            out.append(text)
        else:
            out.extend(instance(name, v) for v in knob_values(config, fam))
    return list(dict.fromkeys(out))


def reference_instance(name: str, config: dict) -> str:
    fam = family(name)
    return instance(name, reference_value(config, fam)) if fam in KNOBS else name


def settings_for(text: str, config: dict) -> dict:
    """The config values estimator ``text`` depends on, and nothing else: a plain name takes the
    reference value of its knob, an instance name its own.

    Snakemake receives exactly this as the gradient rule's params, so changing, say,
    NES sigma re-runs the NES jobs and leaves CDG and STE untouched.
    """
    name, _, value = split_instance(text)
    fam = family(name)
    if fam in KNOBS and value is None:
        value = reference_value(config, fam)
    if fam == "cdg":
        return {"eps": value, "scheme": config["cdg"]["scheme"]}
    if fam == "nes":
        return {"population": int(name.split("-", 1)[1]), "sigma": value,
                "fitness_shaping": bool(config["nes"]["fitness_shaping"])}
    if fam == "nes-coord":
        return {"samples": int(name.rsplit("-", 1)[1]), "sigma": value}
    if fam == "smoothed":
        return {"sigma": value}
    variant = name.split("-", 1)[1] if fam == "ste" else None
    surrogate = {}
    if variant in ("steep", None):
        surrogate["steep_k"] = float(config["ste"]["steep_k"])
    if variant in ("swishsign", None):
        surrogate["swishsign_beta"] = float(config["ste"]["swishsign_beta"])
    if fam == "ste":
        return {"variant": variant, **surrogate}
    g = config["guided_es"]
    return {"population": int(g["population"]), "sigma": value, "alpha": float(g["alpha"]),
            "beta": float(g["beta"]), "guides": list(g["guides"]), **surrogate}
