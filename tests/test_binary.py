"""Binary activations and STE surrogates against autograd and hand-written definitions."""

import numpy as np
import pytest
import torch

import math

from scipy import stats

from bnnprobe.binary import (NOISE_LAWS, STE_VARIANTS, SurrogateParams, binary_ste, get_activation, noise_cdf,
                             noise_density, noise_quantile, noise_surrogate, noise_surrogate_derivative,
                             stochastic_binary, surrogate, surrogate_derivative, xnor_binarize_weight)
from reference import surrogate_prime

PARAMS = SurrogateParams(steep_k=2.0, swishsign_beta=5.0)
# points away from the kinks of the piecewise-linear surrogates (|u| = 1, 1/k, 0)
U = torch.tensor([-2.3, -1.2, -0.9, -0.7, -0.45, -0.3, -0.1, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.3, 3.0],
                 dtype=torch.float64)


@pytest.mark.parametrize("variant", STE_VARIANTS)
def test_surrogate_derivative_matches_autograd(variant):
    u = U.clone().requires_grad_(True)
    (auto,) = torch.autograd.grad(surrogate(variant, u, PARAMS).sum(), u)
    torch.testing.assert_close(surrogate_derivative(variant, U, PARAMS), auto, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", [v for v in STE_VARIANTS if v != "identity"])  # identity: unclipped, below
def test_surrogate_rises_from_minus_one_to_one(variant):
    far = torch.tensor([-50.0, 50.0], dtype=torch.float64)
    torch.testing.assert_close(surrogate(variant, far, PARAMS), torch.tensor([-1.0, 1.0], dtype=torch.float64),
                               atol=1e-9, rtol=0)


@pytest.mark.parametrize("variant", STE_VARIANTS)
def test_surrogate_derivative_matches_written_formula(variant):
    expected = surrogate_prime(variant, U.numpy(), k=2.0, beta=5.0)
    np.testing.assert_allclose(surrogate_derivative(variant, U, PARAMS).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["zero_one", "sign"])
@pytest.mark.parametrize("variant", STE_VARIANTS)
def test_ste_backward_is_autograd_of_the_smooth_activation(name, variant):
    act = get_activation(name)
    x = (U * act.half_width + act.threshold).requires_grad_(True)
    (ste_grad,) = torch.autograd.grad(binary_ste(x, act, variant, PARAMS).sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    smooth = act.value_range / 2 * surrogate(variant, (x2 - act.threshold) / act.half_width, PARAMS) + act.centre
    (smooth_grad,) = torch.autograd.grad(smooth.sum(), x2)
    torch.testing.assert_close(ste_grad, smooth_grad, rtol=1e-10, atol=1e-12)


def test_hard_activation_values():
    x = torch.tensor([-1.0, 0.0, 0.49, 0.5, 2.0])
    assert get_activation("zero_one").hard(x).tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert get_activation("sign").hard(x).tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]
    assert binary_ste(x, get_activation("sign"), "vanilla").tolist() == [-1.0, 1.0, 1.0, 1.0, 1.0]


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="activation"):
        get_activation("relu")
    with pytest.raises(ValueError, match="STE variant"):
        binary_ste(torch.zeros(2), get_activation("sign"), "magic")


def test_xnor_weights_are_alpha_sign_per_filter():
    w = torch.tensor([[[1.0, -3.0]], [[0.5, 0.25]]])
    binary = xnor_binarize_weight(w)
    expected = torch.tensor([[[2.0, -2.0]], [[0.375, 0.375]]])
    torch.testing.assert_close(binary, expected)


def test_identity_surrogate_is_unclipped():
    far = torch.tensor([-50.0, -1.5, 0.3, 50.0], dtype=torch.float64)
    assert surrogate("identity", far).tolist() == far.tolist()
    assert surrogate_derivative("identity", far).tolist() == [1.0] * 4


# the noise laws at unit variance, from SciPy
SCIPY_LAWS = {"logistic": stats.logistic(scale=math.sqrt(3) / math.pi), "gaussian": stats.norm(),
              "uniform": stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3))}
V = torch.tensor([-2.5, -1.6, -0.8, -0.2, 0.0, 0.3, 0.9, 1.5, 1.8, 3.0], dtype=torch.float64)  # off +-sqrt(3)


@pytest.mark.parametrize("law", NOISE_LAWS)
def test_noise_laws_are_scipys_at_unit_variance(law):
    ref = SCIPY_LAWS[law]
    assert ref.var() == pytest.approx(1.0)
    np.testing.assert_allclose(noise_cdf(law, V).numpy(), ref.cdf(V.numpy()), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(noise_density(law, V).numpy(), ref.pdf(V.numpy()), rtol=1e-12, atol=1e-15)
    p = torch.tensor([1e-9, 0.01, 0.3, 0.5, 0.77, 0.999], dtype=torch.float64)
    np.testing.assert_allclose(noise_quantile(law, p).numpy(), ref.ppf(p.numpy()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("law", NOISE_LAWS)
@pytest.mark.parametrize("scale", [0.3, 1.0])
def test_noise_surrogate_derivative_matches_autograd(law, scale):
    u = (V * scale * 0.9).requires_grad_(True)  # the uniform's kinks at +-sqrt(3) scale avoided
    (auto,) = torch.autograd.grad(noise_surrogate(law, u, scale).sum(), u)
    torch.testing.assert_close(noise_surrogate_derivative(law, u.detach(), scale), auto, rtol=1e-10, atol=1e-12)


def test_uniform_noise_of_the_ramps_half_width_has_the_vanilla_ramp_as_its_mean():
    u = torch.linspace(-2, 2, 41, dtype=torch.float64)
    torch.testing.assert_close(noise_surrogate("uniform", u, 1 / math.sqrt(3)), surrogate("vanilla", u))


@pytest.mark.parametrize("name", ["zero_one", "sign"])
@pytest.mark.parametrize("law", NOISE_LAWS)
def test_stochastic_activation_samples_its_mean_and_backprops_the_means_slope(name, law):
    """Forward: over many noise draws, the frequency of the high value is F(u/s) (binomial error);
    backward: autograd of the mean activation low + r F(u/s) written from SciPy's CDF."""
    act, scale = get_activation(name), 0.7
    x = act.threshold + act.half_width * torch.tensor([-1.0, -0.3, 0.0, 0.4, 1.2], dtype=torch.float64)
    draws = 20000
    noise = torch.from_numpy(SCIPY_LAWS[law].rvs(size=(draws, len(x)), random_state=0))
    a = stochastic_binary(x.expand(draws, -1), noise, act, law, scale)
    p_high = ((a - act.low) / act.value_range).mean(0).numpy()
    u = ((x - act.threshold) / act.half_width).numpy()
    expected = SCIPY_LAWS[law].cdf(u / scale)
    assert np.all(np.abs(p_high - expected) <= 4.5 * np.sqrt(expected * (1 - expected) / draws) + 1e-12)
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(stochastic_binary(xg, torch.zeros_like(x), act, law, scale).sum(), xg)
    slope = act.value_range * SCIPY_LAWS[law].pdf(u / scale) / (scale * act.half_width)  # d/dx of low + r F(u/s)
    np.testing.assert_allclose(grad.numpy(), slope, rtol=1e-10)
