"""The layer probe as a source of the study layer (:mod:`bnnprobe.study`).

A spec names a finetuned model and its data (``model``, ``data``: paths; ``width``,
``run_id``), the probed ``layer`` (or ``auto``: the middle binary convolution), the
number ``k`` of sampled coordinates, the ``batch_size``, the ``seed`` and ``num_batches``
(default 1). The seed fixes the coordinate sample; each of its batches is its own draw of
training images. Rows carry ``run_id``, ``layer``, ``k``, ``seed`` and ``batch``; the sampled
coordinates identify the problem.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from ..device import Compute
from ..io import load_torch
from ..study import ProbeSource, ProblemSet
from .problem import LayerProbeProblem, LayerProbeSpec, default_layer, load_xnor


@lru_cache(maxsize=4)
def _data(path: str) -> dict:
    return load_torch(path)


class LayerProblemSet(ProblemSet):
    def __init__(self, spec: dict, compute: Compute):
        self._data = _data(str(spec["data"]))
        self._model = load_xnor(spec["model"], self._data, int(spec["width"]))
        layer = default_layer(self._model) if spec["layer"] == "auto" else spec["layer"]
        self.layer_spec = LayerProbeSpec(layer=layer, k=int(spec["k"]), batch_size=int(spec["batch_size"]),
                                         seed=int(spec["seed"]))
        self.num_batches = int(spec.get("num_batches", 1))
        self.run_id = spec["run_id"]
        self._compute = compute
        self._current: tuple[int, LayerProbeProblem] | None = None  # one at a time: each holds a model copy
        self._coords = self.problem(0).coords.cpu().clone()
        self.key = {"run_id": self.run_id, "layer": layer, "k": len(self._coords), "seed": self.layer_spec.seed}
        self.description = f"run {self.run_id}, layer {layer} K={len(self._coords)} seed={self.layer_spec.seed}"

    def problem(self, b: int) -> LayerProbeProblem:
        if not 0 <= b < self.num_batches:
            raise IndexError(f"batch {b} of a layer probe with {self.num_batches} batches per seed")
        if self._current is None or self._current[0] != b:
            self._current = (b, LayerProbeProblem(
                self._model, self._data, replace(self.layer_spec, batch=b), device=self._compute.device,
                dtype=self._compute.dtype, memory_budget_mb=self._compute.budget_mb("layer")))
        return self._current[1]

    def seed_parts(self, b: int) -> tuple:
        # batch 0 keeps the parts a one-batch probe always used
        return (self.run_id, self.layer_spec.layer, self.layer_spec.seed) + ((b,) if b else ())

    def fingerprint(self) -> dict:
        # the seed's coordinate sample (every batch shares it)
        return {"coords": self._coords.clone()}


class LayerProbeSource(ProbeSource):
    name = "layer"

    def open(self, spec: dict, compute: Compute) -> LayerProblemSet:
        return LayerProblemSet(spec, compute)


SOURCE = LayerProbeSource()
