"""When a training run decays its step size, when it has converged, when it switches and when it stops.

**Plateau.** On the validation loss averaged over ``smooth`` evaluations (full windows only: the first
average needs ``smooth`` evaluations of the segment), the run has plateaued when the best of the last
``patience`` averages is not below the best before them by more than ``rel_tol`` (relative): the
best-so-far has stopped improving. A spike up cannot trigger it (it reads the best), a steady decline
faster than ``rel_tol`` per ``patience`` evaluations never does, and a loss that merely fluctuates around
a floor stops setting records once averaged. The rule reads one *segment* at a time (the evaluations since
the last change of step size), so a segment needs at least ``smooth + patience`` evaluations before it can
plateau (:attr:`PlateauRule.min_evaluations`).

**Decay and convergence** (:class:`DecayOnPlateau`, the semantics of PyTorch's ``ReduceLROnPlateau`` with
the plateau above as its "no improvement"). At a plateau the step size is multiplied by ``factor`` and a
new segment starts, up to ``reductions`` times; the plateau after the last reduction is *convergence*: the
loss did not improve after the step size was cut as far as allowed. A run that reaches the step cap first
has not converged (``cap_hit``).

**A run's segments** (:class:`Stopping`). A run is a list of :class:`Segment`: an estimator, its starting
step size and how its segment ends. A single estimator has one segment; a switch ``A>B`` has A's segment
(ending at A's convergence, at A's first plateau, or at a fixed step) and B's (a fresh optimiser at B's own
step size, to B's convergence); the first estimator of a switch trained alone as a control is one segment
that goes on after its convergence with ``extra_reductions`` more reductions (the decay budget B gets), and
records where it converged.

Pure Python: the trainer feeds it the validation losses and applies what it says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SWITCH_POINTS = ("converged", "plateau")  # or a fixed step (an int)


@dataclass(frozen=True)
class PlateauRule:
    patience: int
    rel_tol: float
    smooth: int = 1

    def __post_init__(self):
        if self.patience < 1 or self.smooth < 1 or not self.rel_tol >= 0:
            raise ValueError(f"a plateau needs patience >= 1, smooth >= 1 and rel_tol >= 0, got {self}")

    @property
    def min_evaluations(self) -> int:
        """The fewest evaluations of a segment at which it can plateau."""
        return self.smooth + self.patience

    def averages(self, losses: list[float]) -> list[float]:
        """The mean of each full window of ``smooth`` consecutive losses (one per loss from the ``smooth``-th on)."""
        k = self.smooth
        return [sum(losses[i - k + 1:i + 1]) / k for i in range(k - 1, len(losses))]

    def reached(self, losses: list[float]) -> bool:
        """Whether the segment whose validation losses are ``losses`` has plateaued (module docstring)."""
        if len(losses) < self.min_evaluations:
            return False
        values = self.averages(list(losses))
        before, recent = min(values[:-self.patience]), min(values[-self.patience:])
        return recent > before - self.rel_tol * abs(before)


@dataclass(frozen=True)
class Segment:
    """One estimator's part of a run: it starts at ``lr`` with a fresh optimiser and decays on plateau up to
    ``reductions`` times; it ends at its convergence (``end="converged"``), at its first plateau
    (``"plateau"``) or at a fixed step (an int). ``extra_reductions`` > 0 lets it go on after converging
    (recorded) for that many more reductions."""

    estimator: str
    lr: float
    reductions: int
    end: str | int = "converged"
    extra_reductions: int = 0


@dataclass
class StoppingState:
    """Where a run stands (checkpointed with it)."""

    segment: int = 0
    segment_start: int = 0  # index of the segment's first evaluation in the validation history
    reductions: int = 0  # reductions within the segment
    lr_scale: float = 1.0  # the segment's step size is its lr times this
    events: list = field(default_factory=list)  # (step, what, segment): decay, converged, switch, end
    finished: bool = False


@dataclass(frozen=True)
class Stopping:
    """The decisions of one run (module docstring); :meth:`observe` after every evaluation."""

    segments: tuple[Segment, ...]
    rule: PlateauRule
    factor: float = 0.1

    def __post_init__(self):
        if not self.segments or not 0 < self.factor < 1:
            raise ValueError(f"a run needs at least one segment and a decay factor in (0, 1), got {self}")
        for seg in self.segments[:-1]:
            if seg.extra_reductions:
                raise ValueError("only the last segment of a run may go on after converging")
        if self.segments[-1].end != "converged":
            raise ValueError("the last segment of a run ends at its convergence")

    def current(self, state: StoppingState) -> Segment:
        return self.segments[state.segment]

    def lr(self, state: StoppingState) -> float:
        return self.current(state).lr * state.lr_scale

    def observe(self, state: StoppingState, step: int, history: list[float]) -> str | None:
        """Update ``state`` after the evaluation at ``step`` (``history``: every validation loss of the run so
        far, this one last); returns what happened: None, "decay", "converged" (and the run goes on, decaying
        once more), "switch" or "end"."""
        if state.finished:
            return None
        seg = self.current(state)
        last = state.segment == len(self.segments) - 1
        fixed = not isinstance(seg.end, str)
        if fixed and step >= seg.end:
            return self._switch(state, step, len(history) - 1)
        if not self.rule.reached(history[state.segment_start:]):
            return None
        if seg.end == "plateau":
            state.events.append((step, "plateau", state.segment))
            return self._switch(state, step, len(history) - 1)
        happened = "decay"
        if state.reductions == seg.reductions and not self.steps_of(state, "converged", state.segment):
            # the first plateau after the segment's last reduction: converged
            state.events.append((step, "converged", state.segment))
            happened = "converged"
        if state.reductions < seg.reductions + seg.extra_reductions:
            state.reductions += 1
            state.lr_scale *= self.factor
            state.events.append((step, "decay", state.segment))
            state.segment_start = len(history) - 1  # the rule reads the losses from here on
            return happened
        if fixed:  # nothing left to reduce: train on at this step size until the fixed switch step
            state.segment_start = len(history) - 1
            return "converged" if happened == "converged" else None
        if last:
            state.events.append((step, "end", state.segment))
            state.finished = True
            return "end"
        return self._switch(state, step, len(history) - 1)

    def _switch(self, state: StoppingState, step: int, index: int) -> str:
        state.events.append((step, "switch", state.segment))
        state.segment += 1
        state.segment_start, state.reductions, state.lr_scale = index, 0, 1.0
        return "switch"

    @staticmethod
    def steps_of(state: StoppingState, what: str, segment: int | None = None) -> list[int]:
        """The steps of the events ``what`` (of ``segment`` only, if given)."""
        return [step for step, kind, seg in state.events if kind == what and (segment is None or seg == segment)]
