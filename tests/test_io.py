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
    with pytest.raises(UnreadableFileError, match=r"cannot read .*seed0\.pt.*delete it and remake it .*--forcerun .*seed0\.pt"):
        load_torch(path)


def test_a_failed_write_leaves_no_file_and_no_part(tmp_path):
    import pandas as pd

    class Boom(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_csv(Boom({"a": [1]}), tmp_path / "t.csv")
    assert list(tmp_path.iterdir()) == []


def _record():
    return {"format": 2, "gradients": torch.randn(4, 6, dtype=torch.float64), "counts": torch.arange(5),
            "mask": torch.tensor([True, False]), "settings": {"sigma": 0.01, "name": "nes-10"}, "steps": [1, 2]}


def test_a_record_reads_back_as_written(tmp_path):
    record = _record()
    save_torch(record, tmp_path / "r.pt")
    back = load_torch(tmp_path / "r.pt")
    assert sorted(back) == sorted(record) and back["settings"] == record["settings"]
    for key in ("gradients", "counts", "mask"):
        assert torch.equal(back[key], record[key]) and back[key].dtype == record[key].dtype


def test_a_record_changed_inside_a_valid_file_is_refused_naming_it(tmp_path):
    """One float changed in place (the file stays a valid torch file) is caught by the checksum."""
    path = tmp_path / "seed1.pt"
    record = _record()
    save_torch(record, path)
    data = bytearray(path.read_bytes())
    target = record["gradients"][2, 3].numpy().tobytes()  # the stored tensor bytes are the float64's own
    at = bytes(data).index(target)
    data[at] ^= 0x01  # one bit of one float
    path.write_bytes(bytes(data))
    changed = torch.load(path, weights_only=True)["content"]  # torch itself reads it without complaint
    assert not torch.equal(changed["gradients"], record["gradients"])
    with pytest.raises(UnreadableFileError, match=r"seed1\.pt was changed after it was written.*"
                                                  r"snakemake --cores all --forcerun .*seed1\.pt"):
        load_torch(path)


def test_a_file_without_a_checksum_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": 2, "gradients": torch.zeros(3)}, path)  # what an older version wrote
    with pytest.raises(UnreadableFileError, match=r"old\.pt carries no content checksum"):
        load_torch(path)


def test_the_checksum_sees_values_shapes_and_dtypes_but_not_key_order():
    from bnnprobe.io import content_digest

    x = torch.arange(6, dtype=torch.float32)
    base = content_digest({"a": x, "b": 1})
    assert content_digest({"b": 1, "a": x.clone()}) == base
    assert content_digest({"a": x.reshape(2, 3), "b": 1}) != base
    assert content_digest({"a": x.double(), "b": 1}) != base
    assert content_digest({"a": x, "b": 1.0}) != base
    y = x.clone()
    y[5] = torch.nextafter(y[5], torch.tensor(10.0))  # the smallest change a float32 can make
    assert content_digest({"a": y, "b": 1}) != base
    assert content_digest({"a": x.t() if x.dim() == 2 else x[::2], "b": 1}) != base


def test_a_full_disk_is_reported_as_such(tmp_path):
    """/dev/full answers every write with ENOSPC, as a full file system does."""
    from bnnprobe.io import DiskFullError, write_bytes

    with pytest.raises(DiskFullError, match=r"no space left on the device while writing results/x\.pt \(100\.0 kB\)"):
        write_bytes("/dev/full", b"\0" * 100_000, name="results/x.pt")
