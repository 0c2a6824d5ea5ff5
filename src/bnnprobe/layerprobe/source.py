"""The layer probe as a source of the study layer (:mod:`bnnprobe.study`).

A spec names a finetuned model and its data (``model``, ``data``: paths; ``width``,
``run_id``), the probed ``layer`` (or ``auto``: the middle binary convolution), the
number ``k`` of sampled coordinates, the ``batch_size`` and the ``seed``. Its one
batch's rows carry ``run_id``, ``layer``, ``k`` and ``seed``; the sampled coordinates
identify the problem.
"""

from __future__ import annotations

from functools import lru_cache

from ..device import Compute
from ..io import load_torch
from ..study import ProbeSource, ProblemSet
from .problem import LayerProbeProblem, LayerProbeSpec, default_layer, load_xnor


@lru_cache(maxsize=4)
def _data(path: str) -> dict:
    return load_torch(path)


class LayerProblemSet(ProblemSet):
    num_batches = 1

    def __init__(self, spec: dict, compute: Compute):
        data = _data(str(spec["data"]))
        model = load_xnor(spec["model"], data, int(spec["width"]))
        layer = default_layer(model) if spec["layer"] == "auto" else spec["layer"]
        self.layer_spec = LayerProbeSpec(layer=layer, k=int(spec["k"]), batch_size=int(spec["batch_size"]),
                                         seed=int(spec["seed"]))
        self.run_id = spec["run_id"]
        self._problem = LayerProbeProblem(model, data, self.layer_spec, device=compute.device, dtype=compute.dtype,
                                          memory_budget_mb=compute.budget_mb("layer"))
        self.key = {"run_id": self.run_id, "layer": layer, "k": len(self._problem.coords),
                    "seed": self.layer_spec.seed}
        self.description = f"run {self.run_id}, {self._problem.description}"

    def problem(self, b: int) -> LayerProbeProblem:
        if b != 0:
            raise IndexError(f"the layer probe has one batch, not {b + 1}")
        return self._problem

    def seed_parts(self, b: int) -> tuple:
        return (self.run_id, self.layer_spec.layer, self.layer_spec.seed)

    def fingerprint(self) -> dict:
        return {"coords": self._problem.coords.cpu().clone()}


class LayerProbeSource(ProbeSource):
    name = "layer"

    def open(self, spec: dict, compute: Compute) -> LayerProblemSet:
        return LayerProblemSet(spec, compute)


SOURCE = LayerProbeSource()
