"""Every estimator family, declared once (torch-free: the Snakefile and the config check import it).

A *family* is a set of estimator names that share one definition: ``nes-500`` and ``nes-2000``
are the family ``nes`` at two populations. Each entry says how its names are written, which
config section holds its options and which knob (sigma or eps) is its study axis, how a name and
the config become the settings of one estimate, which module computes it, how many loss
evaluations one estimate takes by definition, whether it wants a GPU and whether it draws noise.

Everything else is derived from this table: the name and instance regexes (the config check and
the wildcard constraints), schedule parsing, the settings a job receives as params, the code a
job tracks (its module and what that imports), the GPU a rule asks for, and the cost model.

To add a family: write ``estimators/<module>.py`` with ``compute(problem, settings, seed_parts)``
returning the loss gradient (or ``(gradient, extras)``), add an entry to :data:`FAMILIES` with a worked
example of its cost counted by hand (:class:`Count`) and its config section's keys (``options``: the
config schema derives the section from them), and a test (``docs/architecture.md`` has the checklist). An
optimiser of its own (``optimiser``) also has ``train_step``; one with no one-step gradient
(``training_only``) is refused in the probes' estimator lists by the config check.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

STE_VARIANTS = ("vanilla", "steep", "swishsign", "polynomial", "identity")


def _count(name: str) -> int:
    """The number a name ends with: ``nes-500`` -> 500."""
    return int(name.rsplit("-", 1)[1])


def default_population(n: int) -> int:
    """SNES's default population for n parameters (Schaul et al. 2011), 4 + floor(3 ln n), rounded up to an
    even number (antithetic pairs)."""
    import math

    size = 4 + math.floor(3 * math.log(max(n, 1)))
    return size + size % 2


def _surrogate(config: dict, variant: str | None) -> dict:
    """The surrogate parameters an STE variant reads (guided ES, ``variant`` None, reads both)."""
    out = {}
    if variant in ("steep", None):
        out["steep_k"] = float(config["ste"]["steep_k"])
    if variant in ("swishsign", None):
        out["swishsign_beta"] = float(config["ste"]["swishsign_beta"])
    return out


def _move_scale(section: dict) -> dict:
    """The move scale of a particle or Markov-chain optimiser and its half-life (null: constant)."""
    half_life = section["sigma_half_life"]
    return {"sigma": float(section["sigma"]), "sigma_half_life": None if half_life is None else float(half_life)}


@dataclass(frozen=True)
class Count:
    """A worked example of a family's cost, counted by hand from its definition: estimator ``name`` with
    the config's settings updated by ``settings``, on ``n_coords`` coordinates, takes ``loss_evals`` loss
    evaluations and ``backward_passes`` backprop passes (the registry's tests check the declared
    formulas against it)."""

    name: str
    n_coords: int
    loss_evals: int
    backward_passes: int = 0
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """One estimator family (see the module docstring)."""

    name: str
    pattern: str  # the regex of its names, no anchors, no groups
    module: str  # bnnprobe.estimators.<module>.compute(problem, settings, seed_parts)
    settings: Callable[[str, float | None, dict], dict]  # (name, knob value or None, config) -> settings
    loss_evals: Callable[[dict, int], int]  # (settings, coordinates) -> loss evaluations of one estimate
    example: str  # a name of the family, the one the cost model measures
    knob: str | None = None  # its study axis: "sigma" or "eps"
    section: str | None = None  # its config section (the one that holds the knob, if it has one)
    count: str | None = None  # what the number in its names counts
    pairs: bool = True  # that number is an even number >= 2 (antithetic pairs), else any number >= 1
    backward_passes: Callable[[dict], int] = lambda settings: 0  # backprop passes (STE gradients) of one estimate
    gpu: bool = False  # worth a GPU when the study has one (many loss evaluations per estimate)
    stochastic: bool = False  # draws noise (seeded from the job's seed parts)
    closed_form_only: bool = False  # needs the MLP's closed form: not on a ResNet layer
    # updates the weights itself in training, not by SGD/Adam: its module has
    # train_step(problem, settings, lr, state, seed_parts) -> (new weights, new state)
    optimiser: bool = False
    counted: Count | None = None  # its worked example (required: see Count)
    # an optimiser with no one-step gradient: the config refuses it in the probes' estimator lists (its
    # compute is one training step's move, which the cost model times)
    training_only: bool = False
    # its config section's keys as JSON-schema properties with their defaults, for a section the schema file
    # does not hold: the schema derives the section from them (bnnprobe.config.read_schema)
    options: dict | None = None
    options_doc: str = ""  # what the section is, for the derived schema's description

    def __post_init__(self):
        if self.counted is None:
            raise ValueError(f"family {self.name} declares no worked example of its cost (counted=Count(...))")
        if self.options is not None and not self.section:
            raise ValueError(f"family {self.name} declares options but no config section to hold them")
        if self.training_only and (not self.optimiser or self.knob):
            raise ValueError(f"family {self.name}: a training-only family is an optimiser without a study axis")

    def work(self, settings: dict, n_coords: int) -> float:
        """Cost of one estimate in loss evaluations, a backprop pass counted as two."""
        return self.loss_evals(settings, n_coords) + 2 * self.backward_passes(settings)


FAMILIES: dict[str, Family] = {f.name: f for f in [
    Family("cdg", r"cdg", "cdg",
           settings=lambda name, eps, config: {"eps": eps, "scheme": config["cdg"]["scheme"]},
           loss_evals=lambda s, n: n + 1 if s["scheme"] == "forward" else 2 * n,
           example="cdg", knob="eps", section="cdg",
           counted=Count("cdg", 10, 11, settings={"scheme": "forward"})),
    Family("nes", r"nes-[0-9]+", "nes",
           settings=lambda name, sigma, config: {"population": _count(name), "sigma": sigma,
                                                 "fitness_shaping": bool(config["nes"]["fitness_shaping"])},
           loss_evals=lambda s, n: s["population"],
           example="nes-64", knob="sigma", section="nes", count="population", gpu=True, stochastic=True,
           counted=Count("nes-10", 7, 10)),
    Family("nes-coord", r"nes-coord-[0-9]+", "nes_coord",
           settings=lambda name, sigma, config: {"samples": _count(name), "sigma": sigma},
           loss_evals=lambda s, n: s["samples"] * n,
           example="nes-coord-500", knob="sigma", section="nes", count="samples per coordinate", gpu=True,
           stochastic=True,
           counted=Count("nes-coord-10", 7, 70)),
    Family("ste", rf"ste-(?:{'|'.join(STE_VARIANTS)})", "ste",
           settings=lambda name, _, config: {"variant": name.split("-", 1)[1],
                                             **_surrogate(config, name.split("-", 1)[1])},
           loss_evals=lambda s, n: 1, backward_passes=lambda s: 1,
           example="ste-vanilla",
           counted=Count("ste-steep", 7, 1, 1)),
    Family("guided-es", r"guided-es", "guided_es",
           settings=lambda name, sigma, config: {
               "population": int(config["guided_es"]["population"]), "sigma": sigma,
               "alpha": float(config["guided_es"]["alpha"]), "beta": float(config["guided_es"]["beta"]),
               "guides": list(config["guided_es"]["guides"]), **_surrogate(config, None)},
           loss_evals=lambda s, n: s["population"] + len(s["guides"]), backward_passes=lambda s: len(s["guides"]),
           example="guided-es", knob="sigma", section="guided_es", gpu=True, stochastic=True,
           counted=Count("guided-es", 7, 12, 2, {"population": 10, "guides": ["vanilla", "steep"]})),
    Family("fogzo", r"fogzo-[0-9]+", "fogzo",
           settings=lambda name, eps, config: {"directions": _count(name), "eps": eps,
                                               "beta": float(config["fogzo"]["beta"]),
                                               "beta_schedule": config["fogzo"]["beta_schedule"],
                                               "guide": config["fogzo"]["guide"], **_surrogate(config, None)},
           loss_evals=lambda s, n: 2 * s["directions"] + 1, backward_passes=lambda s: 1,
           example="fogzo-4", knob="eps", section="fogzo", count="directions", pairs=False, stochastic=True,
           counted=Count("fogzo-4", 7, 9, 1)),
    # snes alone: its authors' default population for the problem's size (resolved where n is known)
    Family("snes", r"snes(?:-[0-9]+)?", "snes",
           settings=lambda name, sigma, config: {"samples": _count(name) if name != "snes" else None,
                                                 "sigma": sigma,
                                                 "fitness_shaping": bool(config["snes"]["fitness_shaping"]),
                                                 "eta_sigma": config["snes"]["eta_sigma"]},
           loss_evals=lambda s, n: s["samples"] or default_population(n),
           example="snes-64", knob="sigma", section="snes", count="samples", gpu=True, stochastic=True,
           optimiser=True,
           counted=Count("snes-10", 7, 10)),
    Family("stochastic-ste", r"stochastic-ste-[0-9]+", "stochastic_ste",
           settings=lambda name, _, config: {"draws": _count(name), "noise": config["stochastic_ste"]["noise"],
                                             "scale": float(config["stochastic_ste"]["scale"])},
           loss_evals=lambda s, n: s["draws"], backward_passes=lambda s: s["draws"],
           example="stochastic-ste-4", section="stochastic_ste", count="draws", pairs=False, stochastic=True,
           counted=Count("stochastic-ste-3", 7, 3, 3)),
    Family("span", r"span-[0-9]+", "span_search",
           settings=lambda name, sigma, config: {
               "population": _count(name), "sigma": sigma, "density": config["span"]["density"],
               "full_space": float(config["span"]["full_space"]), "guides": list(config["span"]["guides"]),
               **_surrogate(config, None)},
           loss_evals=lambda s, n: s["population"] + len(s["guides"]), backward_passes=lambda s: len(s["guides"]),
           example="span-64", knob="sigma", section="span", count="population", gpu=True, stochastic=True,
           counted=Count("span-10", 7, 12, 2, {"guides": ["vanilla", "identity"]})),
    Family("smc", r"smc-[0-9]+", "smc",
           settings=lambda name, _, config: {"particles": _count(name), **_move_scale(config["smc"])},
           loss_evals=lambda s, n: s["particles"],
           example="smc-64", section="smc", count="particles", pairs=False, gpu=True, stochastic=True,
           optimiser=True, training_only=True,
           counted=Count("smc-10", 7, 10)),
    Family("metropolis", r"metropolis-[0-9]+", "metropolis",
           settings=lambda name, _, config: {"proposals": _count(name), **_move_scale(config["metropolis"])},
           loss_evals=lambda s, n: s["proposals"] + 1,
           example="metropolis-8", section="metropolis", count="proposals", pairs=False, stochastic=True,
           optimiser=True, training_only=True,
           counted=Count("metropolis-8", 7, 9),
           options={"sigma": {"type": "number", "exclusiveMinimum": 0, "default": 0.01,
                              "description": "the proposal's initial standard deviation"},
                    "sigma_half_life": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 1000,
                                        "description": "steps over which the proposal width halves (the "
                                                       "temperature falls by 4); null keeps both constant"}},
           options_doc="metropolis-<K>, training only: K random-walk Metropolis moves a step, proposal width "
                       "sigma_t = sigma 2^(-t / sigma_half_life), temperature T_t = sigma_t^2 / (2 lr)"),
    Family("smoothed", r"smoothed", "smoothed",
           settings=lambda name, sigma, config: {"sigma": sigma},
           loss_evals=lambda s, n: n + 1,  # computed from the flips like exact CDG, at about its cost
           example="smoothed", knob="sigma", section="smoothed", closed_form_only=True,
           counted=Count("smoothed", 7, 8)),
]}

NAME_REGEX = "|".join(f.pattern for f in FAMILIES.values())
NAME_PATTERN = re.compile(rf"^(?:{NAME_REGEX})$")
_FAMILY_PATTERNS = [(re.compile(rf"^(?:{f.pattern})$"), f) for f in FAMILIES.values()]


def _spell(fam: Family) -> str:
    """How a family's names are written: ``nes-<population>``, ``ste-<vanilla|steep|...>``."""
    optional = fam.pattern.replace("(?:-[0-9]+)?", f"[-<{fam.count}>]")
    return optional.replace("[0-9]+", f"<{fam.count}>").replace("(?:", "<").replace(")", ">")


def _names(fam: Family, number: str) -> list[str]:
    """The family's names, with ``number`` for its count."""
    head, _, alternatives = fam.pattern.replace("(?:-[0-9]+)?", f"-{number}").replace(
        "[0-9]+", number).partition("(?:")
    return [head + a for a in alternatives.rstrip(")").split("|")] if alternatives else [head]


def suggestion(text: str) -> str:
    """``" (did you mean 'ste-vanilla'?)"`` for a misspelled name, or ``""``."""
    head, _, knob = str(text).partition("_")
    if knob and any(pattern.match(head) for pattern, _ in _FAMILY_PATTERNS):
        # an instance name where only an estimator's name is read: its knob comes from the family's section
        return (f" (write the estimator alone, {head!r}: here its {family_of(head).knob or 'setting'} is the "
                f"first value of its section's list, the reference)")
    number = "".join(re.findall(r"[0-9]", text)) or "500"
    known = [name for fam in FAMILIES.values() for name in _names(fam, number)]
    close = difflib.get_close_matches(text, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def family_of(name: str) -> Family:
    """The family of estimator ``name``; a :class:`ValueError` saying the valid spellings if none."""
    for pattern, fam in _FAMILY_PATTERNS:
        if pattern.match(name):
            return fam
    raise ValueError(f"{name!r} is not an estimator{suggestion(str(name))}: write one of {', '.join(map(_spell, FAMILIES.values()))}")


def check_name(name: str) -> Family:
    """:func:`family_of`, and the number in a name is an even count written without leading zeros."""
    fam = family_of(name)
    if fam.count and re.search(r"-[0-9]+$", name):
        prefix, digits = name.rsplit("-", 1)
        count = int(digits)
        if fam.pairs and (count < 2 or count % 2):
            raise ValueError(f"the {fam.count} of {name!r} must be an even number >= 2 (antithetic pairs)")
        if count < 1:
            raise ValueError(f"the {fam.count} of {name!r} must be at least 1")
        if digits != str(count):  # nes-050 and nes-50 would be one estimator computed twice
            raise ValueError(f"write {name!r} as '{prefix}-{count}'")
    return fam


def knob_families() -> dict[str, Family]:
    """The families with a study axis, by name."""
    return {name: f for name, f in FAMILIES.items() if f.knob}


def knob_sections() -> list[tuple[str, str]]:
    """Every (config section, knob) pair that holds a study axis, once each."""
    return list(dict.fromkeys((f.section, f.knob) for f in knob_families().values()))
