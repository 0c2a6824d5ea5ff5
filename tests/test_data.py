"""Downloads against an HTTP server on 127.0.0.1 serving archives made here in the real formats."""

import functools
import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image

from bnnprobe.io import load_torch
from bnnprobe.finetune.data import DataError, cifar10_tensors, digits_tensors, fetch, imagefolder_tensors, ucm_tensors

RNG = np.random.default_rng(0)


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(path, per_batch=4):
    """cifar-10-python.tar.gz layout: pickled dicts with b'data' (n, 3072) uint8 and b'labels'."""
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        def add(name, obj):
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
            labels = RNG.integers(0, 10, per_batch).tolist()
            batches[name] = (data, labels)
            add(name, {b"data": data, b"labels": labels, b"batch_label": name.encode()})
        add("batches.meta", {b"label_names": [f"class{i}".encode() for i in range(10)]})
    return batches


def make_ucm(path, sizes):
    """UCMerced_LandUse.zip layout: Images/<class>/<class>NN.tif, some images not 256x256."""
    images = {}
    with zipfile.ZipFile(path, "w") as zf:
        for cls, shape in sizes.items():
            for i, (h, w) in enumerate(shape):
                pixels = RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, format="TIFF")
                name = f"{cls}{i:02d}.tif"
                zf.writestr(f"UCMerced_LandUse/Images/{cls}/{name}", buf.getvalue())
                images[name] = (cls, pixels)
    return images


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_cifar_download_verify_and_convert(server, tmp_path):
    root, url = server
    batches = make_cifar(root / "cifar-10-python.tar.gz")
    archive = fetch(f"{url}/cifar-10-python.tar.gz", md5(root / "cifar-10-python.tar.gz"),
                    tmp_path / "cifar-10-python.tar.gz")
    data = cifar10_tensors(archive)
    assert data["train"]["images"].shape == (20, 3, 32, 32) and data["val"]["images"].shape == (4, 3, 32, 32)
    # pixel (c, y, x) of image k is byte c*1024 + y*32 + x of its row in the pickle
    raw, labels = batches["data_batch_2"]
    assert data["train"]["images"][4 + 1, 2, 5, 7].item() == raw[1, 2 * 1024 + 5 * 32 + 7]
    assert data["train"]["labels"][4:8].tolist() == labels
    assert data["classes"][3] == "class3"


def test_wrong_checksum_fails_keeps_nothing_and_reruns_download(server, tmp_path):
    root, url = server
    make_cifar(root / "c.tar.gz")
    dest = tmp_path / "c.tar.gz"
    with pytest.raises(DataError) as info:
        fetch(f"{url}/c.tar.gz", "0" * 32, dest)
    message = str(info.value)
    assert "c.tar.gz" in message and "0" * 32 in message and md5(root / "c.tar.gz") in message
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary folder
    fetch(f"{url}/c.tar.gz", md5(root / "c.tar.gz"), dest)  # a re-run downloads again
    assert md5(dest) == md5(root / "c.tar.gz")


def test_unreachable_url_names_the_offline_option(tmp_path):
    with socket.socket() as sock:  # a port on which nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DataError, match="data.cifar10.archive"):
        fetch(f"http://127.0.0.1:{port}/cifar-10-python.tar.gz", None, tmp_path / "x.tar.gz",
              offline_option="data.cifar10.archive")
    assert list(tmp_path.iterdir()) == []


def test_archive_already_on_disk_is_used_and_verified(tmp_path):
    local = tmp_path / "local.tar.gz"
    make_cifar(local)
    dest = fetch("http://unused.invalid/x", md5(local), tmp_path / "out" / "cifar.tar.gz", offline_file=local)
    assert md5(dest) == md5(local)
    with pytest.raises(DataError, match="expected"):
        fetch("http://unused.invalid/x", "f" * 32, tmp_path / "out2" / "cifar.tar.gz", offline_file=local)


def test_ucm_zip_split_and_resize(server, tmp_path):
    root, url = server
    images = make_ucm(root / "UCMerced_LandUse.zip",
                      {"beach": [(256, 256), (247, 256), (256, 256)], "forest": [(256, 256), (256, 252)]})
    (root / "train.txt").write_text("beach00.tif\nbeach01.tif\nforest00.tif\n")
    (root / "val.txt").write_text("beach02.tif\nforest01.tif\n")
    archive = fetch(f"{url}/UCMerced_LandUse.zip", md5(root / "UCMerced_LandUse.zip"), tmp_path / "ucm.zip")
    splits = {s: fetch(f"{url}/{s}.txt", md5(root / f"{s}.txt"), tmp_path / f"{s}.txt") for s in ("train", "val")}
    data = ucm_tensors(archive, splits, size=256)
    assert data["classes"] == ["beach", "forest"]
    assert data["train"]["images"].shape == (3, 3, 256, 256) and data["val"]["images"].shape == (2, 3, 256, 256)
    assert data["train"]["labels"].tolist() == [0, 0, 1] and data["val"]["labels"].tolist() == [0, 1]
    # a 256x256 image is stored unchanged (channels first)
    np.testing.assert_array_equal(data["train"]["images"][0].numpy(), images["beach00.tif"][1].transpose(2, 0, 1))
    (tmp_path / "bad.txt").write_text("nosuch.tif\n")
    with pytest.raises(DataError, match="nosuch.tif"):
        ucm_tensors(archive, {"train": tmp_path / "bad.txt"})


def test_digits_split_is_stratified_and_complete():
    data = digits_tensors(val_fraction=0.2, seed=0)
    train, val = data["train"], data["val"]
    assert len(train["labels"]) + len(val["labels"]) == 1797
    assert train["images"].shape[1:] == (1, 8, 8) and train["images"].dtype.is_floating_point is False
    counts_val = np.bincount(val["labels"].numpy(), minlength=10)
    counts_all = counts_val + np.bincount(train["labels"].numpy(), minlength=10)
    np.testing.assert_allclose(counts_val / counts_all, 0.2, atol=0.02)


def test_imagefolder_layout(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("cat", "dog"):
            folder = tmp_path / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    data = imagefolder_tensors(tmp_path, size=16)
    assert data["classes"] == ["cat", "dog"]
    assert data["train"]["images"].shape == (4, 3, 16, 16) and data["val"]["labels"].tolist() == [0, 1]
    with pytest.raises(DataError, match="no 'train' folder"):
        imagefolder_tensors(tmp_path / "val", size=16)
    with pytest.raises(DataError, match="data.imagefolder.size"):  # 30x20 images have no size of their own
        imagefolder_tensors(tmp_path)


def test_imagefolder_keeps_size_and_gray_channel_and_crops_non_square(tmp_path):
    gray = {}
    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            gray[split, cls] = RNG.integers(0, 256, (28, 28), dtype=np.uint8)
            Image.fromarray(gray[split, cls], mode="L").save(tmp_path / split / cls / "0.png")
    data = imagefolder_tensors(tmp_path)  # size auto, channels auto
    assert data["train"]["images"].shape == (2, 1, 28, 28)
    np.testing.assert_array_equal(data["train"]["images"][1, 0].numpy(), gray["train", "b"])  # unchanged
    assert imagefolder_tensors(tmp_path, channels=3)["train"]["images"].shape == (2, 3, 28, 28)
    # a non-square image is centre-cropped, not squashed: a 40x20 image whose middle 20x20 is white
    wide = np.zeros((20, 40), dtype=np.uint8)
    wide[:, 10:30] = 255
    Image.fromarray(wide, mode="L").save(tmp_path / "train" / "a" / "1.png")
    cropped = imagefolder_tensors(tmp_path, size=20)["train"]["images"]
    assert cropped.shape == (3, 1, 20, 20)
    assert (cropped[1] == 255).all()  # sorted: a/0.png, a/1.png, b/0.png


def test_wrong_offline_archive_says_the_option_points_at_the_wrong_file(tmp_path):
    wrong = tmp_path / "notes.txt"
    wrong.write_text("not an archive")
    with pytest.raises(DataError, match=r"data.cifar10.archive points at .*notes.txt, which is not the expected "
                                        r"cifar-10-python.tar.gz"):
        fetch("http://unused.invalid/x", "0" * 32, tmp_path / "out" / "cifar-10-python.tar.gz", offline_file=wrong,
              offline_option="data.cifar10.archive")
    assert not (tmp_path / "out" / "cifar-10-python.tar.gz").exists()


@pytest.mark.workflow
def test_workflow_downloads_verifies_and_caches(server, tmp_path):
    from test_workflow import TINY, copy_repo, snakemake

    root, url = server
    make_cifar(root / "served-cifar.tar.gz")
    repo = copy_repo(tmp_path / "repo")
    config = {**TINY, "data": {"cifar10": {"url": f"{url}/served-cifar.tar.gz", "md5": "0" * 32}}}
    target = "results/data/cifar10/tensors.pt"
    failed = snakemake(repo, config, target)
    assert failed.returncode != 0
    log = (repo / "results/logs/data/cifar10_archive.log").read_text()
    assert f"expected {'0' * 32}" in log and md5(root / "served-cifar.tar.gz") in log
    assert not (repo / "results/data/cifar10/cifar-10-python.tar.gz").exists()
    config["data"]["cifar10"]["md5"] = md5(root / "served-cifar.tar.gz")
    done = snakemake(repo, config, target)
    assert done.returncode == 0, done.stderr[-3000:]
    cache = load_torch(repo / target)
    assert cache["train"]["images"].shape == (20, 3, 32, 32) and len(cache["classes"]) == 10


@pytest.mark.workflow
def test_imagefolder_cache_follows_the_folder_contents(tmp_path):
    from test_workflow import TINY, copy_repo, snakemake

    for split in ("train", "val"):
        for cls in ("a", "b"):
            (tmp_path / "images" / split / cls).mkdir(parents=True)
            Image.fromarray(RNG.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(
                tmp_path / "images" / split / cls / "0.png")
    repo = copy_repo(tmp_path / "repo")
    config = {**TINY, "data": {"imagefolder": {"root": str(tmp_path / "images")}}}
    target = "results/data/imagefolder/tensors.pt"
    assert snakemake(repo, config, target).returncode == 0
    assert "Nothing to be done" in (lambda r: r.stdout + r.stderr)(snakemake(repo, config, "--dry-run", target))
    Image.fromarray(RNG.integers(0, 256, (12, 12), dtype=np.uint8), mode="L").save(
        tmp_path / "images" / "train" / "b" / "1.png")
    dry = snakemake(repo, config, "--dry-run", target)
    assert "data_cache" in dry.stdout and "Nothing to be done" not in dry.stdout + dry.stderr
