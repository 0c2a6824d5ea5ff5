"""Training: a run killed mid-epoch and restarted ends with the same metrics as an uninterrupted one."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import torch

from bnnprobe.data import digits_tensors
from bnnprobe.train import METRIC_COLUMNS, NonFiniteTrainingLoss, TrainSettings, augment, train
from conftest import REPO

SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {src!r})
    from bnnprobe.data import digits_tensors
    from bnnprobe.resnet import ResNet18
    from bnnprobe.train import TrainSettings, train
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ResNet18(10, width=4, in_channels=1, image_size=8, binary=True)
    settings = TrainSettings(epochs=5, batch_size=64, lr=2e-3, weight_decay=1e-5, seed=3)
    train(model, digits_tensors(), settings, sys.argv[1]).to_csv(sys.argv[2], index=False)
""").format(src=str(REPO / "src"))


def run(args, **kwargs):
    return subprocess.Popen([sys.executable, "-c", SCRIPT, *map(str, args)], **kwargs)


def checkpoint_epoch(path):
    try:
        return torch.load(path, weights_only=False)["epoch"]
    except (FileNotFoundError, EOFError, RuntimeError):
        return 0


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    straight = run([tmp_path / "a.pt", tmp_path / "a.csv"])
    assert straight.wait(timeout=600) == 0
    killed = run([tmp_path / "b.pt", tmp_path / "b.csv"])
    deadline = time.time() + 600
    while checkpoint_epoch(tmp_path / "b.pt") < 2 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)  # in epoch 3, most likely mid-epoch
    killed.wait()
    assert not (tmp_path / "b.csv").exists()
    assert 2 <= checkpoint_epoch(tmp_path / "b.pt") < 5
    resumed = run([tmp_path / "b.pt", tmp_path / "b.csv"])
    assert resumed.wait(timeout=600) == 0
    a = pd.read_csv(tmp_path / "a.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "b.csv").drop(columns="seconds")
    assert list(a.epoch) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(a, b)
    assert a.train_acc.iloc[-1] > 0.2 and a.train_loss.iloc[-1] < a.train_loss.iloc[0]  # above chance (0.1), learning


def test_nan_loss_stops_the_run(tmp_path):
    class Broken(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan")) + self.w

    with pytest.raises(NonFiniteTrainingLoss, match="epoch 1"):
        train(Broken(), digits_tensors(), TrainSettings(epochs=1, batch_size=32, lr=1e-3), tmp_path / "c.pt")
    assert not (tmp_path / "c.pt").exists()


def test_augmentation_is_a_shifted_or_flipped_crop():
    images = torch.arange(2 * 1 * 8 * 8, dtype=torch.uint8).reshape(2, 1, 8, 8)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    for k in range(2):
        padded = torch.nn.functional.pad(images[k], (1, 1, 1, 1))
        crops = [padded[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)]
        assert any(torch.equal(out[k], c) or torch.equal(out[k], c.flip(-1)) for c in crops)


def test_metrics_columns():
    assert METRIC_COLUMNS == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
