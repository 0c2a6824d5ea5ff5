"""Training the probe's student with any estimator of the registry (or a schedule that switches).

The student starts from the MLP probe's initialisation (:class:`~bnnprobe.mlp.MLPProbe`) of the
same (dim, seed) and learns the same teacher. Step t draws a fresh batch of ``batch_size``
inputs from its own seed ("training-batch", dim, seed, t), takes the gradient estimate of
the estimator in use (seeded by ("training", dim, seed, t)) and applies plain SGD
(``w - lr g``) or Adam. A fixed validation batch of ``val_batch_size`` inputs, the same for
every seed and schedule of a dim, measures the loss every ``eval_every`` steps; a switching
schedule switches at the first evaluation where the loss plateaued
(:func:`~bnnprobe.training.schedule.plateaued`) or at ``switch_at``.

The run checkpoints at every evaluation (weights, optimiser state, curve so far): a killed
job re-run resumes there and ends with the same curve (every column but ``seconds``), since
no random state is carried between steps. It keeps snapshots of the weights for the phase
probe: ``init``, the fractions of training asked for (``f25`` for 0.25), ``plateau`` (the
first plateau, or the switch; the end, with ``reached`` False, when none came) and ``end``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch

from ..device import Compute
from ..estimators import estimate
from ..io import atomic_path, load_torch
from ..mlp.network import MLPSpec, pack, unpack
from ..mlp.problem import MLPBatchProblem, MLPProbe
from ..problem import NonFiniteLossError
from ..seeding import generator
from .schedule import parse_schedule, plateaued

log = logging.getLogger(__name__)
CURVE_COLUMNS = ["step", "estimator", "train_loss", "val_loss", "cumulative_loss_evals", "seconds"]


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a training run depends on (the estimators' settings come separately)."""

    dim: int
    seed: int
    schedule: str
    steps: int
    batch_size: int
    val_batch_size: int
    eval_every: int
    optimizer: str = "sgd"
    lr: float = 0.1
    plateau_window: int = 5
    plateau_rel_tol: float = 0.01
    switch_at: int | None = None
    probe_fractions: tuple[float, ...] = (0.25, 0.5)
    activation: str = "zero_one"
    depth: int = 3
    teacher_seed: int = 0
    init_scale: float = 1.0

    def __post_init__(self):
        parse_schedule(self.schedule)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose sgd or adam")
        if min(self.steps, self.batch_size, self.val_batch_size, self.eval_every, self.plateau_window) < 1:
            raise ValueError(f"invalid TrainingSpec {self}")

    def as_dict(self) -> dict:
        out = asdict(self)
        out["probe_fractions"] = list(self.probe_fractions)
        return out

    def mlp_spec(self, batch_size: int | None = None, num_batches: int = 1) -> MLPSpec:
        """The probe problem of the same (dim, seed): the student's initialisation and the teacher."""
        return MLPSpec(dim=self.dim, seed=self.seed, batch_size=batch_size or self.batch_size,
                       num_batches=num_batches, activation=self.activation, depth=self.depth,
                       teacher_seed=self.teacher_seed, init_scale=self.init_scale)


def phase_name(fraction: float) -> str:
    return f"f{round(fraction * 100):02d}"


def snapshot_steps(spec: TrainingSpec) -> dict[str, int]:
    """The fixed snapshot steps: init, each fraction, end (the plateau is found while training)."""
    steps = {"init": 0}
    for fraction in spec.probe_fractions:
        steps[phase_name(fraction)] = int(round(fraction * spec.steps))
    steps["end"] = spec.steps
    return steps


@dataclass
class TrainingState:
    step: int = 0
    switched: bool = False
    switch_step: int | None = None
    plateau_step: int | None = None
    loss_evals: int = 0
    val_history: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    window_losses: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)
    seconds: float = 0.0
    evaluated_step: int = -1  # the checkpoint is written right after an evaluation: not twice on resume


class StudentTrainer:
    """One training run (:func:`train_student` runs it to the end)."""

    def __init__(self, spec: TrainingSpec, settings: dict[str, dict], compute: Compute):
        self.spec, self.settings, self.compute = spec, settings, compute
        self.schedule = parse_schedule(spec.schedule)
        missing = {self.schedule.first, self.schedule.then} - set(settings) - {None}
        if missing:
            raise ValueError(f"no settings for {sorted(missing)}")
        self.probe = MLPProbe.from_compute(spec.mlp_spec(), compute)
        self.shapes = [tuple(layer.shape) for layer in self.probe.student]
        self.theta = torch.nn.Parameter(pack(self.probe.student).clone())  # float64 master weights, CPU
        if spec.optimizer == "sgd":
            self.optimiser = torch.optim.SGD([self.theta], lr=spec.lr)
        else:
            self.optimiser = torch.optim.Adam([self.theta], lr=spec.lr)
        val_x = torch.randn(spec.val_batch_size, spec.dim, dtype=torch.float64,
                            generator=generator("training-val", spec.dim))
        self.val = self._problem(val_x, "validation batch")
        self.state = TrainingState()

    # ---- problems ----------------------------------------------------------------------------
    def _problem(self, x: torch.Tensor, what: str) -> MLPBatchProblem:
        """The loss of the current weights on inputs ``x``, on the job's device with its fused kernel."""
        layers = [t[0] for t in unpack(self.theta.detach()[None], self.shapes)]
        return self.probe.problem(x, layers, f"training dim={self.spec.dim} seed={self.spec.seed} {what}")

    def batch_problem(self, step: int) -> MLPBatchProblem:
        x = torch.randn(self.spec.batch_size, self.spec.dim, dtype=torch.float64,
                        generator=generator("training-batch", self.spec.dim, self.spec.seed, step))
        return self._problem(x, f"step {step}")

    def val_loss(self) -> float:
        return self.val.loss(self.theta.detach().to(device=self.compute.device, dtype=self.compute.dtype))

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"spec": self.spec.as_dict(), "settings": self.settings, "theta": self.theta.detach().clone(),
                        "optimiser": self.optimiser.state_dict(), "state": asdict(self.state)}, tmp)

    def resume(self, path: Path) -> bool:
        if not path.exists():
            return False
        saved = load_torch(path)
        if saved["spec"] != self.spec.as_dict() or saved["settings"] != self.settings:
            raise ValueError(f"checkpoint {path} was made with other settings; delete it to start over")
        with torch.no_grad():
            self.theta.copy_(saved["theta"])
        self.optimiser.load_state_dict(saved["optimiser"])
        self.state = TrainingState(**saved["state"])
        log.info("resuming %s from %s at step %d", self.spec.schedule, path, self.state.step)
        return True

    # ---- the loop ----------------------------------------------------------------------------
    def _evaluate(self) -> None:
        s, spec = self.state, self.spec
        try:
            val = self.val_loss()
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"{spec.schedule} dim={spec.dim} seed={spec.seed}, step {s.step}: {exc}; "
                                     "lower training.lr") from exc
        s.evaluated_step = s.step
        s.val_history.append(val)
        train = sum(s.window_losses) / len(s.window_losses) if s.window_losses else math.nan
        s.rows.append({"step": s.step, "estimator": self.schedule.estimator_at(s.switched), "train_loss": train,
                       "val_loss": val, "cumulative_loss_evals": s.loss_evals, "seconds": s.seconds})
        s.window_losses = []
        first_phase = not s.switched
        if first_phase and s.plateau_step is None:
            at_fixed = spec.switch_at is not None and s.step >= spec.switch_at
            if (spec.switch_at is None and plateaued(s.val_history, spec.plateau_window, spec.plateau_rel_tol)) \
                    or at_fixed:
                s.plateau_step = s.step
                s.snapshots["plateau"] = {"step": s.step, "theta": self.theta.detach().clone()}
                if self.schedule.switches:
                    s.switched, s.switch_step = True, s.step
                    log.info("%s: switching to %s at step %d (val loss %.6g)", spec.schedule, self.schedule.then,
                             s.step, val)

    def run(self, checkpoint: str | Path) -> "TrainingResult":
        checkpoint = Path(checkpoint)
        self.resume(checkpoint)
        s, spec = self.state, self.spec
        fixed = snapshot_steps(spec)
        started = time.perf_counter() - s.seconds
        while True:
            for phase, step in fixed.items():
                if step == s.step and phase not in s.snapshots:
                    s.snapshots[phase] = {"step": s.step, "theta": self.theta.detach().clone()}
            if (s.step % spec.eval_every == 0 or s.step == spec.steps) and s.evaluated_step != s.step:
                s.seconds = time.perf_counter() - started
                self._evaluate()
                self.save(checkpoint)
                done = s.step / spec.steps
                log.info("%s dim=%d seed=%d: step %d/%d, val loss %.6g (%.1fs, ETA %.0fs)", spec.schedule, spec.dim,
                         spec.seed, s.step, spec.steps, s.val_history[-1], s.seconds,
                         s.seconds / done * (1 - done) if done else math.nan)
            if s.step == spec.steps:
                break
            name = self.schedule.estimator_at(s.switched)
            where = f"{spec.schedule} dim={spec.dim} seed={spec.seed}, step {s.step} ({name})"
            try:
                problem = self.batch_problem(s.step)
                result = estimate(name, problem, self.settings[name],
                                  seed_parts=("training", spec.dim, spec.seed, s.step))
                loss = problem.loss()
            except NonFiniteLossError as exc:
                raise NonFiniteLossError(f"{where}: {exc}; lower training.lr") from exc
            self.compute.synchronize()
            gradient = result.gradient.double().cpu()
            if not (math.isfinite(loss) and bool(torch.isfinite(gradient).all())):
                raise NonFiniteLossError(f"{where}: NaN or infinite loss or gradient; lower training.lr")
            self.optimiser.zero_grad(set_to_none=True)
            self.theta.grad = gradient
            self.optimiser.step()
            s.window_losses.append(loss)
            s.loss_evals += result.n_loss_evals
            s.step += 1
        snapshots = {phase: {**snap, "reached": True} for phase, snap in s.snapshots.items()}
        if "plateau" not in snapshots:  # no plateau within the steps: the end stands in, marked so
            snapshots["plateau"] = {**snapshots["end"], "reached": False}
        return TrainingResult(pd.DataFrame(s.rows, columns=CURVE_COLUMNS), snapshots, s.switch_step, s.plateau_step)


@dataclass
class TrainingResult:
    curve: pd.DataFrame
    snapshots: dict  # phase -> {"step", "theta"}
    switch_step: int | None
    plateau_step: int | None


def train_student(spec: TrainingSpec, settings: dict[str, dict], checkpoint: str | Path,
                  compute: Compute | None = None) -> TrainingResult:
    """Train the student of ``spec`` (see the module docstring); ``settings`` maps each estimator
    of the schedule to its settings (:func:`bnnprobe.naming.settings_for`)."""
    return StudentTrainer(spec, settings, compute or Compute.from_config({"device": "cpu"})).run(checkpoint)
