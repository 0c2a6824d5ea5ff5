"""One layer of a trained (XNOR-)ResNet as another probe problem (the log's open item).

The probed coordinates are a fixed, seeded sample of K entries of one layer's (latent)
weight tensor; the loss is the cross-entropy on a fixed, seeded training batch, with the
network in eval mode so that batch norm does not move. Every estimator of the MLP study
applies unchanged: CDG over the K coordinates, the STE variants (the gradient of the
binary activations' surrogate, restricted to the K coordinates), NES and guided ES.
Perturbed copies are evaluated several per forward pass (``torch.func.vmap``), and only from the probed
layer on (:class:`SplitForward`): what precedes it is the same for every copy, computed once per batch.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from ..binary import SurrogateParams, stochastic_binary
from ..finetune.resnet import BinarySTEActivation, XNORConv2d
from ..finetune.train import images_to_float
from ..io import load_torch
from ..problem import ProbeProblem, check_finite
from ..seeding import generator


@dataclass(frozen=True)
class LayerProbeSpec:
    layer: str          # a parameter name without ".weight", e.g. "blocks.4.body.2"
    k: int              # coordinates sampled (all of them if the layer has fewer)
    batch_size: int
    seed: int
    batch: int = 0      # which of the seed's batches (they share the seed's coordinate sample)

    def as_dict(self) -> dict:
        return asdict(self)


def default_layer(model: torch.nn.Module) -> str:
    """The middle binary convolution (an XNOR conv of the middle block)."""
    names = [name for name, module in model.named_modules() if isinstance(module, XNORConv2d)]
    if not names:
        raise ValueError("the model has no binary convolution to probe")
    return names[len(names) // 2]


def activation_bytes_per_sample(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of every module's output for one sample: what one perturbed copy costs per sample."""
    total = [0]

    def count(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            total[0] += output[:1].numel() * output.element_size()

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for hook in hooks:
            hook.remove()
    return total[0]


class SplitForward:
    """A ResNet-18 (:class:`~bnnprobe.finetune.resnet.ResNet18`) cut at one convolution of a block body
    (``blocks.<i>.body.<j>``): the stem, the blocks before block i, the part of its body before the conv and its
    shortcut are computed once for the batch; :meth:`logits` runs the conv with the weight it is given and the
    rest of the network. The same operations as the whole forward, so the same losses (tested)."""

    def __init__(self, model: torch.nn.Module, layer: str, x: torch.Tensor):
        if not self.applies(model, layer):
            raise ValueError(f"cannot cut the network at {layer!r} (not a conv of a ResNet-18 block body)")
        _, i, _, j = layer.split(".")
        i, j = int(i), int(j)
        block = model.blocks[i]
        with torch.no_grad():
            into = model.blocks[:i](model.stem(x))
            self.before, self.skip = block.body[:j](into), block.shortcut(into)
        self.conv, self.after = block.body[j], block.body[j + 1:]
        self.relu = not block.binary  # the full-precision block's ReLU after the sum
        self.rest, self.head = model.blocks[i + 1:], model.head

    @staticmethod
    def applies(model: torch.nn.Module, layer: str) -> bool:
        parts = layer.split(".")
        return (len(parts) == 4 and parts[0] == "blocks" and parts[2] == "body" and hasattr(model, "stem")
                and all(map(str.isdigit, parts[1::2])))

    def logits(self, weight: torch.Tensor) -> torch.Tensor:
        out = self.after(functional_call(self.conv, {"weight": weight}, (self.before,))) + self.skip
        out = self.rest(F.relu(out) if self.relu else out)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


class LayerProbeProblem(ProbeProblem):
    """The cross-entropy of a fixed batch as a function of K sampled weights of one layer.

    ``model`` is moved to ``device`` and ``dtype``; perturbed copies are evaluated in chunks
    whose activations fit ``memory_budget_mb``.
    """

    def __init__(self, model: torch.nn.Module, data: dict, spec: LayerProbeSpec, device="cpu",
                 dtype: torch.dtype = torch.float32, memory_budget_mb: float = 16.0):
        # a copy: the caller's model keeps its device and dtype (two problems may share one model)
        self.model = copy.deepcopy(model).to(device=device, dtype=dtype).eval()
        self.spec = spec
        self.weight_name = f"{spec.layer}.weight"
        params = dict(self.model.named_parameters())
        if self.weight_name not in params:
            raise ValueError(f"the model has no parameter {self.weight_name}")
        self.weight = params[self.weight_name]
        numel = self.weight.numel()
        gen = generator("layerprobe", spec.layer, spec.seed)
        self.coords = torch.randperm(numel, generator=gen)[: min(spec.k, numel)].sort().values
        n = len(data["train"]["labels"])
        # batch 0 keeps the seed's original draw; further batches are drawn independently of it
        batch_seed = ("layerprobe-batch", spec.seed) + ((spec.batch,) if spec.batch else ())
        rows = torch.randperm(n, generator=generator(*batch_seed))[: min(spec.batch_size, n)]
        self.x = images_to_float(data["train"]["images"][rows]).to(device=device, dtype=dtype)
        self.y = data["train"]["labels"][rows].to(device)
        self.coords = self.coords.to(device)
        self.theta0 = self.weight.detach().flatten()[self.coords].clone()
        per_copy = activation_bytes_per_sample(self.model, self.x) * len(self.y)
        self.chunk = self.chunk_size(memory_budget_mb, per_copy)
        self.description = f"layer {spec.layer} K={len(self.coords)} seed={spec.seed} batch={spec.batch}"
        self.split = SplitForward(self.model, spec.layer, self.x) if SplitForward.applies(self.model, spec.layer) \
            else None

    def _weights(self, thetas: torch.Tensor) -> torch.Tensor:
        base = self.weight.detach().flatten()
        full = base.repeat(len(thetas), 1)
        full[:, self.coords] = thetas.to(device=base.device, dtype=base.dtype)
        return full.view(len(thetas), *self.weight.shape)

    def losses(self, thetas: torch.Tensor) -> torch.Tensor:
        check_finite(thetas, f"the weights given to {self.description}")

        def loss_of(weight):
            logits = self.split.logits(weight) if self.split is not None else \
                functional_call(self.model, {self.weight_name: weight}, (self.x,))
            return F.cross_entropy(logits, self.y)

        out = []
        with torch.no_grad():
            for chunk in thetas.split(self.chunk):
                out.append(vmap(loss_of)(self._weights(chunk)).double())
        return check_finite(torch.cat(out), self.description)

    def ste_gradient(self, variant: str, params: SurrogateParams = SurrogateParams()) -> torch.Tensor:
        """Backprop through the network with every binary activation's backward set to ``variant``."""
        acts = [m for m in self.model.modules() if isinstance(m, BinarySTEActivation)]
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


    def stochastic_ste_gradient(self, law: str, scale: float, draws: int, noise) -> torch.Tensor:
        """The mean over ``draws`` forward passes of the network with every binary activation made
        stochastic (:func:`~bnnprobe.binary.stochastic_binary`, the k-th activation module's noise
        ``noise(draw, k, shape)``) of the backprop gradient: :mod:`bnnprobe.estimators.stochastic_ste`."""
        acts = [m for m in self.model.modules() if isinstance(m, BinarySTEActivation)]
        total = torch.zeros(self.n_coords, dtype=torch.float64, device=self.device)
        def stochastic(draw, index):
            # a forward hook's return value replaces the module's output
            return lambda module, inputs, output: stochastic_binary(
                inputs[0], noise(draw, index, inputs[0].shape), module.activation, law, scale)

        for draw in range(draws):
            hooks = [m.register_forward_hook(stochastic(draw, k)) for k, m in enumerate(acts)]
            try:
                loss = F.cross_entropy(self.model(self.x), self.y)
                check_finite(loss.detach().reshape(1), self.description)
                (grad,) = torch.autograd.grad(loss, [self.weight])
            finally:
                for hook in hooks:
                    hook.remove()
            total += grad.flatten()[self.coords].double()
        return (total / draws).to(self.dtype)


def load_xnor(model_path, data: dict, width: int) -> torch.nn.Module:
    """A finetuned XNOR-ResNet-18 of ``width`` for ``data`` (a tensor cache), in eval mode, on the CPU."""
    from ..finetune.pipeline import model_for

    model = model_for(data, width, binary=True)
    model.load_state_dict(load_torch(model_path))
    return model.eval()
