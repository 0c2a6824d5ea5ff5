"""ResNet-18 widths, the XNOR conv against a direct computation, and the FP -> XNOR initialisation."""

import numpy as np
import pytest
import torch

from bnnprobe.finetune.resnet import ResNet18, XNORConv2d, xnor_from_full_precision


def test_xnor_conv_equals_direct_computation():
    torch.manual_seed(0)
    conv = XNORConv2d(2, 3, kernel_size=3, stride=1, padding=1, bias=False)
    x = torch.sign(torch.randn(1, 2, 5, 4))
    out = conv(x).detach().numpy()
    w, xp = conv.weight.detach().numpy(), np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for o in range(3):
        alpha = np.abs(w[o]).mean()
        for i in range(5):
            for j in range(4):
                patch = xp[0, :, i:i + 3, j:j + 3]
                expected = alpha * np.sum(np.where(w[o] >= 0, 1.0, -1.0) * patch)
                assert out[0, o, i, j] == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_xnor_conv_gradient_reaches_latent_weights():
    conv = XNORConv2d(1, 1, 3, padding=1, bias=False)
    conv(torch.randn(1, 1, 4, 4)).sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("width,size,shape", [(8, 32, (2, 10)), (4, 96, (2, 21)), (6, 8, (2, 10))])
@pytest.mark.parametrize("binary", [False, True])
def test_shapes_and_stage_widths(width, size, shape, binary):
    model = ResNet18(shape[1], width=width, in_channels=1 if size == 8 else 3, image_size=size, binary=binary)
    x = torch.randn(2, 1 if size == 8 else 3, size, size)
    assert model(x).shape == shape
    last_conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    assert last_conv.out_channels == 8 * width
    n_xnor = sum(isinstance(m, XNORConv2d) for m in model.modules())
    assert n_xnor == (16 if binary else 0)  # 8 blocks x 2 binary convs; stem, shortcuts, head stay FP


def test_xnor_initialised_from_full_precision():
    torch.manual_seed(1)
    full = ResNet18(10, width=4, image_size=32)
    xnor = xnor_from_full_precision(full)
    fs, xs = full.state_dict(), xnor.state_dict()
    assert torch.equal(xs["stem.0.weight"], fs["stem.0.weight"]) and torch.equal(xs["head.weight"], fs["head.weight"])
    assert torch.equal(xs["blocks.3.body.2.weight"], fs["blocks.3.body.0.weight"])
    assert torch.equal(xs["blocks.3.body.5.weight"], fs["blocks.3.body.3.weight"])
    assert torch.equal(xs["blocks.2.shortcut.0.weight"], fs["blocks.2.shortcut.0.weight"])
    assert torch.equal(xs["blocks.1.body.3.running_mean"], fs["blocks.1.body.1.running_mean"])
