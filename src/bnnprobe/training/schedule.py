"""Training schedules (torch-free: the config check and the Snakefile use it).

A schedule is one estimator throughout (``ste-vanilla``) or a switch ``A>B``: estimator A
until its validation loss stops improving (the plateau, :func:`plateaued`) or until a
fixed step (``training.switch_at``), then estimator B for the rest of the steps.
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
    def switches(self) -> bool:
        return self.then is not None

    @property
    def is_single_ste(self) -> bool:
        """A run of one STE throughout: the runs the phase probe looks at."""
        return self.then is None and family_of(self.first).name == "ste"

    def estimator_at(self, switched: bool) -> str:
        return self.then if switched and self.then is not None else self.first


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
    if len(parts) == 2 and parts[0] == parts[1]:
        raise ScheduleError(f"schedule {text!r} switches to the estimator it already uses")
    return Schedule(*parts)


def plateaued(val_losses: list[float], window: int, rel_tol: float) -> bool:
    """True once the validation loss improved by less than ``rel_tol`` (relative) over the last
    ``window`` evaluations: ``(L[-window-1] - L[-1]) / |L[-window-1]| < rel_tol``."""
    if window < 1:
        raise ValueError(f"the plateau window must be >= 1 evaluation, got {window}")
    if len(val_losses) <= window:
        return False
    past, now = val_losses[-window - 1], val_losses[-1]
    if past == 0:
        return True  # nothing left to improve
    return (past - now) / abs(past) < rel_tol


SLUG_SWITCH = "_to_"
SLUG_PATTERN = r"[a-z0-9-]+(_to_[a-z0-9-]+)?"


def schedule_slug(text: str) -> str:
    """The schedule as a path component: ``ste-vanilla>nes-500`` -> ``ste-vanilla_to_nes-500``."""
    return parse_schedule(text).name.replace(">", SLUG_SWITCH)


def schedule_from_slug(slug: str) -> str:
    return parse_schedule(slug.replace(SLUG_SWITCH, ">")).name
