"""The MLP probe as a source of the study layer (:mod:`bnnprobe.study`).

A spec is an :class:`~bnnprobe.mlp.MLPSpec` as a dict (dim, seed, batch size, number of
batches, activation, depth, teacher seed, init scale); its rows carry ``dim`` and
``seed``; the teacher's and student's layers identify the problem.
"""

from __future__ import annotations

from ..device import Compute
from ..study import ProbeSource, ProblemSet
from .network import MLPSpec
from .problem import MLPProbe


class MLPProblemSet(ProblemSet):
    def __init__(self, spec: MLPSpec, compute: Compute):
        self.probe = MLPProbe.from_compute(spec, compute)
        self.key = {"dim": spec.dim, "seed": spec.seed}
        self.num_batches = spec.num_batches
        self.description = f"MLP dim={spec.dim} seed={spec.seed}"

    def problem(self, b: int):
        return self.probe.batch(b)

    def seed_parts(self, b: int) -> tuple:
        return (self.probe.spec.dim, self.probe.spec.seed, b)

    def fingerprint(self) -> dict:
        return {"student": [t.clone() for t in self.probe.student], "teacher": [t.clone() for t in self.probe.teacher]}


class MLPProbeSource(ProbeSource):
    name = "mlp"

    def open(self, spec: dict, compute: Compute) -> MLPProblemSet:
        return MLPProblemSet(MLPSpec(**spec), compute)


SOURCE = MLPProbeSource()
