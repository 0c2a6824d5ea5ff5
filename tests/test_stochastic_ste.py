"""The stochastic STE (stochastic-ste-<draws>) against the exact gradient of the stochastic network's
expected loss, computed independently: the expected loss written from the noise law's CDF (SciPy's
laws, re-written in torch so that autograd differentiates them) by enumerating every activation pattern
with its probability. Unbiased where theory says so, biased by the closed form of
bnnprobe/estimators/stochastic_ste.py for one hidden layer, biased beyond."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from bnnprobe.binary import get_activation, stochastic_binary
from bnnprobe.estimators.stochastic_ste import stochastic_ste
from bnnprobe.mlp import MLPProbe, MLPSpec
from bnnprobe.mlp.network import unpack
from bnnprobe.problem import ProbeProblem

SCIPY_LAWS = {"logistic": stats.logistic(scale=math.sqrt(3) / math.pi), "gaussian": stats.norm(),
              "uniform": stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3))}


def cdf(law, v):
    """The unit-variance laws' CDFs in torch (differentiable), written from their definitions."""
    if law == "logistic":
        return torch.sigmoid(v * math.pi / math.sqrt(3))
    if law == "gaussian":
        return 0.5 * (1 + torch.erf(v / math.sqrt(2)))
    return ((v + math.sqrt(3)) / (2 * math.sqrt(3))).clamp(0, 1)


def firing_probability(act, z, law, scale):
    return cdf(law, (z - act.threshold) / act.half_width / scale)


def mean_and_standard_error(problem, draws, law, scale, seeds=10):
    means = torch.stack([stochastic_ste(problem, draws, law, scale, ("test", s)).double() for s in range(seeds)])
    return means.mean(0), means.std(0) / math.sqrt(seeds)


class MultilinearLayer(ProbeProblem):
    """One stochastic binary layer ``a = 1[W x + b + noise >= 0.5]`` of 3 units on 5 samples, and a loss
    affine in each unit given the others, ``L = mean_n (c . a_n + a_n1 a_n2 - a_n2 a_n3)``: where the STE
    of one stochastic layer is unbiased."""

    description = "multilinear test layer"

    def __init__(self):
        gen = torch.Generator().manual_seed(3)
        self.x = torch.randn(5, 2, generator=gen, dtype=torch.float64)
        self.theta0 = 0.8 * torch.randn(9, generator=gen, dtype=torch.float64)
        self.c = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
        self.act = get_activation("zero_one")

    def loss_of(self, a):
        return (a @ self.c + a[:, 0] * a[:, 1] - a[:, 1] * a[:, 2]).mean()

    def pre_activations(self, theta, x):
        layer = theta.reshape(3, 3)
        return x @ layer[:, :-1].T + layer[:, -1]

    def stochastic_ste_gradient(self, law, scale, draws, noise):
        theta = self.theta0.clone().requires_grad_(True)
        z = self.pre_activations(theta, self.x.repeat(draws, 1))  # every draw a copy of the batch
        a = stochastic_binary(z, torch.cat([noise(d, 0, (5, 3)) for d in range(draws)]), self.act, law, scale)
        (grad,) = torch.autograd.grad(self.loss_of(a), theta)
        return grad


@pytest.mark.parametrize("law", ["logistic", "gaussian", "uniform"])
def test_one_stochastic_layer_under_a_multilinear_loss_is_unbiased(law):
    problem, scale = MultilinearLayer(), 0.9
    theta = problem.theta0.clone().requires_grad_(True)
    p = firing_probability(problem.act, problem.pre_activations(theta, problem.x), law, scale)
    # independent units: E[a_i a_j] = p_i p_j, so the expected loss is the loss of the probabilities
    (exact,) = torch.autograd.grad(problem.loss_of(p), theta)
    mean, se = mean_and_standard_error(problem, 4000, law, scale)
    assert torch.all((mean - exact).abs() <= 6 * se + 1e-12), ((mean - exact) / se)
    assert float((mean - exact).norm() / exact.norm()) < 0.05


def expected_mse(theta, problem, law, scale):
    """The stochastic MLP's expected loss: every hidden layer's activation patterns enumerated with their
    probabilities given the layer below (2^width each), the squared error of each full pattern weighed by
    its probability."""
    act = problem.act
    layers = [t[0] for t in unpack(theta[None], problem.shapes)]
    x, y = problem.x.double(), problem.y.double()
    states = [(torch.ones(len(x), dtype=torch.float64), x)]  # (probability per sample, activations below)
    for layer in layers[:-1]:
        grown = []
        for weight, h in states:
            p = firing_probability(act, h @ layer[:, :-1].T + layer[:, -1], law, scale)
            for pattern in itertools.product([0.0, 1.0], repeat=layer.shape[0]):
                on = torch.tensor(pattern, dtype=torch.float64)
                grown.append((weight * (p * on + (1 - p) * (1 - on)).prod(1),
                              (act.low + act.value_range * on).expand(len(x), -1)))
        states = grown
    last = layers[-1]
    return sum((w * ((h @ last[:, :-1].T + last[:, -1] - y) ** 2).sum(1)).sum() for w, h in states) / y.numel()


def small_mlp(depth, activation):
    spec = MLPSpec(dim=2, seed=0, batch_size=4, num_batches=1, depth=depth, activation=activation)
    return MLPProbe(spec, dtype=torch.float64).batch(0)


def closed_form_bias(problem, law, scale):
    """The docstring's bias for one hidden layer, written with NumPy and SciPy: per sample and unit
    r^2/(h s) f(u/s) (2 F(u/s) - 1) |W2[:, j]|^2 / D, averaged over the samples and chained to W1 and b1;
    none on the read-out."""
    act = problem.act
    (w1, b1), (w2, _) = [(t[0, :, :-1].numpy(), t[0, :, -1].numpy()) for t in problem.unpack(problem.theta0[None])]
    x = problem.x.numpy()
    v = (x @ w1.T + b1 - act.threshold) / act.half_width / scale
    law_ = SCIPY_LAWS[law]
    per_unit = (act.value_range**2 / (act.half_width * scale) * law_.pdf(v) * (2 * law_.cdf(v) - 1)
                * (w2**2).sum(0) / w2.shape[0] / len(x))
    first = np.concatenate([per_unit.T @ x, per_unit.sum(0)[:, None]], axis=1)
    return np.concatenate([first.ravel(), np.zeros(problem.n_coords - first.size)])


@pytest.mark.parametrize("activation,law", [("zero_one", "logistic"), ("sign", "gaussian"), ("zero_one", "uniform")])
def test_one_hidden_layer_under_the_squared_error_is_biased_by_the_closed_form(activation, law):
    problem, scale = small_mlp(2, activation), 0.8
    theta = problem.theta0.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(expected_mse(theta, problem, law, scale), theta)
    bias = torch.from_numpy(closed_form_bias(problem, law, scale))
    mean, se = mean_and_standard_error(problem, 4000, law, scale)
    assert torch.all((mean - exact - bias).abs() <= 6 * se + 1e-10), ((mean - exact - bias) / se)
    first = slice(0, 6)  # the binary layer's weights and biases: the bias is real there, the read-out exact
    assert float((bias[first].abs() / se[first].clamp(min=1e-300)).max()) > 20


def test_two_stochastic_layers_are_biased_beyond_the_sampling_error():
    """Measured (docs/methods.md quotes it): relative error of the mean over 20,000 draws on each layer."""
    problem, law, scale = small_mlp(3, "zero_one"), "logistic", 0.8
    theta = problem.theta0.clone().requires_grad_(True)
    (exact,) = torch.autograd.grad(expected_mse(theta, problem, law, scale), theta)
    mean, se = mean_and_standard_error(problem, 2000, law, scale)
    groups = problem.coordinate_groups()
    relative = {k: float((mean[g] - exact[g]).norm() / exact[g].norm()) for k, g in groups.items()}
    print("relative error per layer:", relative)
    assert float(((mean - exact)[groups["1"]].abs() / se[groups["1"]]).max()) > 20
    assert relative["1"] > 0.2 and relative["3"] < 0.01  # the read-out's pathwise gradient is exact


def test_draws_stacked_or_one_by_one_give_the_same_estimate():
    problem = small_mlp(3, "sign")
    stacked = stochastic_ste(problem, 7, "gaussian", 0.5, (1,))
    problem.memory_budget_mb = 1e-9  # one draw per pass
    torch.testing.assert_close(stochastic_ste(problem, 7, "gaussian", 0.5, (1,)), stacked, rtol=1e-12, atol=1e-14)


def zero_noise(draw, layer, shape):
    return torch.zeros(tuple(shape), dtype=torch.float64)


def test_without_noise_uniform_of_the_ramps_width_is_the_vanilla_ste_on_the_mlp():
    """Noise fixed at 0 leaves the forward pass deterministic, and uniform noise at s = 1/sqrt(3) has the
    vanilla ramp as its surrogate: the estimate is the (separately tested) vanilla STE."""
    problem = small_mlp(3, "zero_one")
    torch.testing.assert_close(problem.stochastic_ste_gradient("uniform", 1 / math.sqrt(3), 2, zero_noise),
                               problem.ste_gradient("vanilla"), rtol=1e-12, atol=1e-14)


def test_the_layer_probe_samples_every_binary_activation_and_leaves_the_model_deterministic():
    from bnnprobe.finetune.data import digits_tensors
    from bnnprobe.finetune.resnet import ResNet18
    from bnnprobe.layerprobe.problem import LayerProbeProblem, LayerProbeSpec, default_layer

    torch.manual_seed(0)
    model = ResNet18(10, width=2, in_channels=1, image_size=8, binary=True)
    with torch.no_grad():
        model.train()
        model(torch.randn(64, 1, 8, 8))
    model.eval()
    problem = LayerProbeProblem(model, digits_tensors(), LayerProbeSpec(layer=default_layer(model), k=10,
                                                                        batch_size=32, seed=0))
    before = problem.loss()
    plain = problem.stochastic_ste_gradient("uniform", 1 / math.sqrt(3), 1, zero_noise)
    torch.testing.assert_close(plain, problem.ste_gradient("vanilla"), rtol=1e-5, atol=1e-7)
    noisy = stochastic_ste(problem, 2, "logistic", 0.5, (0,))
    assert torch.isfinite(noisy).all() and not torch.equal(noisy, problem.ste_gradient("vanilla"))
    assert problem.loss() == before  # the hooks are gone
