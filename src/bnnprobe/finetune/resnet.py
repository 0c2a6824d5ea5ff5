"""ResNet-18 with a configurable width, and its XNOR version (Rastegari et al. 2016).

Widths of the four stages are ``width x (1, 2, 4, 8)`` (torchvision's ResNet-18 is width 64).
Inputs of at most 64 px get a 3x3 stride-1 stem (CIFAR style); larger inputs the
ImageNet stem (7x7 stride 2, then 3x3 max-pool).

XNOR version: every 3x3 convolution inside the residual blocks becomes
``BN -> binary activation (sign, vanilla STE) -> binary conv`` with weights
``alpha * sign(W)``, alpha the mean |W| of each output filter. The stem convolution,
the final linear layer and the 1x1 downsampling shortcuts stay full precision (as in
common XNOR-ResNet code). The activation scaling factor K of the XNOR-Net paper is
omitted, as in most later implementations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..binary import SurrogateParams, binary_ste, get_activation, xnor_binarize_weight

SMALL_INPUT_MAX_PX = 64


class XNORConv2d(nn.Conv2d):
    """Convolution with weights ``alpha * sign(W)`` per output filter (gradients pass straight to W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, xnor_binarize_weight(self.weight), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class BinarySTEActivation(nn.Module):
    """sign(x) forward; the clipped-identity (vanilla) STE backward."""

    def __init__(self, variant: str = "vanilla", params: SurrogateParams = SurrogateParams()):
        super().__init__()
        self.variant, self.params = variant, params
        self.activation = get_activation("sign")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return binary_ste(x, self.activation, self.variant, self.params)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, binary: bool):
        super().__init__()
        self.binary = binary
        if binary:  # BN -> binary activation -> binary conv, twice
            self.body = nn.Sequential(
                nn.BatchNorm2d(in_ch), BinarySTEActivation(), XNORConv2d(in_ch, out_ch, 3, stride, 1, bias=False),
                nn.BatchNorm2d(out_ch), BinarySTEActivation(), XNORConv2d(out_ch, out_ch, 3, 1, 1, bias=False),
            )
        else:
            self.body = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
                nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
            )
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.shortcut(x)
        return out if self.binary else F.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 (2 basic blocks per stage) of first-stage ``width``; ``binary=True`` is the XNOR version."""

    def __init__(self, num_classes: int, width: int = 64, in_channels: int = 3, image_size: int = 32,
                 binary: bool = False):
        super().__init__()
        if image_size <= SMALL_INPUT_MAX_PX:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, in_ch = [], width
        for stage, mult in enumerate((1, 2, 4, 8)):
            out_ch = width * mult
            for i in range(2):
                blocks.append(BasicBlock(in_ch, out_ch, 2 if stage > 0 and i == 0 else 1, binary))
                in_ch = out_ch
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(in_ch, num_classes)
        self.binary, self.width, self.in_channels, self.image_size = binary, width, in_channels, image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# XNOR block body [0 BN(in), 1 act, 2 conv, 3 BN(out), 4 act, 5 conv] <- FP body [0 conv, 1 BN, 2 ReLU, 3 conv, 4 BN]
_XNOR_FROM_FP = {"2.weight": "0.weight", "5.weight": "3.weight",
                 **{f"3.{k}": f"1.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked")}}


def xnor_from_full_precision(full: ResNet18) -> ResNet18:
    """An XNOR ResNet-18 initialised from a full-precision one of the same width ("finetune").

    Copied: stem, head, shortcuts, each 3x3 conv's real-valued weights (the latent
    weights the XNOR conv binarises) and the batch norm after each block's first conv.
    The XNOR blocks' input batch norm has no full-precision counterpart and starts fresh.
    """
    xnor = ResNet18(full.head.out_features, full.width, full.in_channels, full.image_size, binary=True)
    source, target = full.state_dict(), xnor.state_dict()
    for name in target:
        prefix, body, tail = name.partition(".body.")
        key = f"{prefix}.body.{_XNOR_FROM_FP[tail]}" if body and tail in _XNOR_FROM_FP else (None if body else name)
        if key is not None and source[key].shape == target[name].shape:
            target[name] = source[key].clone()
    xnor.load_state_dict(target)
    return xnor
