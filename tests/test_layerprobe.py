"""The layer probe: restricted CDG against a plain perturbation loop, STE restriction against autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bnnprobe.finetune.data import digits_tensors
from bnnprobe.estimators import estimate
from bnnprobe.estimators.cdg import cdg
from bnnprobe.layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer
from bnnprobe.finetune.resnet import ResNet18


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = ResNet18(10, width=2, in_channels=1, image_size=8, binary=True)
    with torch.no_grad():  # give the batch norms non-trivial running statistics
        model.train()
        model(torch.randn(64, 1, 8, 8))
    return model.eval(), digits_tensors()


def plain_loss(model, problem, name, coord, value):
    """Independent reference: set one weight entry in place and run the model."""
    weight = dict(model.named_parameters())[name]
    with torch.no_grad():
        old = weight.flatten()[coord].item()
        weight.view(-1)[coord] = value
        loss = F.cross_entropy(model(problem.x), problem.y).item()
        weight.view(-1)[coord] = old
    return loss


@pytest.mark.parametrize("layer", ["blocks.3.body.5", "blocks.6.body.2"])
def test_restricted_cdg_equals_plain_perturbation_loop(setup, layer):
    model, data = setup
    problem = LayerProbeProblem(model, data, LayerProbeSpec(layer=layer, k=12, batch_size=96, seed=4))
    eps = 0.05
    name = f"{layer}.weight"
    base = plain_loss(model, problem, name, 0, dict(model.named_parameters())[name].flatten()[0].item())
    expected = [(plain_loss(model, problem, name, int(c), problem.theta0[i].item() + eps) - base) / eps
                for i, c in enumerate(problem.coords)]
    # float32 losses of about 2.3 differ by rounding (~3e-7) between the paths: 3e-7 / eps ~ 6e-6
    np.testing.assert_allclose(cdg(problem, eps).numpy(), expected, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("variant", ["vanilla", "swishsign"])
def test_ste_restriction_equals_full_gradient_entries(setup, variant):
    model, data = setup
    layer = default_layer(model)
    problem = LayerProbeProblem(model, data, LayerProbeSpec(layer=layer, k=20, batch_size=64, seed=1))
    restricted = problem.ste_gradient(variant)
    for m in model.modules():
        if hasattr(m, "variant"):
            m.variant = variant
    loss = F.cross_entropy(model(problem.x), problem.y)
    (full,) = torch.autograd.grad(loss, [dict(model.named_parameters())[f"{layer}.weight"]])
    for m in model.modules():
        if hasattr(m, "variant"):
            m.variant = "vanilla"
    torch.testing.assert_close(restricted, full.flatten()[problem.coords])


def test_every_estimator_runs_on_a_layer(setup):
    model, data = setup
    problem = LayerProbeProblem(model, data, LayerProbeSpec(layer=default_layer(model), k=8, batch_size=32, seed=0))
    assert len(problem.coords) == 8 and problem.coords.unique().numel() == 8
    nes = estimate("nes-20", problem, {"population": 20, "sigma": 0.05, "fitness_shaping": False}, (0,))
    guided = estimate("guided-es", problem, {"population": 20, "sigma": 0.05, "alpha": 0.5, "beta": 1.0,
                                             "guides": ["vanilla", "polynomial"]}, (0,))
    assert nes.gradient.shape == guided.gradient.shape == (8,)
    assert torch.isfinite(nes.gradient).all() and torch.isfinite(guided.gradient).all()


def test_a_seeds_batches_share_its_coordinates_and_draw_their_own_images(tmp_path):
    """num_batches: batch 0 is the one-batch probe's problem; every batch has the seed's coordinates and its
    own images; each batch's estimator noise is its own."""
    from bnnprobe.device import Compute
    from bnnprobe.finetune.pipeline import model_for
    from bnnprobe.io import save_torch
    from bnnprobe.layerprobe.source import LayerProblemSet

    data = digits_tensors()
    model = model_for(data, 4, binary=True).eval()
    save_torch(data, tmp_path / "data.pt")
    save_torch(model.state_dict(), tmp_path / "model.pt")
    spec = {"run_id": "w4", "width": 4, "model": str(tmp_path / "model.pt"), "data": str(tmp_path / "data.pt"),
            "layer": "auto", "k": 16, "batch_size": 32, "seed": 3, "num_batches": 3}
    problems = LayerProblemSet(spec, Compute.from_config({"device": "cpu"}))
    assert problems.num_batches == 3
    layer = default_layer(model)
    alone = LayerProbeProblem(model, data, LayerProbeSpec(layer=layer, k=16, batch_size=32, seed=3))
    first = problems.problem(0)
    assert torch.equal(first.x, alone.x) and torch.equal(first.coords, alone.coords)
    images = [problems.problem(b).x for b in range(3)]
    for b in (1, 2):
        assert torch.equal(problems.problem(b).coords, alone.coords)
        assert not torch.equal(images[b], images[0])
    assert not torch.equal(images[1], images[2])
    assert len({problems.seed_parts(b) for b in range(3)}) == 3
    assert problems.seed_parts(0) == ("w4", layer, 3)
    with pytest.raises(IndexError):
        problems.problem(3)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize("layer", ["blocks.0.first", "blocks.3.second", "blocks.5.second"])
def test_the_split_forward_gives_the_whole_networks_losses(setup, binary, layer):
    """Copies evaluated from the probed conv on (what precedes it once per batch) against the whole network
    run per copy (functional_call), in float64: the same losses."""
    torch.manual_seed(1)
    model = ResNet18(10, width=2, in_channels=1, image_size=8, binary=binary)
    with torch.no_grad():
        model.train()
        model(torch.randn(64, 1, 8, 8))
    # a block body's two convs: [BN, act, conv, BN, act, conv] (XNOR), [conv, BN, ReLU, conv, BN]
    block, which = layer.rsplit(".", 1)
    layer = f"{block}.body.{({'first': 2, 'second': 5} if binary else {'first': 0, 'second': 3})[which]}"
    problem = LayerProbeProblem(model.eval(), setup[1], LayerProbeSpec(layer=layer, k=10, batch_size=40, seed=2),
                                dtype=torch.float64)
    assert problem.split is not None
    thetas = problem.theta0 + 0.3 * torch.randn(7, len(problem.coords), dtype=torch.float64)
    split = problem.losses(thetas)
    problem.split = None
    whole = problem.losses(thetas)
    torch.testing.assert_close(split, whole, rtol=1e-12, atol=0)
    assert len(set(whole.tolist())) > 1  # the perturbations move the loss


def test_a_layer_outside_the_blocks_is_evaluated_whole(setup):
    model, data = setup
    problem = LayerProbeProblem(model, data, LayerProbeSpec(layer="stem.0", k=5, batch_size=16, seed=0))
    assert problem.split is None and problem.losses(problem.theta0[None]).shape == (1,)
