"""Training schedules (torch-free: the config check and the Snakefile use it).

A schedule is one estimator throughout (``ste-vanilla``) or a switch ``A>B``: estimator A
until its validation loss stops improving (the plateau, :func:`plateau_reached`) or until a
fixed step (``training.switch_at``), then estimator B until its own plateau or the step cap.
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
        """The estimators the schedule runs, in order."""
        return [name for name in (self.first, self.then) if name is not None]

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


def running_mean(values: list[float], window: int) -> list[float]:
    """Each value replaced by the mean of it and the ``window - 1`` before it (fewer at the start)."""
    return [sum(values[max(0, i - window + 1):i + 1]) / (i + 1 - max(0, i - window + 1)) for i in range(len(values))]


def plateau_reached(val_losses: list[float], patience: int, rel_tol: float, smooth: int = 1) -> bool:
    """True once the best-so-far validation loss stopped improving: on the loss averaged over the last
    ``smooth`` evaluations, the best of the last ``patience`` evaluations is not below the best before them
    by more than ``rel_tol`` (relative): ``min(S[-patience:]) > min(S[:-patience]) - rel_tol * |min(S[:-patience])|``.

    A rule on the best loss so far cannot be triggered by a spike up; averaging first keeps a loss that
    merely fluctuates from setting new records by chance (the best of a noisy sequence keeps creeping
    down), and a steady decline of more than ``rel_tol`` per ``patience`` evaluations never triggers it."""
    if patience < 1 or smooth < 1:
        raise ValueError(f"the plateau patience and smoothing must be >= 1 evaluation, got {patience}, {smooth}")
    if len(val_losses) < patience + smooth:  # the best before the window is a full average
        return False
    values = running_mean(list(val_losses), smooth) if smooth > 1 else list(val_losses)
    before, recent = min(values[:-patience]), min(values[-patience:])
    return recent > before - rel_tol * abs(before)


def grid_key(name: str, optimizer: str) -> str:
    """The lr grid an estimator is tuned on (``training.tuning.grid``): its own when it is an optimiser of
    its own (SNES), else the training optimiser's."""
    fam = family_of(name)
    return fam.name if fam.optimiser else optimizer


SLUG_SWITCH = "_to_"
SLUG_PATTERN = r"[a-z0-9-]+(_to_[a-z0-9-]+)?"


def schedule_slug(text: str) -> str:
    """The schedule as a path component: ``ste-vanilla>nes-500`` -> ``ste-vanilla_to_nes-500``."""
    return parse_schedule(text).name.replace(">", SLUG_SWITCH)


def schedule_from_slug(slug: str) -> str:
    return parse_schedule(slug.replace(SLUG_SWITCH, ">")).name
