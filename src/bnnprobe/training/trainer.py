"""Training the probe's student with any estimator of the registry, or a schedule that switches.

The student starts from the MLP probe's initialisation (:class:`~bnnprobe.mlp.MLPProbe`) of the
same (dim, seed) and learns the same teacher. Step t draws a fresh batch of ``problem.batch_size``
inputs from its own seed ("training-batch", dim, seed, t), takes the estimate of the estimator in use
(seeded by ("training", dim, seed, t)) and applies SGD (``w - lr g``) or Adam at that estimator's own
learning rate (``lrs``). An estimator that is an optimiser of its own (SNES: it adapts a search width
per parameter) updates the weights by its own rule instead, with ``lr`` as its step size. A fixed
validation batch of ``val_batch_size`` inputs, the same for every seed and schedule of a dim,
measures the loss every ``eval_every`` steps.

**Plateau.** The run has plateaued when, on the validation loss averaged over the last ``smooth``
evaluations, the best of the last ``patience`` evaluations is not below the best before them by more
than ``rel_tol`` (relative): the best-so-far has stopped improving
(:func:`~bnnprobe.training.schedule.plateau_reached`). Every run trains until
its own plateau or the step cap ``steps``, with one exception: the first estimator of a switch,
trained alone (``to_cap``), records its plateau and trains on to the cap, so that the switch can be
compared with it at equal steps. A switch ``A>B`` trains A until A's plateau (or the fixed step
``switch_at``), then B until B's own plateau or the cap.

**Cost.** Each evaluation row carries the loss evaluations spent so far by the estimators'
definitions (``cumulative_loss_evals``), the same with a backprop pass counted as two loss
evaluations (``cumulative_cost``, the cost axis of the study:
:meth:`~bnnprobe.estimators.registry.Family.work`), and the wall time (``seconds``).

The run checkpoints at every evaluation (weights, optimiser state, curve so far): a killed job re-run
resumes there and ends with the same curve (every column but ``seconds``), since no random state is
carried between steps. It keeps snapshots of the weights for the phase probe: ``init``, the
fractions of the cap asked for (``f25`` for 0.25), ``plateau`` (the first plateau, or the switch; the
end, with ``reached`` False, when none came) and ``end``.
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
from ..estimators import estimate, family_module
from ..estimators.registry import family_of
from ..io import load_torch, save_torch
from ..mlp.network import MLPSpec, pack, unpack
from ..mlp.problem import MLPBatchProblem, MLPProbe
from ..problem import NonFiniteLossError
from ..seeding import generator
from .schedule import parse_schedule, plateau_reached

log = logging.getLogger(__name__)
CURVE_COLUMNS = ["step", "estimator", "train_loss", "val_loss", "cumulative_loss_evals", "cumulative_cost", "seconds",
                 "sigma_median", "sigma_min", "sigma_max"]
OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainingSpec:
    """Everything a training run depends on (the estimators' settings come separately).

    ``problem`` is the MLP probe's problem of the run's (dim, seed) with the training batch size
    (``num_batches`` is unused); ``lrs`` maps each estimator of the schedule to its learning rate.
    """

    problem: MLPSpec
    schedule: str
    steps: int
    val_batch_size: int
    eval_every: int
    lrs: dict
    optimizer: str = "sgd"
    patience: int = 10
    rel_tol: float = 0.01
    smooth: int = 1  # the plateau rule reads the validation loss averaged over this many evaluations
    switch_at: int | None = None
    probe_fractions: tuple[float, ...] = (0.25, 0.5)
    to_cap: bool = True  # a single estimator trains on after its plateau (the A of a switch), else it stops there

    def __post_init__(self):
        schedule = parse_schedule(self.schedule)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if min(self.steps, self.val_batch_size, self.eval_every, self.patience) < 1 or not self.rel_tol >= 0:
            raise ValueError(f"invalid TrainingSpec {self}")
        missing = set(schedule.estimators) - set(self.lrs)
        if missing:
            raise ValueError(f"no learning rate for {sorted(missing)}")
        bad = {name: lr for name, lr in self.lrs.items() if not (math.isfinite(lr) and lr > 0)}
        if bad:
            raise ValueError(f"learning rates must be finite and > 0, got {bad}")

    @property
    def dim(self) -> int:
        return self.problem.dim

    @property
    def seed(self) -> int:
        return self.problem.seed

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingSpec":
        values = dict(values)
        values["problem"] = MLPSpec(**values["problem"])
        values["probe_fractions"] = tuple(values.get("probe_fractions", (0.25, 0.5)))
        values["lrs"] = {name: float(lr) for name, lr in values["lrs"].items()}
        return cls(**values)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["probe_fractions"] = list(self.probe_fractions)
        return out


def phase_name(fraction: float) -> str:
    return f"f{round(fraction * 100):02d}"


def snapshot_steps(spec: TrainingSpec) -> dict[str, int]:
    """The fixed snapshot steps: init, each fraction of the cap, end (the plateau is found while training)."""
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
    switch_index: int | None = None  # the evaluation at the switch: B's curve starts there
    plateau_step: int | None = None  # the first plateau (A's, in a switch)
    then_plateau_step: int | None = None  # B's plateau after a switch (the run stops there)
    loss_evals: int = 0
    cost: float = 0.0
    val_history: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    window_losses: list = field(default_factory=list)
    snapshots: dict = field(default_factory=dict)
    seconds: float = 0.0
    evaluated_step: int = -1  # the checkpoint is written right after an evaluation: not twice on resume
    search_width: torch.Tensor | None = None  # SNES's sigma per parameter, while SNES trains
    stopped: bool = False


class StudentTrainer:
    """One training run (:func:`train_student` runs it to the end)."""

    def __init__(self, spec: TrainingSpec, settings: dict[str, dict], compute: Compute):
        self.spec, self.settings, self.compute = spec, settings, compute
        self.schedule = parse_schedule(spec.schedule)
        missing = set(self.schedule.estimators) - set(settings)
        if missing:
            raise ValueError(f"no settings for {sorted(missing)}")
        self.probe = MLPProbe.from_compute(spec.problem, compute)
        self.shapes = [tuple(layer.shape) for layer in self.probe.student]
        self.theta = torch.nn.Parameter(pack(self.probe.student).clone())  # float64 master weights, CPU
        self.optimisers = {name: self._optimiser(spec.lrs[name]) for name in self.schedule.estimators}
        val_x = torch.randn(spec.val_batch_size, spec.dim, dtype=torch.float64,
                            generator=generator("training-val", spec.dim))
        self.val = self._problem(val_x, "validation batch")
        self.state = TrainingState()

    def _optimiser(self, lr: float) -> torch.optim.Optimizer:
        """Each estimator of a switch gets its own optimiser at its own lr (B starts with a fresh state)."""
        if self.spec.optimizer == "sgd":
            return torch.optim.SGD([self.theta], lr=lr)
        return torch.optim.Adam([self.theta], lr=lr)

    # ---- problems ----------------------------------------------------------------------------
    def _problem(self, x: torch.Tensor, what: str) -> MLPBatchProblem:
        """The loss of the current weights on inputs ``x``, on the job's device with its fused kernel."""
        layers = [t[0] for t in unpack(self.theta.detach()[None], self.shapes)]
        return self.probe.problem(x, layers, f"training dim={self.spec.dim} seed={self.spec.seed} {what}")

    def batch_problem(self, step: int) -> MLPBatchProblem:
        x = torch.randn(self.spec.problem.batch_size, self.spec.dim, dtype=torch.float64,
                        generator=generator("training-batch", self.spec.dim, self.spec.seed, step))
        return self._problem(x, f"step {step}")

    def val_loss(self) -> float:
        return self.val.loss(self.theta.detach().to(device=self.compute.device, dtype=self.compute.dtype))

    def validation_noise(self, batches: int = 8) -> float:
        """The relative spread (std / mean) of the current weights' loss over independent batches of the
        validation batch's size: how far one fixed validation batch may stand from the population loss."""
        losses = torch.tensor([
            self._problem(torch.randn(self.spec.val_batch_size, self.spec.dim, dtype=torch.float64,
                                      generator=generator("training-val-noise", self.spec.dim, k)),
                          f"noise batch {k}").loss()
            for k in range(batches)], dtype=torch.float64)
        return float(losses.std() / losses.mean())

    # ---- checkpoints -------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        save_torch({"spec": self.spec.as_dict(), "settings": self.settings, "theta": self.theta.detach().clone(),
                    "optimisers": {n: o.state_dict() for n, o in self.optimisers.items()},
                    "state": asdict(self.state)}, path)

    def resume(self, path: Path) -> bool:
        if not path.exists():
            return False
        saved = load_torch(path)
        if saved["spec"] != self.spec.as_dict() or saved["settings"] != self.settings:
            raise ValueError(f"checkpoint {path} was made with other settings; delete it to start over")
        with torch.no_grad():
            self.theta.copy_(saved["theta"])
        for name, optimiser in self.optimisers.items():
            optimiser.load_state_dict(saved["optimisers"][name])
        self.state = TrainingState(**saved["state"])
        log.info("resuming %s from %s at step %d", self.spec.schedule, path, self.state.step)
        return True

    # ---- the loop ----------------------------------------------------------------------------
    def _record(self, val: float) -> None:
        s = self.state
        s.evaluated_step = s.step
        s.val_history.append(val)
        train = sum(s.window_losses) / len(s.window_losses) if s.window_losses else math.nan
        width = s.search_width
        s.rows.append({"step": s.step, "estimator": self.schedule.estimator_at(s.switched), "train_loss": train,
                       "val_loss": val, "cumulative_loss_evals": s.loss_evals, "cumulative_cost": s.cost,
                       "seconds": s.seconds,
                       "sigma_median": float(width.median()) if width is not None else math.nan,
                       "sigma_min": float(width.min()) if width is not None else math.nan,
                       "sigma_max": float(width.max()) if width is not None else math.nan})
        s.window_losses = []

    def _evaluate(self) -> None:
        s, spec = self.state, self.spec
        try:
            val = self.val_loss()
        except NonFiniteLossError as exc:
            raise NonFiniteLossError(f"{spec.schedule} dim={spec.dim} seed={spec.seed}, step {s.step}: {exc}; "
                                     "lower the learning rate") from exc
        self._record(val)
        if not s.switched and s.plateau_step is None:
            at_fixed = spec.switch_at is not None and s.step >= spec.switch_at
            plateau = spec.switch_at is None and plateau_reached(s.val_history, spec.patience, spec.rel_tol,
                                                                 spec.smooth)
            if at_fixed or plateau:
                s.plateau_step = s.step
                s.snapshots["plateau"] = {"step": s.step, "theta": self.theta.detach().clone()}
                s.stopped = not self.schedule.switches and not spec.to_cap
                if self.schedule.switches:
                    s.switched, s.switch_step, s.switch_index = True, s.step, len(s.val_history) - 1
                    s.search_width = None
                    log.info("%s: switching to %s at step %d (val loss %.6g)", spec.schedule, self.schedule.then,
                             s.step, val)
        elif s.switched and s.then_plateau_step is None:
            if plateau_reached(s.val_history[s.switch_index:], spec.patience, spec.rel_tol, spec.smooth):
                s.then_plateau_step = s.step
                s.stopped = True  # B reached its own plateau: the switch's run ends here

    def _step(self, name: str, problem: MLPBatchProblem, seed_parts: tuple) -> None:
        """One update of the weights by estimator ``name``."""
        fam = family_of(name)
        settings = self.settings[name]
        if fam.optimiser:  # its own update of the weights and of its state (SNES: a search width per weight)
            mu, self.state.search_width = family_module(fam).train_step(problem, settings, self.spec.lrs[name],
                                                            self.state.search_width, (name, *seed_parts))
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
            optimiser = self.optimisers[name]
            optimiser.zero_grad(set_to_none=True)
            self.theta.grad = gradient
            optimiser.step()
        self.state.loss_evals += fam.loss_evals(settings, problem.n_coords)
        self.state.cost += fam.work(settings, problem.n_coords)

    def run(self, checkpoint: str | Path | None = None) -> "TrainingResult":
        """Train to the end; ``checkpoint`` (a path) makes the run resumable."""
        checkpoint = Path(checkpoint) if checkpoint is not None else None
        if checkpoint is not None:
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
                if checkpoint is not None:
                    self.save(checkpoint)
                done = s.step / spec.steps
                log.info("%s dim=%d seed=%d: step %d/%d, val loss %.6g (%.1fs, ETA %.0fs)", spec.schedule, spec.dim,
                         spec.seed, s.step, spec.steps, s.val_history[-1], s.seconds,
                         s.seconds / done * (1 - done) if done else math.nan)
            if s.step == spec.steps or s.stopped:
                break
            name = self.schedule.estimator_at(s.switched)
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
        snapshots = {phase: {**snap, "reached": True} for phase, snap in s.snapshots.items()}
        if "end" not in snapshots:  # a run stopped at its plateau: its last weights stand for the end
            snapshots["end"] = {"step": s.step, "theta": self.theta.detach().clone(), "reached": True}
        if "plateau" not in snapshots:  # no plateau within the steps: the end stands in, marked so
            snapshots["plateau"] = {**snapshots["end"], "reached": False}
        return TrainingResult(pd.DataFrame(s.rows, columns=CURVE_COLUMNS), snapshots, s.switch_step, s.plateau_step,
                              s.then_plateau_step)


@dataclass
class TrainingResult:
    curve: pd.DataFrame
    snapshots: dict  # phase -> {"step", "theta", "reached"}
    switch_step: int | None
    plateau_step: int | None
    then_plateau_step: int | None = None


def train_student(spec: TrainingSpec, settings: dict[str, dict], checkpoint: str | Path | None = None,
                  compute: Compute | None = None) -> TrainingResult:
    """Train the student of ``spec`` (see the module docstring); ``settings`` maps each estimator
    of the schedule to its settings (:func:`bnnprobe.naming.settings_for`)."""
    return StudentTrainer(spec, settings, compute or Compute.from_config({"device": "cpu"})).run(checkpoint)
