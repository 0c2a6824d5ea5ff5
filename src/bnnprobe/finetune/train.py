"""Training loop for the (XNOR-)ResNet finetunes: resumable, deterministic on the CPU.

One epoch: shuffle (seeded by (seed, epoch)), augment (random crop with padding + horizontal
flip, seeded the same way), Adam steps, then evaluation on the validation split. After
every epoch the model, optimiser and scheduler states and all metrics so far are saved
atomically to the checkpoint; a run that finds a checkpoint continues from the epoch
after it, so a killed job re-run ends with the same metrics as an uninterrupted one.
A NaN or infinite training loss stops the run with a message.

Metrics per epoch: epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from ..io import load_checkpoint, save_torch
from ..seeding import generator

log = logging.getLogger(__name__)
METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine | constant
    augment: bool = True
    seed: int = 0


class NonFiniteTrainingLoss(FloatingPointError):
    pass


# oneDNN's AVX2 1x1 convolution with stride > 1 writes past its workspace in the backward pass for
# NHWC inputs with fewer input channels than its block of 8 (uxlfoundation/oneDNN#6035, torch 2.14.1):
# heap corruption, then SIGABRT/SIGSEGV in a later op. A width-4 ResNet's first shortcut is such a conv.
ONEDNN_NHWC_MIN_1X1_STRIDED_CHANNELS = 8


def activation_memory_format(model: torch.nn.Module, device: torch.device) -> torch.memory_format:
    """The layout of the images (and so of every activation) ``model`` sees on ``device``.

    channels_last where it is safe: it is what tensor cores want on CUDA and it is 1.6x faster
    per step on the CPU too (width 16 at 32 px, measured). Plain NCHW on the CPU for models
    with a strided 1x1 convolution of fewer than 8 input channels (the oneDNN bug above).
    It must be chosen, not inherited: a one-channel uint8 cache (digits) has strides that
    PyTorch reads as channels_last, and so does the output of :func:`augment`.
    """
    if torch.device(device).type == "cuda":
        return torch.channels_last
    for module in model.modules():
        if (isinstance(module, torch.nn.Conv2d) and module.kernel_size == (1, 1) and max(module.stride) > 1
                and module.in_channels < ONEDNN_NHWC_MIN_1X1_STRIDED_CHANNELS):
            return torch.contiguous_format
    return torch.channels_last


def images_to_float(images: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format
                    ) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float in [-1, 1], written into a fresh tensor of ``memory_format``.

    A fresh tensor, because ``.contiguous()`` keeps ambiguous strides (C = 1) as they are.
    """
    out = torch.empty(images.shape, dtype=torch.float32, device=images.device, memory_format=memory_format)
    return out.copy_(images).div_(127.5).sub_(1.0)


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding of size/8 (4 px at 32 px) and a random horizontal flip, per image."""
    n, _, h, w = images.shape
    pad = max(1, h // 8)
    padded = F.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    rows = (dy[:, None] + torch.arange(h)[None]).to(images.device)
    cols = (dx[:, None] + torch.arange(w)[None]).to(images.device)
    cols = torch.where(flip.to(images.device)[:, None], cols.flip(1), cols)
    idx = torch.arange(n, device=images.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def evaluate(model, images, labels, batch_size, device) -> tuple[float, float]:
    memory_format = activation_memory_format(model, device)
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            x = images_to_float(images[start:start + batch_size].to(device), memory_format)
            y = labels[start:start + batch_size].to(device)
            logits = model(x).float()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    return total_loss / len(labels), correct / len(labels)


def train(model: torch.nn.Module, data: dict, settings: TrainSettings, checkpoint: str | Path,
          device: str | torch.device = "cpu") -> pd.DataFrame:
    """Train ``model`` on ``data`` (a tensor cache, see :mod:`bnnprobe.data`); returns the metrics table."""
    device = torch.device(device)
    checkpoint = Path(checkpoint)
    model.to(device)
    cuda = device.type == "cuda"
    memory_format = activation_memory_format(model, device)
    model.to(memory_format=memory_format)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.epochs)
                 if settings.schedule == "cosine" else torch.optim.lr_scheduler.LambdaLR(optimiser, lambda _: 1.0))
    rows, first_epoch = [], 1
    state = load_checkpoint(checkpoint, lambda c: c["settings"] == asdict(settings), map_location=device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        rows, first_epoch = state["metrics"], state["epoch"] + 1
        log.info("resuming from %s after epoch %d", checkpoint, state["epoch"])
    train_x, train_y = data["train"]["images"], data["train"]["labels"]
    n = len(train_y)
    for epoch in range(first_epoch, settings.epochs + 1):
        start = time.perf_counter()
        model.train()
        gen = generator("epoch", settings.seed, epoch)
        order = torch.randperm(n, generator=gen)
        lr = optimiser.param_groups[0]["lr"]
        total_loss, correct = 0.0, 0
        for step, first in enumerate(range(0, n, settings.batch_size)):
            idx = order[first:first + settings.batch_size]
            x = train_x[idx]
            if settings.augment:
                x = augment(x, gen)
            x, y = images_to_float(x.to(device), memory_format), train_y[idx].to(device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=cuda):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            loss_value = float(loss.detach())
            if not math.isfinite(loss_value):
                raise NonFiniteTrainingLoss(f"training loss is {loss_value} at epoch {epoch}, step {step}: "
                                            "lower the learning rate or check the data")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total_loss += loss_value * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        scheduler.step()
        val_loss, val_acc = evaluate(model, data["val"]["images"], data["val"]["labels"], settings.batch_size,
                                     device)
        rows.append({"epoch": epoch, "train_loss": total_loss / n, "train_acc": correct / n, "val_loss": val_loss,
                     "val_acc": val_acc, "lr": lr, "seconds": time.perf_counter() - start})
        log.info("epoch %d/%d: train loss %.4f acc %.4f, val loss %.4f acc %.4f (%.1fs, %.1f images/s, ETA %.0fs)",
                 epoch, settings.epochs, rows[-1]["train_loss"], rows[-1]["train_acc"], val_loss, val_acc,
                 rows[-1]["seconds"], n / rows[-1]["seconds"], rows[-1]["seconds"] * (settings.epochs - epoch))
        save_torch({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch, "metrics": rows,
                    "settings": asdict(settings)}, checkpoint)
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
