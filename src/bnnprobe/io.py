"""Atomic writes (a reader, or a killed job, never sees a half-written output), records that carry a
checksum of their content, and reads that name the file they could not read or trust."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


class UnreadableFileError(OSError):
    """A result file that exists but cannot be read back (truncated by a killed job, a full disk, ...)."""


class DiskFullError(OSError):
    """No space was left on the device while writing a result (nothing partial is left behind)."""


def remake_advice(path) -> str:
    """What to do with a damaged result file: delete it and remake it with everything computed from it. A plain
    run would not: the tables made from the file are still there and up to date."""
    return (f"delete it and remake it and everything computed from it with: snakemake --cores all --forcerun "
            f"{path} (add the --configfile you ran with)")


def _current_umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode a plain ``open()`` would give (0666 less the umask), not mkstemp's
    0600, so that collaborators on a shared file system can read the results.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.fchmod(fd, 0o666 & ~_current_umask())
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def content_digest(obj) -> str:
    """sha256 of a record's content: every tensor's dtype, shape and bytes, every key and plain value, in
    an order that does not depend on how the file was written (dict keys sorted)."""
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


def _feed(digest, obj) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        flat = obj.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(obj.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        digest.update(f"D{len(obj)}|".encode())
        for key in sorted(obj, key=repr):
            _feed(digest, key)
            _feed(digest, obj[key])
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}|".encode())
        for item in obj:
            _feed(digest, item)
    else:  # str, int, float (repr round-trips exactly), bool, None, torch.dtype/device/Size
        digest.update(f"{type(obj).__name__}:{obj!r}|".encode())


def _size(n: int) -> str:
    """``n`` bytes the way a person reads them: 512 bytes, 3.4 kB, 12.0 MB."""
    return f"{n} bytes" if n < 1000 else f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def write_bytes(path, data, name=None) -> None:
    """Write ``data`` to ``path``; a full disk is reported as such, naming the result (``name``)."""
    try:
        with open(path, "wb") as file:
            file.write(data)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(exc.errno, f"no space left on the device while writing {name or path} "
                                f"({_size(len(data))}): free some space and run again; nothing partial "
                                "was kept") from None
        raise


def save_torch(obj, path) -> None:
    """Save a record with a checksum of its content (:func:`content_digest`), verified by :func:`load_torch`.

    The file is serialised in memory first and written with plain Python I/O, so that a full disk raises
    :class:`DiskFullError` rather than torch's internal message about zip positions."""
    import torch  # here: table and figure jobs import this module and need no torch

    buffer = io.BytesIO()
    torch.save({"sha256": content_digest(obj), "content": obj}, buffer)
    with atomic_path(path) as tmp:
        write_bytes(tmp, buffer.getbuffer(), name=path)


def load_torch(path, map_location="cpu"):
    """A record written by :func:`save_torch` (tensors and plain containers only), its checksum verified.

    A file that cannot be read, that has no checksum (another program or an older version wrote it) or
    whose content no longer matches its checksum is refused with :class:`UnreadableFileError`, naming it
    and saying how to remake it."""
    import torch

    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # truncated zip, wrong format, pickled objects: all mean "remake this file"
        raise UnreadableFileError(f"cannot read {path} ({type(exc).__name__}): the file is damaged or was not "
                                  f"written by bnnprobe; {remake_advice(path)}") from None
    if not (isinstance(saved, dict) and set(saved) == {"sha256", "content"}):
        raise UnreadableFileError(f"{path} carries no content checksum: it was written by an older version of "
                                  f"bnnprobe or by another program; {remake_advice(path)}")
    if content_digest(saved["content"]) != saved["sha256"]:
        raise UnreadableFileError(f"{path} was changed after it was written: its content no longer matches the "
                                  f"checksum written with it; {remake_advice(path)}")
    return saved["content"]


def load_checkpoint(path, matches, map_location="cpu"):
    """The checkpoint at ``path`` to resume from, or None to start over.

    A checkpoint holds no result, only the time a killed job had spent: one that is damaged, or that
    ``matches(saved)`` says was made for other settings (a config changed since the job was killed), is
    deleted with a warning naming it and why, and the job starts from the beginning."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        saved = load_torch(path, map_location=map_location)
        reason = None if matches(saved) else "it was made with other settings than this job's"
    except UnreadableFileError as exc:
        saved, reason = None, str(exc).split(";")[0]
    if reason is None:
        return saved
    logging.getLogger(__name__).warning("discarding the checkpoint %s (%s): starting over", path, reason)
    path.unlink()
    return None


def save_csv(frame, path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def save_json(obj, path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_figure(fig, path) -> None:
    """A figure at its drawn size (cropped to its content) and :data:`bnnprobe.style.DPI`, which a PNG
    records in its metadata (the pHYs chunk)."""
    from .style import DPI

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=DPI, bbox_inches="tight", pad_inches=0.02,
                    metadata={"Software": None} if str(path).endswith(".png") else None)


def cpu_model() -> str:
    """This machine's processor model (``/proc/cpuinfo``), or what Python's platform module knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
