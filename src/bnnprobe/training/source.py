"""The one-step probe at snapshots of a training run, as a source of the study layer.

A spec is the MLP probe's spec of the run's (dim, seed) (the same batches, so phase
``init`` is exactly the MLP probe) plus the run's ``schedule``, the ``snapshots`` file
it wrote and the ``phase`` (see :data:`bnnprobe.probes.PHASES`: fractions of the run's own converged
step); the student is the phase's weights. Rows carry schedule, phase, step, dim and seed.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from ..device import Compute
from ..io import load_torch
from ..mlp.source import MLPProblemSet
from ..mlp.network import MLPSpec, unpack
from ..study import ProbeSource

SNAPSHOT_KEYS = ("snapshots", "phase", "schedule")


@lru_cache(maxsize=8)
def _snapshots(path: str) -> dict:
    return load_torch(path)["phases"]


class PhaseProblemSet(MLPProblemSet):
    def __init__(self, spec: dict, compute: Compute):
        mlp = MLPSpec(**{k: v for k, v in spec.items() if k not in SNAPSHOT_KEYS})
        super().__init__(mlp, compute)
        snapshots = _snapshots(str(spec["snapshots"]))
        if spec["phase"] not in snapshots:
            raise ValueError(f"{spec['snapshots']} has no snapshot {spec['phase']!r} (it has {sorted(snapshots)})")
        snapshot = snapshots[spec["phase"]]
        shapes = [tuple(layer.shape) for layer in self.probe.student]
        self.probe.student = [t[0].clone() for t in unpack(snapshot["theta"].to(torch.float64)[None], shapes)]
        self.key = {"schedule": spec["schedule"], "phase": spec["phase"], "step": int(snapshot["step"]),
                    "dim": mlp.dim, "seed": mlp.seed}
        self.description = f"{spec['schedule']} at {spec['phase']} (step {snapshot['step']}), dim={mlp.dim} seed={mlp.seed}"


class PhaseProbeSource(ProbeSource):
    name = "phase"

    def open(self, spec: dict, compute: Compute) -> PhaseProblemSet:
        return PhaseProblemSet(spec, compute)


SOURCE = PhaseProbeSource()
