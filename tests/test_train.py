"""Training: a run killed mid-epoch and restarted ends with the same metrics as an uninterrupted one;
a small-channel XNOR-ResNet trains on an AVX2 CPU without corrupting the heap."""

import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from bnnprobe.finetune.data import digits_tensors
from bnnprobe.finetune.train import METRIC_COLUMNS, NonFiniteTrainingLoss, TrainSettings, augment, train
from bnnprobe.io import UnreadableFileError, load_torch
from conftest import REPO

SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {src!r})
    from bnnprobe.finetune.data import digits_tensors
    from bnnprobe.finetune.resnet import ResNet18
    from bnnprobe.finetune.train import TrainSettings, train
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kill_at_step = int(sys.argv[3]) if len(sys.argv) > 3 else None
    if kill_at_step is not None:  # die like a SIGKILLed job, mid-epoch, at a step that does not depend on speed
        import os, signal
        steps = [0]
        adam_step = torch.optim.Adam.step
        def counting_step(self, *args, **kwargs):
            steps[0] += 1
            if steps[0] == kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return adam_step(self, *args, **kwargs)
        torch.optim.Adam.step = counting_step
    model = ResNet18(10, width=4, in_channels=1, image_size=8, binary=True)
    settings = TrainSettings(epochs=5, batch_size=64, lr=2e-3, weight_decay=1e-5, seed=3)
    train(model, digits_tensors(), settings, sys.argv[1]).to_csv(sys.argv[2], index=False)
""").format(src=str(REPO / "src"))


def run(args, env=None):
    return subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=1800)


STEPS_PER_EPOCH = -(-len(digits_tensors()["train"]["labels"]) // 64)


def checkpoint_epoch(path):
    try:
        return load_torch(path)["epoch"]
    except (FileNotFoundError, UnreadableFileError):
        return 0


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    straight = run([tmp_path / "a.pt", tmp_path / "a.csv"])
    assert straight.returncode == 0, straight.stderr
    killed = run([tmp_path / "b.pt", tmp_path / "b.csv", 2 * STEPS_PER_EPOCH + 3])  # mid-epoch 3
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "b.csv").exists()
    assert checkpoint_epoch(tmp_path / "b.pt") == 2
    (tmp_path / "c.pt").write_bytes((tmp_path / "b.pt").read_bytes()[:300])  # a checkpoint cut short
    restarted = run([tmp_path / "c.pt", tmp_path / "c.csv"])
    assert restarted.returncode == 0 and f"discarding the checkpoint {tmp_path / 'c.pt'}" in restarted.stderr
    resumed = run([tmp_path / "b.pt", tmp_path / "b.csv"])
    assert resumed.returncode == 0, resumed.stderr
    a = pd.read_csv(tmp_path / "a.csv").drop(columns="seconds")
    b = pd.read_csv(tmp_path / "b.csv").drop(columns="seconds")
    assert list(a.epoch) == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, pd.read_csv(tmp_path / "c.csv").drop(columns="seconds"))  # from the start
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


def test_small_channel_xnor_resnet_trains_on_an_avx2_cpu(tmp_path):
    """Regression: oneDNN's AVX2 1x1 strided convolution backward corrupts the heap for NHWC inputs with
    fewer than 8 channels (uxlfoundation/oneDNN#6035); one-channel digits batches used to reach it as
    NHWC. ONEDNN_MAX_CPU_ISA=AVX2 picks the AVX2 kernels on any x86 CPU, so this fails before the fix
    on AVX-512 machines too (rc -6 or -11), and is a plain run elsewhere."""
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "MALLOC_CHECK_": "3"}
    result = run([tmp_path / "c.pt", tmp_path / "c.csv"], env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(pd.read_csv(tmp_path / "c.csv")) == 5


def test_channels_last_except_where_onednn_avx2_breaks():
    from bnnprobe.finetune.resnet import ResNet18
    from bnnprobe.finetune.train import activation_memory_format

    def fmt(width, device="cpu"):
        return activation_memory_format(ResNet18(10, width=width, in_channels=1, image_size=8, binary=True), device)

    assert fmt(4) == torch.contiguous_format  # first shortcut: 1x1, stride 2, 4 input channels
    assert fmt(8) == torch.channels_last
    assert fmt(4, "cuda") == torch.channels_last
