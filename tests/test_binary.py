"""Binary activations and STE surrogates against autograd and hand-written definitions."""

import numpy as np
import pytest
import torch

from bnnprobe.binary import (STE_VARIANTS, SurrogateParams, binary_ste, get_activation, surrogate,
                             surrogate_derivative, xnor_binarize_weight)
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


@pytest.mark.parametrize("variant", STE_VARIANTS)
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
