"""Training schedules (torch-free: the config check and the Snakefile use it).

A schedule is one estimator throughout (``ste-vanilla``) or a switch ``A>B``: estimator A to its
convergence (or its first plateau, or a fixed step: ``training.switch``), then estimator B from there,
to its own convergence (:mod:`bnnprobe.training.stopping`). ``A>A`` is the restart control: A started
afresh at the switch point, with the protocol B gets.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..estimators.registry import check_name, family_of


class ScheduleError(ValueError):
    """A schedule string that names no estimator or is malformed."""


@dataclass(frozen=True)
class Schedule:
    first: str
    then: str | None = None

    @property
    def name(self) -> str:
        return self.first if self.then is None else f"{self.first}>{self.then}"

    @property
    def estimators(self) -> list[str]:
        """The estimators the schedule runs, in order (``A>A`` runs A twice)."""
        return [name for name in (self.first, self.then) if name is not None]

    @property
    def switches(self) -> bool:
        return self.then is not None

    @property
    def restarts(self) -> bool:
        """``A>A``: the control that restarts A at the switch point with B's protocol."""
        return self.then is not None and self.then == self.first

    @property
    def is_single_ste(self) -> bool:
        """A run of one STE throughout: the runs the phase probe looks at."""
        return self.then is None and family_of(self.first).name == "ste"


def parse_schedule(text: str) -> Schedule:
    """``ste-vanilla`` or ``ste-vanilla>nes-5000``; raises :class:`ScheduleError` saying what is wrong."""
    if not isinstance(text, str) or not text:
        raise ScheduleError(f"a schedule is an estimator name or 'A>B', got {text!r}")
    parts = text.split(">")
    if len(parts) > 2:
        raise ScheduleError(f"schedule {text!r} switches more than once; write 'A>B'")
    for part in parts:
        if not part:
            raise ScheduleError(f"schedule {text!r} has an empty side: write 'A>B' with two estimator names")
        try:
            check_name(part)
        except ValueError as error:
            raise ScheduleError(f"schedule {text!r}: {error}") from None
    return Schedule(*parts)


def grid_key(name: str, optimizer: str) -> str:
    """The lr grid an estimator is tuned on (``training.tuning.grid``): its own when it is an optimiser of
    its own (SNES), else the training optimiser's."""
    fam = family_of(name)
    return fam.name if fam.optimiser else optimizer
