"""Pretrain a full-precision ResNet-18 of a width, then finetune its XNOR version (one run, one seed)."""

from __future__ import annotations

from pathlib import Path

import torch

from .resnet import ResNet18, xnor_from_full_precision
from .train import TrainSettings, train


def settings_from(run: dict, seed: int) -> TrainSettings:
    return TrainSettings(epochs=int(run["epochs"]), batch_size=int(run["batch_size"]), lr=float(run["lr"]),
                         weight_decay=float(run["weight_decay"]), schedule=run.get("schedule", "cosine"),
                         augment=bool(run.get("augment", True)), seed=seed)


def model_for(data: dict, width: int, binary: bool = False) -> ResNet18:
    _, channels, size, _ = data["train"]["images"].shape
    return ResNet18(len(data["classes"]), width, channels, size, binary=binary)


def pretrain(data: dict, width: int, settings: TrainSettings, checkpoint: str | Path, device="cpu"):
    """Full-precision ResNet-18 of ``width``; returns (state dict, metrics)."""
    torch.manual_seed(settings.seed)
    model = model_for(data, width)
    metrics = train(model, data, settings, checkpoint, device)
    return model.state_dict(), metrics


def finetune_xnor(data: dict, width: int, pretrained_state: dict, settings: TrainSettings,
                  checkpoint: str | Path, device="cpu"):
    """The XNOR version initialised from the full-precision pretrain of the same width, trained."""
    torch.manual_seed(settings.seed)
    full = model_for(data, width)
    full.load_state_dict(pretrained_state)
    model = xnor_from_full_precision(full)
    metrics = train(model, data, settings, checkpoint, device)
    return model.state_dict(), metrics
