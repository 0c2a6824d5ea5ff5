"""Data sets for the XNOR-ResNet finetunes: verified downloads and compact tensor caches.

Every data set is converted once into a dict of uint8 image tensors and int64 labels::

    {"train": {"images": (N, C, H, W) uint8, "labels": (N,) int64},
     "val":   {...}, "classes": [names], "source": {what it was made from}}

so that training epochs never decode images again.

* CIFAR-10: ``cifar-10-python.tar.gz`` (md5 c58f30108f718f92721af3b95e74349a); the
  five training batches are ``train``, ``test_batch`` is ``val``.
* UC Merced Land Use (UCM): ``UCMerced_LandUse.zip`` (md5 5b7ec56793786b6dc8a908e8854ac0e4),
  21 classes x 100 TIFF images, split by the standard ``uc_merced-{train,val}.txt`` lists
  (Neumann et al. 2019); the 44 images that are not 256x256 are resized to it.
* digits: scikit-learn's embedded 8x8 digits (1797 images, 10 classes), split
  stratified into train/val: the offline data set of the laptop preset and the tests.
* imagefolder: your own data in torchvision's ImageFolder layout
  (``ROOT/train/<class>/*``, ``ROOT/val/<class>/*``). ``size: auto`` keeps the images'
  own size (they must then share one square size); a number centre-crops each image to
  a square and resizes it (the aspect ratio is kept). ``channels: auto`` stores one
  channel when every image is grayscale, else three (RGB); 1 or 3 forces it.

Downloads use torchvision's download and md5 utilities; a wrong checksum or an
unreachable URL fails with a message that names the file, both checksums, or the
config option that points at an archive already on disk.
"""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np


class DataError(RuntimeError):
    """A download or archive that cannot be used; the message says what to do."""


def fetch(url: str, md5: str | None, dest: str | Path, offline_file: str | Path | None = None,
          offline_option: str = "the data set's archive option") -> Path:
    """Put a verified copy of ``url`` (or of ``offline_file``) at ``dest``.

    The file is written beside ``dest`` under a temporary name and renamed only once its
    md5 matches, so a failed or corrupt download leaves nothing behind and a re-run
    downloads again.
    """
    from torchvision.datasets.utils import calculate_md5, download_url

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        part = Path(tmp) / dest.name
        if offline_file:
            source = Path(offline_file)
            if not source.is_file():
                raise DataError(f"{offline_option} is {source}, which is not a file")
            shutil.copyfile(source, part)
            origin = str(source)
        else:
            try:
                download_url(url, tmp, dest.name)
            except (urllib.error.URLError, OSError, RuntimeError) as exc:
                raise DataError(f"could not download {url}: {exc}. Without internet access, download "
                                f"{dest.name} elsewhere and set {offline_option} to its path") from exc
            origin = url
        if md5 is not None:
            actual = calculate_md5(str(part))
            if actual != md5 and offline_file:
                raise DataError(f"{offline_option} points at {origin}, which is not the expected {dest.name}: "
                                f"md5 {actual}, expected {md5}. Point {offline_option} at the right file "
                                "(or at a complete copy of it)")
            if actual != md5:
                raise DataError(f"{dest.name} from {origin} is corrupt or partial: md5 {actual}, expected {md5}. "
                                "Nothing was kept; run again to download it again")
        part.replace(dest)
    return dest


def _split(images: np.ndarray, labels: np.ndarray) -> dict:
    import torch  # here, not at the top: the Snakefile imports this module to list imagefolder files

    return {"images": torch.from_numpy(np.ascontiguousarray(images)).to(torch.uint8),
            "labels": torch.from_numpy(np.asarray(labels)).to(torch.int64)}


def cifar10_tensors(archive: str | Path) -> dict:
    """CIFAR-10 python batches (in the tar.gz) as uint8 tensors (N, 3, 32, 32)."""
    def load(tar, name):
        member = tar.extractfile(f"cifar-10-batches-py/{name}")
        if member is None:
            raise DataError(f"{archive} has no cifar-10-batches-py/{name}: not the CIFAR-10 python archive")
        batch = pickle.load(member, encoding="bytes")
        return np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(batch[b"labels"])

    try:
        with tarfile.open(archive, "r:gz") as tar:
            train = [load(tar, f"data_batch_{i}") for i in range(1, 6)]
            val = load(tar, "test_batch")
            meta = pickle.load(tar.extractfile("cifar-10-batches-py/batches.meta"), encoding="bytes")
    except (tarfile.TarError, EOFError, pickle.UnpicklingError) as exc:
        raise DataError(f"{archive} is not a readable CIFAR-10 archive: {exc}") from exc
    return {"train": _split(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train])),
            "val": _split(*val), "classes": [name.decode() for name in meta[b"label_names"]],
            "source": {"archive": Path(archive).name}}


def _resize_rgb(data: bytes, size: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def ucm_tensors(archive: str | Path, split_files: dict[str, str | Path], size: int = 256) -> dict:
    """UCM images listed in the split files, resized to ``size`` x ``size``, as uint8 tensors.

    A split file lists one image file name per line (e.g. ``agricultural00.tif``); the
    class is the image's folder in the archive.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise DataError(f"{archive} is not a readable zip archive: {exc}") from exc
    with zf:
        members = {Path(name).name: name for name in zf.namelist() if name.lower().endswith((".tif", ".tiff"))}
        classes = sorted({Path(name).parent.name for name in members.values()})
        out = {"classes": classes, "source": {"archive": Path(archive).name, "size": size}}
        for split, list_file in split_files.items():
            names = [line.strip() for line in Path(list_file).read_text().splitlines() if line.strip()]
            missing = [n for n in names if n not in members]
            if missing:
                raise DataError(f"{len(missing)} images of {Path(list_file).name} are not in {archive}, "
                                f"e.g. {missing[:3]}")
            images = np.stack([_resize_rgb(zf.read(members[n]), size) for n in names])
            labels = np.array([classes.index(Path(members[n]).parent.name) for n in names])
            out[split] = _split(images, labels)
    return out


def digits_tensors(val_fraction: float = 0.2, seed: int = 0) -> dict:
    """scikit-learn's 8x8 digits (values 0..16 scaled to 0..255), split stratified by class."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]
    idx_train, idx_val = train_test_split(np.arange(len(images)), test_size=val_fraction, random_state=seed,
                                          stratify=digits.target)
    return {"train": _split(images[idx_train], digits.target[idx_train]),
            "val": _split(images[idx_val], digits.target[idx_val]),
            "classes": [str(c) for c in digits.target_names],
            "source": {"dataset": "sklearn.datasets.load_digits", "val_fraction": val_fraction, "seed": seed}}


IMAGEFOLDER_SPLITS = ("train", "val")


def imagefolder_files(root: str | Path) -> list[Path]:
    """Every file under ``root/train`` and ``root/val``, sorted: what the tensor cache depends on."""
    root = Path(root)
    return sorted(p for split in IMAGEFOLDER_SPLITS if (root / split).is_dir()
                  for p in (root / split).rglob("*") if p.is_file() and not p.name.startswith("."))


def _load_image(path: str | Path, size: int | None, mode: str) -> np.ndarray:
    """One image as uint8 (C, H, W) in ``mode`` (L or RGB), centre-cropped to a square and resized
    to ``size`` (``None``: as it is)."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert(mode)
        if size is not None:
            w, h = image.size
            if w != h:
                side = min(w, h)
                left, top = (w - side) // 2, (h - side) // 2
                image = image.crop((left, top, left + side, top + side))
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def imagefolder_tensors(root: str | Path, size: int | str = "auto", channels: int | str = "auto") -> dict:
    """``root/train`` and ``root/val`` in torchvision's ImageFolder layout (see the module docstring)."""
    from PIL import Image
    from torchvision.datasets import ImageFolder

    root = Path(root)
    folders = {}
    for split in IMAGEFOLDER_SPLITS:
        if not (root / split).is_dir():
            raise DataError(f"imagefolder root {root} has no '{split}' folder of class sub-folders")
        folders[split] = ImageFolder(str(root / split))
    if folders["val"].classes != folders["train"].classes:
        raise DataError(f"{root}/val has classes {folders['val'].classes}, {root}/train has "
                        f"{folders['train'].classes}")
    paths = [path for folder in folders.values() for path, _ in folder.samples]
    shapes, modes = set(), set()
    for path in paths:
        with Image.open(path) as image:
            shapes.add(image.size)
            modes.add(image.mode)
    if size == "auto":
        if len(shapes) != 1 or len({*next(iter(shapes))}) != 1:
            raise DataError(f"the images under {root} are not all of one square size ({sorted(shapes)[:4]}...): "
                            "set data.imagefolder.size to the side they should be cropped and resized to")
        size_px = None
    else:
        size_px = int(size)
    grayscale = modes <= {"1", "L", "LA", "I", "I;16", "F"}
    mode = {"auto": "L" if grayscale else "RGB", 1: "L", 3: "RGB"}[channels]
    out = {"classes": folders["train"].classes,
           "source": {"root": str(root), "size": size, "channels": channels, "mode": mode}}
    for split, folder in folders.items():
        images = np.stack([_load_image(path, size_px, mode) for path, _ in folder.samples])
        out[split] = _split(images, [label for _, label in folder.samples])
    return out


DATASETS = ("cifar10", "ucm", "digits", "imagefolder")


def build_cache(dataset: str, settings: dict, archive: str | Path | None = None,
                split_files: dict[str, str | Path] | None = None) -> dict:
    """The tensor cache of one configured data set (see the module docstring)."""
    if dataset == "cifar10":
        return cifar10_tensors(archive)
    if dataset == "ucm":
        return ucm_tensors(archive, split_files, size=int(settings["size"]))
    if dataset == "digits":
        return digits_tensors(float(settings["val_fraction"]), int(settings["seed"]))
    if dataset == "imagefolder":
        if not settings.get("root"):
            raise DataError("data.imagefolder.root is not set: point it at a folder with train/ and val/")
        return imagefolder_tensors(settings["root"], settings.get("size", "auto"), settings.get("channels", "auto"))
    raise DataError(f"unknown data set {dataset!r}; choose one of {DATASETS}")
