"""Result files: readable by collaborators (the umask's mode), and a damaged one is named when read."""

import os
import stat

import pytest
import torch

from bnnprobe.io import UnreadableFileError, load_torch, save_csv, save_json, save_torch


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_json({"a": 1}, tmp_path / "a.json")
        save_torch({"x": torch.zeros(2)}, tmp_path / "b.pt")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")  # what open() gives, the independent reference
    finally:
        os.umask(old)
    for name in ("a.json", "b.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)


def test_a_truncated_record_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "seed0.pt"
    save_torch({"gradients": torch.randn(100, 100)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match=r"cannot read .*seed0\.pt.*delete it and run again"):
        load_torch(path)


def test_a_failed_write_leaves_no_file_and_no_part(tmp_path):
    import pandas as pd

    class Boom(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_csv(Boom({"a": [1]}), tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []
