"""Training the probe's student with any estimator of the registry, or a schedule that switches, to convergence.

The student starts from the MLP probe's initialisation (:class:`~bnnprobe.mlp.MLPProbe`) of the
same (dim, seed) and learns the same teacher. Step t draws a fresh batch of ``problem.batch_size``
inputs from its own seed ("training-batch", dim, seed, t), takes the estimate of the estimator in use
(seeded by ("training", dim, seed, t)) and applies SGD (``w - lr g``) or Adam at that segment's step
size. An estimator that is an optimiser of its own (SNES: it adapts a search width per parameter)
updates the weights by its own rule instead, with the step size as its ``lr`` (SNES's eta_mu).

**Three fixed batches per dim**, the same for every seed and schedule: a *validation* batch decides every
decay, convergence and switch (:mod:`bnnprobe.training.stopping`); a separate *test* batch, evaluated at the
same steps, gives the losses the tables compare (a decision never reports on the batch that made it);
``stationarity_batches`` fresh batches measure, at the initialisation and at convergence, the mean of the
run's own estimate (its expected gradient: "stationary" is measured, not assumed).

**Decay to convergence.** Every segment of a run decays its step size by ``decay_factor`` on each plateau,
up to ``reductions`` times; the plateau after the last reduction is its convergence. A single estimator
stops there; the first estimator of a switch, trained alone as a control (``extra_reductions`` > 0),
records its convergence and goes on with that many more reductions (the decay budget the switch's second
estimator gets); a switch ``A>B`` trains A to its convergence (or its first plateau, or the step
``switch``), then B from those weights with a fresh optimiser at B's own step size (``lrs[1]``, tuned at the
switch point) to B's convergence. ``steps`` caps every run: one that reaches it has not converged.

**Cost.** Each evaluation row carries the loss evaluations spent so far by the estimators' definitions
(``cumulative_loss_evals``), the same with a backprop pass counted as two loss evaluations
(``cumulative_cost``: :meth:`~bnnprobe.estimators.registry.Family.work`) and the wall time (``seconds``).

**Weights kept.** ``init``, ``converged`` (the first segment's convergence; for a switch, A's), ``switch``
and ``end``; with ``keep_trajectory`` also the weights at every evaluation (thinned to at most
:data:`TRAJECTORY_LIMIT` by dropping every other one when full), from which the phases of the probe along
training are taken at fractions of the run's own converged step (:func:`phase_snapshots`).

**A switch takes over from its first estimator's own run.** A switch ``A>B`` at A's convergence repeats A's
single run (the control with ``extra_reductions``) step for step up to that convergence: the same batches, noise,
step sizes and decisions. Every single run therefore hands over its state at the evaluation where it converged
(:attr:`TrainingResult.handoff`: the weights, A's optimiser and every record so far, before the decision), and
the switch starts from it (:meth:`StudentTrainer.take_over`) with its own decision at that evaluation: the same
curve, snapshots and events as training the switch from the start (tested), without repeating A's run.

The run checkpoints at every evaluation (weights, optimiser states, the stopping state, the curve so far):
a killed job re-run resumes there and ends with the same curve (every column but ``seconds``), since no
random state is carried between steps.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..device import Compute
from ..estimators import estimate, family_module
from ..estimators.registry import family_of
from ..io import load_checkpoint, save_torch
from ..mlp.network import MLPSpec, pack, unpack
from ..mlp.problem import MLPBatchProblem, MLPProbe
from ..probes import PHASES
from ..problem import NonFiniteLossError
from ..seeding import generator
from .columns import CURVE_COLUMNS
from .schedule import parse_schedule
from .stopping import PlateauRule, Segment, Stopping, StoppingState

log = logging.getLogger(__name__)
OPTIMIZERS = ("sgd", "adam")
TRAJECTORY_LIMIT = 128


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a training run depends on (the estimators' settings come separately).

    ``problem`` is the MLP probe's problem of the run's (dim, seed) with the training batch size
    (``num_batches`` is unused); ``lrs`` holds each segment's starting step size, in schedule order (a switch
    ``A>A`` restarts A at a step size of its own).
    """

    problem: MLPSpec
    schedule: str
    steps: int
    val_batch_size: int
    eval_every: int
    lrs: tuple[float, ...]
    optimizer: str = "sgd"
    patience: int = 10
    rel_tol: float = 0.01
    smooth: int = 1
    decay_factor: float = 0.1
    reductions: int = 2
    switch: str | int = "converged"  # where A>B switches: "converged", "plateau" or a step
    extra_reductions: int = 0  # a single estimator goes on after its convergence for this many more reductions
    keep_trajectory: bool = False
    stationarity_batches: int = 8
    stops: bool = True  # False: no decay, no stopping: the first estimator at its lr for exactly ``steps`` steps

    def __post_init__(self):
        schedule = parse_schedule(self.schedule)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if min(self.steps, self.val_batch_size, self.eval_every) < 1 or self.reductions < 0:
            raise ValueError(f"invalid TrainingSpec {self}")
        if len(self.lrs) != len(schedule.estimators):
            raise ValueError(f"{self.schedule} needs {len(schedule.estimators)} learning rates, got {list(self.lrs)}")
        bad = [lr for lr in self.lrs if not (math.isfinite(lr) and lr > 0)]
        if bad:
            raise ValueError(f"learning rates must be finite and > 0, got {list(self.lrs)}")
        if self.extra_reductions and schedule.switches:
            raise ValueError("a switch does not go on after its convergence (extra_reductions is for single runs)")
        self.stopping()  # the rule and segments are valid

    @property
    def dim(self) -> int:
        return self.problem.dim

    @property
    def seed(self) -> int:
        return self.problem.seed

    def stopping(self) -> Stopping:
        schedule = parse_schedule(self.schedule)
        if schedule.switches:
            segments = (Segment(schedule.first, self.lrs[0], self.reductions if self.switch != "plateau" else 0,
                                end=self.switch),
                        Segment(schedule.then, self.lrs[1], self.reductions))
        else:
            segments = (Segment(schedule.first, self.lrs[0], self.reductions, extra_reductions=self.extra_reductions),)
        return Stopping(segments, PlateauRule(self.patience, self.rel_tol, self.smooth), self.decay_factor)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingSpec":
        values = dict(values)
        values["problem"] = MLPSpec(**values["problem"])
        values["lrs"] = tuple(float(lr) for lr in values["lrs"])
        return cls(**values)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["lrs"] = list(self.lrs)
        return out


@dataclass
class TrainingState:
    step: int = 0
    stopping: StoppingState = field(default_factory=StoppingState)
    loss_evals: int = 0
    cost: float = 0.0
    val_history: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    window_losses: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)  # name -> {"step", "theta"}
    trajectory: list = field(default_factory=list)  # [(step, theta)] at evaluations, thinned
    trajectory_every: int = 1  # every how many evaluations the trajectory keeps one
    evaluations: int = 0
    seconds: float = 0.0
    evaluated_step: int = -1  # the checkpoint is written right after an evaluation: not twice on resume
    optimiser_state: object = None  # an optimiser family's own state (SNES: a search width per weight)
    stopped: bool = False
    handoff: dict | None = None  # a single run's state where it converged, before deciding (a switch takes over)


def _state_from_dict(values: dict) -> TrainingState:
    values = dict(values)
    values["stopping"] = StoppingState(**values["stopping"])
    values["trajectory"] = [tuple(item) for item in values["trajectory"]]
    return TrainingState(**values)


class StudentTrainer:
    """One training run (:func:`train_student` runs it to the end)."""

    def __init__(self, spec: TrainingSpec, settings: dict[str, dict], compute: Compute,
                 start: torch.Tensor | None = None):
        """``start``: the weights to start from (default: the probe's student of the spec's dim and seed)."""
        self.spec, self.settings, self.compute = spec, settings, compute
        self.schedule = parse_schedule(spec.schedule)
        missing = set(self.schedule.estimators) - set(settings)
        if missing:
            raise ValueError(f"no settings for {sorted(missing)}")
        self.stopping = spec.stopping()
        self.probe = MLPProbe.from_compute(spec.problem, compute)
        self.shapes = [tuple(layer.shape) for layer in self.probe.student]
        initial = pack(self.probe.student) if start is None else start.to(torch.float64).cpu()
        self.theta = torch.nn.Parameter(initial.clone())  # float64 master weights, CPU
        # each segment its own optimiser (B starts with a fresh state, at its own step size)
        self.optimisers = [self._optimiser(seg.lr) for seg in self.stopping.segments]
        self.val = self._fixed_problem("training-val", "validation batch")
        self.test = self._fixed_problem("training-test", "test batch")
        self.state = TrainingState()

    def _optimiser(self, lr: float) -> torch.optim.Optimizer:
        if self.spec.optimizer == "sgd":
            return torch.optim.SGD([self.theta], lr=lr)
        return torch.optim.Adam([self.theta], lr=lr)

    # ---- problems ----------------------------------------------------------------------------
    def _problem(self, x: torch.Tensor, what: str, theta: torch.Tensor | None = None) -> MLPBatchProblem:
        """The loss of ``theta`` (default: the current weights) on inputs ``x``, on the job's device."""
        theta = self.theta.detach() if theta is None else theta
        layers = [t[0] for t in unpack(theta[None], self.shapes)]
        return self.probe.problem(x, layers, f"training dim={self.spec.dim} seed={self.spec.seed} {what}")

    def _fixed_problem(self, name: str, what: str) -> MLPBatchProblem:
        x = torch.randn(self.spec.val_batch_size, self.spec.dim, dtype=torch.float64,
                        generator=generator(name, self.spec.dim))
        return self._problem(x, what)

    def batch_problem(self, step: int) -> MLPBatchProblem:
        x = torch.randn(self.spec.problem.batch_size, self.spec.dim, dtype=torch.float64,
                        generator=generator("training-batch", self.spec.dim, self.spec.seed, step))
        return self._problem(x, f"step {step}")

    def _loss_on(self, problem: MLPBatchProblem) -> float:
        return problem.loss(self.theta.detach().to(device=self.compute.device, dtype=self.compute.dtype))

    def val_loss(self) -> float:
        return self._loss_on(self.val)

    def validation_noise(self, batches: int = 8) -> float:
        """The relative spread (std / mean) of the current weights' loss over independent batches of the
        validation batch's size: how far one fixed validation batch may stand from the population loss."""
        losses = torch.tensor([
            self._problem(torch.randn(self.spec.val_batch_size, self.spec.dim, dtype=torch.float64,
                                      generator=generator("training-val-noise", self.spec.dim, k)),
                          f"noise batch {k}").loss()
            for k in range(batches)], dtype=torch.float64)
        return float(losses.std() / losses.mean())

    def expected_estimate(self, theta: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean of estimator ``name``'s estimate at ``theta`` over ``stationarity_batches`` fresh batches of
        the validation batch's size, and the standard error of that mean (per coordinate)."""
        estimates = []
        for k in range(self.spec.stationarity_batches):
            x = torch.randn(self.spec.val_batch_size, self.spec.dim, dtype=torch.float64,
                            generator=generator("training-stationarity", self.spec.dim, self.spec.seed, k))
            problem = self._problem(x, f"stationarity batch {k}", theta)
            estimates.append(estimate(name, problem, self.settings[name],
                                      seed_parts=("stationarity", self.spec.dim, self.spec.seed, k)).gradient.double())
        stacked = torch.stack(estimates)
        sem = stacked.std(dim=0) / math.sqrt(len(estimates)) if len(estimates) > 1 else torch.full_like(stacked[0],
                                                                                                       math.nan)
        return stacked.mean(dim=0), sem

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        save_torch({"spec": self.spec.as_dict(), "settings": self.settings, "theta": self.theta.detach().clone(),
                    "optimisers": [o.state_dict() for o in self.optimisers], "state": asdict(self.state)}, path)

    def resume(self, path: Path) -> bool:
        saved = load_checkpoint(path, lambda c: c["spec"] == self.spec.as_dict() and c["settings"] == self.settings)
        if saved is None:
            return False
        with torch.no_grad():
            self.theta.copy_(saved["theta"])
        for optimiser, state in zip(self.optimisers, saved["optimisers"], strict=True):
            optimiser.load_state_dict(state)
        self.state = _state_from_dict(saved["state"])
        log.info("resuming %s from %s at step %d", self.spec.schedule, path, self.state.step)
        return True

    # ---- the loop ----------------------------------------------------------------------------
    def _keep(self, name: str) -> None:
        self.state.snapshots[name] = {"step": self.state.step, "theta": self.theta.detach().clone()}

    def _keep_trajectory(self) -> None:
        s = self.state
        if not self.spec.keep_trajectory or s.evaluations % s.trajectory_every:
            return
        s.trajectory.append((s.step, self.theta.detach().clone()))
        if len(s.trajectory) >= TRAJECTORY_LIMIT:  # full: keep every other one, and keep half as often from now
            s.trajectory = s.trajectory[::2]
            s.trajectory_every *= 2

    def _record(self, val: float, test: float) -> None:
        s = self.state
        s.evaluated_step = s.step
        s.val_history.append(val)
        train = sum(s.window_losses) / len(s.window_losses) if s.window_losses else math.nan
        # an optimiser family's search width: SNES's state is it, a dict state may name it "sigma"
        width = s.optimiser_state.get("sigma") if isinstance(s.optimiser_state, dict) else s.optimiser_state
        width = torch.tensor([float(width)]) if isinstance(width, (int, float)) else width
        width = width if isinstance(width, torch.Tensor) else None
        seg = self.stopping.current(s.stopping)
        s.rows.append({"step": s.step, "segment": s.stopping.segment, "estimator": seg.estimator,
                       "step_size": self.stopping.lr(s.stopping), "train_loss": train, "val_loss": val,
                       "test_loss": test, "cumulative_loss_evals": s.loss_evals, "cumulative_cost": s.cost,
                       "seconds": s.seconds,
                       # the median of an even count is the mean of the middle two (torch's median is the lower)
                       "sigma_median": float(width.quantile(0.5)) if width is not None else math.nan,
                       "sigma_min": float(width.min()) if width is not None else math.nan,
                       "sigma_max": float(width.max()) if width is not None else math.nan})
        s.window_losses = []

    def _evaluate(self) -> None:
        s, spec = self.state, self.spec
        try:
            val, test = self.val_loss(), self._loss_on(self.test)
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"{spec.schedule} dim={spec.dim} seed={spec.seed}, step {s.step}: {exc}; "
                                     "lower the learning rate") from exc
        self._record(val, test)
        self._keep_trajectory()
        s.evaluations += 1
        if spec.stops:
            self._decide()

    def _decide(self) -> None:
        """Apply the stopping rule's decision after the evaluation just recorded."""
        s, spec = self.state, self.spec
        before = s.stopping.segment
        single = len(self.stopping.segments) == 1
        undecided = copy.deepcopy(s.stopping) if single and "converged" not in s.snapshots else None
        happened = self.stopping.observe(s.stopping, s.step, s.val_history)
        if happened == "converged" and undecided is not None:
            self._hand_off(undecided)
        if happened is None:
            return
        if "converged" not in s.snapshots and Stopping.steps_of(s.stopping, "converged", 0):
            self._keep("converged")
        if s.stopping.segment != before:  # a switch: B starts from here with its own optimiser
            self._keep("switch")
            s.optimiser_state = None
            log.info("%s: switching to %s at step %d (val loss %.6g)", spec.schedule,
                     self.stopping.current(s.stopping).estimator, s.step, s.val_history[-1])
        for group in self.optimisers[s.stopping.segment].param_groups:
            group["lr"] = self.stopping.lr(s.stopping)
        s.stopped = s.stopping.finished

    # ---- a switch taking over from its first estimator's run ---------------------------------------
    HANDOFF_FIELDS = ("problem", "steps", "val_batch_size", "eval_every", "optimizer", "patience", "rel_tol", "smooth",
                      "decay_factor", "reductions", "stationarity_batches", "stops")

    def _hand_off(self, undecided: StoppingState) -> None:
        """Keep the state at this evaluation as it was before the decision (see the module docstring)."""
        state = copy.copy(self.state)
        state.stopping, state.snapshots = undecided, {k: v for k, v in state.snapshots.items() if k == "init"}
        state.trajectory, state.trajectory_every, state.handoff = [], 1, None
        self.state.handoff = {"spec": self.spec.as_dict(),
                              "settings": copy.deepcopy(self.settings[self.schedule.first]),
                              "theta": self.theta.detach().clone(),
                              "optimiser": copy.deepcopy(self.optimisers[0].state_dict()),
                              "state": copy.deepcopy(asdict(state))}

    def take_over(self, handoff: dict) -> None:
        """Start this switch from its first estimator's run where that converged (:attr:`TrainingResult.handoff`):
        its records, weights and optimiser, then this run's own decision at that evaluation. Refused unless that
        run followed the same protocol with the same first estimator, settings and lr."""
        spec, theirs = self.spec.as_dict(), handoff["spec"]
        first = self.schedule.first
        wrong = [k for k in self.HANDOFF_FIELDS if spec[k] != theirs[k]]
        wrong += ["lrs"] if theirs["lrs"][0] != spec["lrs"][0] else []
        wrong += ["schedule"] if theirs["schedule"] != first else []
        wrong += ["settings"] if handoff["settings"] != self.settings[first] else []
        wrong += ["switch"] if not self.schedule.switches or spec["switch"] != "converged" else []
        wrong += ["keep_trajectory"] if spec["keep_trajectory"] else []  # the handed-over state keeps none
        if wrong or self.state.step:
            raise ValueError(f"{self.spec.schedule} dim={self.spec.dim} seed={self.spec.seed} cannot take over from "
                             f"the run of {theirs['schedule']}: {', '.join(wrong) or 'it has started'} differ")
        with torch.no_grad():
            self.theta.copy_(handoff["theta"])
        self.optimisers[0].load_state_dict(copy.deepcopy(handoff["optimiser"]))
        self.state = _state_from_dict(copy.deepcopy(handoff["state"]))
        self._decide()
        log.info("%s dim=%d seed=%d: took over from %s at step %d", self.spec.schedule, self.spec.dim,
                 self.spec.seed, theirs["schedule"], self.state.step)

    def _step(self, name: str, problem: MLPBatchProblem, seed_parts: tuple) -> None:
        """One update of the weights by estimator ``name`` at the current segment's step size."""
        fam = family_of(name)
        settings = self._settings_now(name)
        lr = self.stopping.lr(self.state.stopping)
        if fam.optimiser:  # its own update of the weights and of its state (SNES: a search width per weight)
            mu, self.state.optimiser_state = family_module(fam).train_step(problem, settings, lr,
                                                                           self.state.optimiser_state,
                                                                           (name, *seed_parts))
            if not bool(torch.isfinite(mu).all()):
                raise NonFiniteLossError("NaN or infinite weights")
            with torch.no_grad():
                self.theta.copy_(mu)
        else:
            result = estimate(name, problem, settings, seed_parts=seed_parts)
            self.compute.synchronize()
            gradient = result.gradient.double().cpu()
            if not bool(torch.isfinite(gradient).all()):
                raise NonFiniteLossError("NaN or infinite gradient")
            optimiser = self.optimisers[self.state.stopping.segment]
            optimiser.zero_grad(set_to_none=True)
            self.theta.grad = gradient
            optimiser.step()
        self.state.loss_evals += fam.loss_evals(settings, problem.n_coords)
        self.state.cost += fam.work(settings, problem.n_coords)

    def _settings_now(self, name: str) -> dict:
        """The estimator's settings at this point of training (FOGZO decays its beta over the step cap)."""
        module = family_module(family_of(name))
        at = getattr(module, "settings_at", None)
        return at(self.settings[name], self.state.step / self.spec.steps) if at else self.settings[name]

    def run(self, checkpoint: str | Path | None = None, handoff: dict | None = None) -> "TrainingResult":
        """Train to the end; ``checkpoint`` (a path) makes the run resumable; ``handoff``: a switch's first
        estimator's run where it converged, to start from (:meth:`take_over`)."""
        checkpoint = Path(checkpoint) if checkpoint is not None else None
        resumed = checkpoint is not None and self.resume(checkpoint)
        if handoff is not None and not resumed:
            self.take_over(handoff)
        s, spec = self.state, self.spec
        started = time.perf_counter() - s.seconds
        while True:
            if s.step == 0 and "init" not in s.snapshots:
                self._keep("init")
            if (s.step % spec.eval_every == 0 or s.step == spec.steps) and s.evaluated_step != s.step:
                s.seconds = time.perf_counter() - started
                self._evaluate()
                if checkpoint is not None:
                    self.save(checkpoint)
                done = s.step / spec.steps
                log.info("%s dim=%d seed=%d: step %d/%d, val loss %.6g, step size %.3g (%.1fs, ETA <= %.0fs)",
                         spec.schedule, spec.dim, spec.seed, s.step, spec.steps, s.val_history[-1],
                         self.stopping.lr(s.stopping), s.seconds, s.seconds / done * (1 - done) if done else math.nan)
            if s.step == spec.steps or s.stopped:
                break
            name = self.stopping.current(s.stopping).estimator
            where = f"{spec.schedule} dim={spec.dim} seed={spec.seed}, step {s.step} ({name})"
            try:
                problem = self.batch_problem(s.step)
                loss = problem.loss()
                self._step(name, problem, ("training", spec.dim, spec.seed, s.step))
            except NonFiniteLossError as exc:
                raise NonFiniteLossError(f"{where}: {exc}; lower the learning rate") from exc
            if not math.isfinite(loss):
                raise NonFiniteLossError(f"{where}: NaN or infinite loss; lower the learning rate")
            s.window_losses.append(loss)
            s.step += 1
        self._keep("end")
        return TrainingResult(pd.DataFrame(s.rows, columns=CURVE_COLUMNS), dict(s.snapshots), list(s.trajectory),
                              list(s.stopping.events), self.stationarity(), s.handoff)

    def stationarity(self) -> dict:
        """The norm of the mean of the run's own estimate over fresh batches at its converged weights (or its
        last, if it did not converge) relative to the same at the initialisation, and the norm of that mean's
        standard error (its noise floor), relative likewise. Empty for an optimiser family or with no batches."""
        name = self.stopping.segments[0].estimator
        if not self.spec.stationarity_batches or family_of(name).optimiser:
            return {}
        at = self.state.snapshots.get("converged", self.state.snapshots["end"])
        init_mean, _ = self.expected_estimate(self.state.snapshots["init"]["theta"], name)
        end_mean, end_sem = self.expected_estimate(at["theta"], name)
        base = float(init_mean.norm())
        return {"expected_grad_norm_init": base, "expected_grad_norm_converged": float(end_mean.norm()),
                "expected_grad_ratio": float(end_mean.norm()) / base if base else math.nan,
                "expected_grad_sem_ratio": float(end_sem.norm()) / base if base else math.nan}


@dataclass
class TrainingResult:
    curve: pd.DataFrame
    snapshots: dict  # name -> {"step", "theta"}: init, converged, switch, end
    trajectory: list  # [(step, theta)] with keep_trajectory
    events: list  # (step, what, segment): decay, converged, plateau, switch, end
    stationarity: dict = field(default_factory=dict)
    handoff: dict | None = None  # a single run's state where it converged, for a switch to take over

    def first(self, what: str, segment: int | None = None) -> int | None:
        """The step of the first event ``what`` (of ``segment`` only, if given), or None."""
        steps = [step for step, kind, seg in self.events if kind == what and (segment is None or seg == segment)]
        return steps[0] if steps else None

    @property
    def converged_step(self) -> int | None:
        """Where the first segment converged: a single run's convergence, a switch's first estimator's."""
        return self.first("converged", 0)

    @property
    def then_converged_step(self) -> int | None:
        """Where a switch's second estimator converged."""
        return self.first("converged", 1)

    @property
    def switch_step(self) -> int | None:
        return self.first("switch")

    @property
    def finished(self) -> bool:
        """The run stopped by its own rule (else it reached the step cap first)."""
        return self.first("end") is not None

    @property
    def end_step(self) -> int:
        return int(self.snapshots["end"]["step"])


def phase_snapshots(result: TrainingResult, spec: TrainingSpec) -> dict:
    """The weights at each probe phase (:data:`bnnprobe.probes.PHASES`: fractions of the run's own converged
    step), taken from the trajectory at the evaluation nearest each fraction (the earlier on ties);
    ``reached`` is False where the run never converged (its last step stands in for the converged one)."""
    if not result.trajectory:
        raise ValueError(f"{spec.schedule} dim={spec.dim} seed={spec.seed} kept no trajectory to take phases from")
    converged = result.converged_step
    target = converged if converged is not None else result.end_step
    out = {}
    for phase, fraction in PHASES.items():
        want = fraction * target
        step, theta = min(((s, t) for s, t in result.trajectory if s <= target),
                          key=lambda item: (abs(item[0] - want), item[0]))
        out[phase] = {"step": int(step), "theta": theta, "reached": converged is not None}
    return out


def train_student(spec: TrainingSpec, settings: dict[str, dict], checkpoint: str | Path | None = None,
                  compute: Compute | None = None, start: torch.Tensor | None = None,
                  handoff: dict | None = None) -> TrainingResult:
    """Train the student of ``spec`` (see the module docstring); ``settings`` maps each estimator
    of the schedule to its settings (:func:`bnnprobe.naming.settings_for`); ``start``: other weights to
    start from; ``handoff``: a switch's first estimator's run where it converged (:meth:`StudentTrainer.take_over`)."""
    trainer = StudentTrainer(spec, settings, compute or Compute.from_config({"device": "cpu"}), start)
    return trainer.run(checkpoint, handoff)


__all__ = ["CURVE_COLUMNS", "StudentTrainer", "TrainingResult", "TrainingSpec", "phase_snapshots", "train_student"]
