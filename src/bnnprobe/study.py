"""The one study layer every probe plugs into.

A probe is (a source of problems, the estimators, seeds) -> gradient records -> lr
sweeps -> tables -> figures. This module makes and reads the records;
:func:`bnnprobe.analysis.sweep.sweep_groups` sweeps them and
:func:`bnnprobe.analysis.tables.probe_tables` tabulates the rows, for every probe alike.
A probe contributes only a :class:`ProbeSource` (how to build its problems from a spec,
what identifies a problem) and its columns (:data:`bnnprobe.probes.PROBES`); the MLP
probe (:mod:`bnnprobe.mlp.source`) and the layer probe (:mod:`bnnprobe.layerprobe.source`)
are two such sources.

A gradient does not depend on the learning rate, so :func:`compute_record` stores the
gradients of every batch of one (source spec, estimator) and every lr is evaluated from
them later (:func:`bnnprobe.analysis.sweep.sweep_groups`). A record is a :class:`GradientRecord`; on disk it is
the dict of its fields (:meth:`GradientRecord.as_dict`, format :data:`RECORD_FORMAT`):

``format``        record format version (int)
``probe``         the source's name (``mlp``, ``layer``)
``estimator``     estimator name, e.g. ``nes-5000`` (the knob value of an instance is in ``settings``)
``settings``      the estimator's settings (eps, sigma, population, ...)
``extras``        further per-batch gradients an estimator yields, name -> float32 tensor
                  (num_batches, n_coords) (per-parameter NES: the gradient for sigma, natural gradients)
``spec``          what the source rebuilds the problems from (a dict)
``key``           the key columns of its rows (e.g. ``{"dim": 16, "seed": 1}``)
``fingerprint``   tensors that identify the problem (the MLP's teacher and student, a layer's
                  sampled coordinates): a sweep checks them against the rebuilt problem
``dtype``         floating type of the evaluation (``float32``)
``seed_parts``    per batch, what seeded its stochastic estimators (as strings)
``gradients``     float32 tensor (num_batches, n_coords): one flat gradient per batch
``loss_before``   float64 tensor (num_batches,): the loss on each batch
``seconds``       float64 tensor (num_batches,): wall time of each batch's estimate
``n_loss_evals``  int tensor (num_batches,): loss evaluations the estimator's definition uses
``device``        where it ran
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from .device import Compute
from .io import UnreadableFileError, load_torch, remake_advice, save_torch
from .probes import PROBES, ProbeColumns
from .problem import ProbeProblem, check_finite

RECORD_FORMAT = 2
log = logging.getLogger(__name__)


class ProblemSet:
    """The problems of one spec: ``num_batches`` batches, each a :class:`ProbeProblem`."""

    key: dict
    num_batches: int
    description: str

    def problem(self, b: int) -> ProbeProblem:
        raise NotImplementedError

    def seed_parts(self, b: int) -> tuple:
        """What seeds the stochastic estimators on batch ``b``."""
        raise NotImplementedError

    def fingerprint(self) -> dict:
        """Tensors that identify the problems (checked when a record is swept)."""
        raise NotImplementedError


class ProbeSource:
    """A probe's adapter to the study layer: its name (a key of :data:`bnnprobe.probes.PROBES`, which
    holds its columns) and how to build the problems of a spec."""

    name: str

    @property
    def columns(self) -> ProbeColumns:
        return PROBES[self.name]

    def open(self, spec: dict, compute: Compute) -> ProblemSet:
        raise NotImplementedError


class RecordError(ValueError):
    """A gradient record that cannot be used; the message names the file and what to do."""


@dataclass
class GradientRecord:
    """The gradients of every batch of one (source spec, estimator): the fields of the module docstring."""

    probe: str
    estimator: str
    settings: dict
    extras: dict
    spec: dict
    key: dict
    fingerprint: dict
    dtype: str
    seed_parts: list
    gradients: torch.Tensor
    loss_before: torch.Tensor
    seconds: torch.Tensor
    n_loss_evals: torch.Tensor
    device: str
    format: int = RECORD_FORMAT

    def as_dict(self) -> dict:
        """What is written to disk (plain containers and tensors)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict, path: str | Path) -> "GradientRecord":
        """The record read from ``path``, refused unless it is of this version's format with every field."""
        if not isinstance(values, dict) or values.get("format") != RECORD_FORMAT:
            found = values.get("format") if isinstance(values, dict) else type(values).__name__
            raise RecordError(f"{path} is a gradient record of format {found!r}; this version of bnnprobe reads "
                              f"format {RECORD_FORMAT}: {remake_advice(path)}")
        names = {f.name for f in fields(cls)}
        if set(values) != names:
            raise RecordError(f"{path} is a gradient record with the fields {sorted(values)}, not "
                              f"{sorted(names)}: {remake_advice(path)}")
        return cls(**values)


def compute_record(source: ProbeSource, spec: dict, estimator: str, settings: dict,
                   compute: Compute) -> GradientRecord:
    """The gradients of every batch of ``spec`` by ``estimator`` (see the module docstring)."""
    from .estimators import estimate
    from .naming import split_instance

    problems = source.open(spec, compute)
    grads, losses, seconds, evals, extras = [], [], [], [], {}
    started = time.perf_counter()
    for b in range(problems.num_batches):
        problem = problems.problem(b)
        t0 = time.perf_counter()
        result = estimate(estimator, problem, settings, seed_parts=problems.seed_parts(b))
        compute.synchronize()
        seconds.append(time.perf_counter() - t0)
        check_finite(result.gradient, f"the {estimator} gradient on {problem.description}")
        grads.append(result.gradient.float().cpu())
        losses.append(problem.loss())
        evals.append(result.n_loss_evals)
        for name, value in result.extras.items():
            extras.setdefault(name, []).append(value.float().cpu())
        done = b + 1
        elapsed = time.perf_counter() - started
        log.info("%s on %s: batch %d/%d in %.2fs (ETA %.0fs)", estimator, problems.description, done,
                 problems.num_batches, seconds[-1], elapsed / done * (problems.num_batches - done))
    return GradientRecord(
        probe=source.name,
        estimator=split_instance(estimator)[0],
        settings=dict(settings),
        extras={name: torch.stack(values) for name, values in extras.items()},
        spec=dict(spec),
        key=dict(problems.key),
        fingerprint=problems.fingerprint(),
        dtype=str(compute.dtype).removeprefix("torch."),
        seed_parts=[list(map(str, problems.seed_parts(b))) for b in range(problems.num_batches)],
        gradients=torch.stack(grads),
        loss_before=torch.tensor(losses, dtype=torch.float64),
        seconds=torch.tensor(seconds, dtype=torch.float64),
        n_loss_evals=torch.tensor(evals, dtype=torch.int64),
        device=str(compute.device),
    )


def save_record(record: GradientRecord, path: str | Path) -> None:
    save_torch(record.as_dict(), path)


def load_record(path: str | Path, source: ProbeSource | None = None) -> GradientRecord:
    """A record from disk, checked: readable, of this version's format and (if given) of ``source``."""
    record = GradientRecord.from_dict(load_torch(path), path)
    if source is not None and record.probe != source.name:
        raise RecordError(f"{path} is a record of the {record.probe!r} probe, not of {source.name!r}")
    return record


def reopen(source: ProbeSource, record: GradientRecord, compute: Compute) -> ProblemSet:
    """The problems a record was computed on, checked to be the same ones."""
    problems = source.open(record.spec, compute)
    stored = record.fingerprint
    current = problems.fingerprint()
    same = stored.keys() == current.keys() and all(
        len(stored[k]) == len(current[k]) and all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(stored[k], current[k]))
        if isinstance(stored[k], (list, tuple)) else torch.equal(stored[k].cpu(), current[k].cpu()) for k in stored)
    if not same:
        raise RecordError(f"the {record.estimator} record of {problems.description} was made on another problem "
                          "than the one this code builds from its spec (another version of bnnprobe): delete it and "
                          "run again")
    return problems


def load_source(module: str) -> ProbeSource:
    """The ``SOURCE`` of a probe's source module (``PROBES[name].source``)."""
    import importlib

    return importlib.import_module(module).SOURCE


__all__ = ["RECORD_FORMAT", "GradientRecord", "ProbeSource", "ProblemSet", "RecordError", "UnreadableFileError",
           "compute_record", "load_record", "load_source", "reopen", "save_record"]
