"""One layer of a trained (XNOR-)ResNet as another probe problem (the log's open item).

The probed coordinates are a fixed, seeded sample of K entries of one layer's (latent)
weight tensor; the loss is the cross-entropy on a fixed, seeded training batch, with the
network in eval mode so that batch norm does not move. Every estimator of the MLP study
applies unchanged: CDG over the K coordinates, the STE variants (the gradient of the
binary activations' surrogate, restricted to the K coordinates), NES and guided ES.
Perturbed copies are evaluated several per forward pass (``torch.func.vmap``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from .binary import SurrogateParams
from .io import load_torch
from .problem import ProbeProblem, check_finite
from .resnet import BinaryActivation, XNORConv2d
from .seeding import generator
from .train import images_to_float


@dataclass(frozen=True)
class LayerProbeSpec:
    layer: str          # a parameter name without ".weight", e.g. "blocks.4.body.2"
    k: int              # coordinates sampled (all of them if the layer has fewer)
    batch_size: int
    seed: int

    def as_dict(self) -> dict:
        return asdict(self)


def default_layer(model: torch.nn.Module) -> str:
    """The middle binary convolution (an XNOR conv of the middle block)."""
    names = [name for name, module in model.named_modules() if isinstance(module, XNORConv2d)]
    if not names:
        raise ValueError("the model has no binary convolution to probe")
    return names[len(names) // 2]


class LayerProbeProblem(ProbeProblem):
    def __init__(self, model: torch.nn.Module, data: dict, spec: LayerProbeSpec, chunk: int = 16):
        self.model = model.eval()
        self.spec = spec
        self.weight_name = f"{spec.layer}.weight"
        params = dict(model.named_parameters())
        if self.weight_name not in params:
            raise ValueError(f"the model has no parameter {self.weight_name}")
        self.weight = params[self.weight_name]
        numel = self.weight.numel()
        gen = generator("layerprobe", spec.layer, spec.seed)
        self.coords = torch.randperm(numel, generator=gen)[: min(spec.k, numel)].sort().values
        n = len(data["train"]["labels"])
        rows = torch.randperm(n, generator=generator("layerprobe-batch", spec.seed))[: min(spec.batch_size, n)]
        self.x = images_to_float(data["train"]["images"][rows])
        self.y = data["train"]["labels"][rows]
        self.theta0 = self.weight.detach().flatten()[self.coords].clone()
        self.chunk = chunk
        self.description = f"layer {spec.layer} K={len(self.coords)} seed={spec.seed}"

    def _weights(self, thetas: torch.Tensor) -> torch.Tensor:
        base = self.weight.detach().flatten()
        full = base.repeat(len(thetas), 1)
        full[:, self.coords] = thetas.to(base.dtype)
        return full.view(len(thetas), *self.weight.shape)

    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        check_finite(thetas, f"the weights given to {self.description}")

        def loss_of(weight):
            logits = functional_call(self.model, {self.weight_name: weight}, (self.x,))
            return F.cross_entropy(logits, self.y)

        out = []
        with torch.no_grad():
            for chunk in thetas.split(self.chunk):
                out.append(vmap(loss_of)(self._weights(chunk)).double())
        return check_finite(torch.cat(out), self.description)

    def ste_gradient(self, variant: str, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
        """Backprop through the network with every binary activation's backward set to ``variant``."""
        acts = [m for m in self.model.modules() if isinstance(m, BinaryActivation)]
        saved = [(m.variant, m.params) for m in acts]
        try:
            for m in acts:
                m.variant, m.params = variant, params
            self.model.zero_grad(set_to_none=True)
            loss = F.cross_entropy(self.model(self.x), self.y)
            check_finite(loss.detach().reshape(1), self.description)
            (grad,) = torch.autograd.grad(loss, [self.weight])
        finally:
            for m, (v, p) in zip(acts, saved):
                m.variant, m.params = v, p
        return grad.flatten()[self.coords].detach().clone()


# ---- the layer-probe study: gradients per (run, estimator, seed), sweeps, tables ------------------

LAYER_RUN_COLUMNS = ["run_id", "layer", "k", "estimator", "seed", "batch", "lr", "grid", "loss_before", "loss_after",
                     "loss_decrease", "grad_norm", "cos_to_cdg", "seconds", "n_loss_evals"]
LAYER_KEY = ["run_id", "estimator", "seed", "batch", "lr"]


def load_xnor(model_path, data: dict, width: int) -> torch.nn.Module:
    from .finetune import model_for

    model = model_for(data, width, binary=True)
    model.load_state_dict(load_torch(model_path))
    return model.eval()


def compute_layer_gradients(model, data: dict, spec: LayerProbeSpec, run_id: str, estimator: str,
                            settings: dict) -> dict:
    """The record of one (run, estimator, seed): same keys as the MLP study's, one 'batch'."""
    import time

    from .estimators import estimate

    problem = LayerProbeProblem(model, data, spec)
    start = time.perf_counter()
    result = estimate(estimator, problem, settings, seed_parts=(run_id, spec.layer, spec.seed))
    seconds = time.perf_counter() - start
    check_finite(result.gradient, f"the {estimator} gradient on {problem.description}")
    return {"format": 1, "estimator": estimator, "settings": dict(settings),
            "spec": {**spec.as_dict(), "run_id": run_id}, "coords": problem.coords.clone(),
            "gradients": result.gradient.float()[None], "loss_before": torch.tensor([problem.loss()]),
            "seconds": torch.tensor([seconds]), "n_loss_evals": torch.tensor([result.n_loss_evals])}


def layer_sweep_one(model, data: dict):
    """``sweep_one`` for :func:`bnnprobe.sweep.sweep_coarse_and_fine` on layer-probe records."""
    from .sweep import sweep_gradients

    def sweep_one(record, lrs, grid, cdg_record):
        spec = {k: v for k, v in record["spec"].items() if k != "run_id"}
        problem = LayerProbeProblem(model, data, LayerProbeSpec(**spec))
        if not torch.equal(problem.coords, record["coords"]):
            raise ValueError("the record's coordinates differ from the ones this code samples; re-run its job")
        key = {"run_id": record["spec"]["run_id"], "layer": spec["layer"], "k": len(problem.coords),
               "seed": spec["seed"]}
        rows = sweep_gradients(record, lambda b: problem, lrs, grid, cdg_record, key)
        return rows.reindex(columns=LAYER_RUN_COLUMNS)

    return sweep_one
