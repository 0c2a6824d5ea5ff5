"""Estimator names and the config values each one depends on (no torch: the Snakefile imports this).

Names: ``cdg``, ``nes-<population>``, ``ste-<variant>`` (vanilla, steep, swishsign,
polynomial) and ``guided-es``.
"""

from __future__ import annotations

import re

STE_VARIANTS = ("vanilla", "steep", "swishsign", "polynomial")

NAME_PATTERN = re.compile(r"^(cdg|nes-[0-9]+|ste-(vanilla|steep|swishsign|polynomial)|guided-es)$")

# The library modules each estimator family runs, for Snakemake to re-run jobs when they change.
FAMILY_MODULES = {
    "cdg": ["estimators/cdg.py"],
    "nes": ["estimators/es.py"],
    "ste": ["estimators/ste.py", "binary.py"],
    "guided-es": ["estimators/es.py", "estimators/ste.py", "binary.py"],
}


def family(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"unknown estimator {name!r}: expected cdg, nes-<even population>, guided-es or "
            f"ste-<{'|'.join(STE_VARIANTS)}>"
        )
    return "nes" if name.startswith("nes-") else "ste" if name.startswith("ste-") else name


def settings_for(name: str, config: dict) -> dict:
    """The config values estimator ``name`` depends on, and nothing else.

    Snakemake receives exactly this as the gradient rule's params, so changing, say,
    NES sigma re-runs the NES jobs and leaves CDG and STE untouched.
    """
    fam = family(name)
    if fam == "cdg":
        return {"eps": float(config["cdg"]["eps"]), "scheme": config["cdg"]["scheme"]}
    if fam == "nes":
        return {"population": int(name.split("-", 1)[1]), "sigma": float(config["nes"]["sigma"]),
                "fitness_shaping": bool(config["nes"]["fitness_shaping"])}
    variant = name.split("-", 1)[1] if fam == "ste" else None
    surrogate = {}
    if variant in ("steep", None):
        surrogate["steep_k"] = float(config["ste"]["steep_k"])
    if variant in ("swishsign", None):
        surrogate["swishsign_beta"] = float(config["ste"]["swishsign_beta"])
    if fam == "ste":
        return {"variant": variant, **surrogate}
    g = config["guided_es"]
    return {"population": int(g["population"]), "sigma": float(g["sigma"]), "alpha": float(g["alpha"]),
            "beta": float(g["beta"]), "guides": list(g["guides"]), **surrogate}
