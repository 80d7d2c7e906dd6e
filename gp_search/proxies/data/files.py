"""Datasets from user-supplied files: where they are looked for, and the readers of each format.

User-supplied, under ``data_root`` (default ``./data``), never downloaded. The first
directory holding *all* required files wins, searched in this order:

* ``mnist`` / ``fashion-mnist``, idx files each plain or ``.gz``: ``<root>/<name>/``,
  ``<root>/<name>/raw/``, torchvision's ``<root>/MNIST/raw/`` (``FashionMNIST``), ``<root>``.
  Pixels / 255 in [0, 1], shape ``(1, 28, 28)``, not standardised.
* ``cifar10`` / ``cifar100``, python pickles: ``<root>/cifar-10-batches-py/``
  (``cifar-100-python/``), ``<root>/<name>/cifar-10-batches-py/``, ``<root>/<name>/``,
  ``<root>``. Pixels / 255, then each channel standardised by the training split's
  mean/std; CIFAR-100 uses the 100 fine labels; shape ``(3, 32, 32)``. Read with an
  allow-list unpickler, so a tampered file cannot run code.
* ``voc``, the Pascal VOC segmentation layout (:mod:`gp_search.proxies.data.voc`):
  ``<root>/VOCdevkit/VOC2012/``, ``<root>/VOC2012/``, ``<root>/voc/``, ``<root>``; 21 classes,
  255 unlabelled, resized to 64x64; ``train.txt`` trains, ``val.txt`` is the test split.

The byte-level readers (idx, CIFAR's pickles through an allow-list unpickler) live in
:mod:`gp_search.proxies.data.readers`. Each source registers itself with
:func:`gp_search.proxies.data.dataset.register_source` on import.

Example:
    >>> import tempfile; from pathlib import Path
    >>> try:
    ...     locate("mnist", [Path(tempfile.mkdtemp())], {"a": ("a.bin",)})
    ... except FileNotFoundError as exc:
    ...     print(str(exc).splitlines()[-1])
    This data is never downloaded; place the files there yourself (or pass data_root).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gp_search.proxies.data import voc
from gp_search.proxies.data.dataset import Dataset, as_dataset, register_source
from gp_search.proxies.data.readers import read_cifar_batch, read_idx

# ---------------------------------------------------------------- locating user files

def locate(name: str, dirs: list[Path], required: dict[str, tuple[str, ...]]) -> dict[str, Path]:
    """Map each required file (-> accepted names, preferred first) to its path in the
    first of ``dirs`` holding them all; else FileNotFoundError saying what goes where."""
    unique_dirs = list(dict.fromkeys(dirs))
    partial = []
    for d in unique_dirs:
        found = {}
        for key, candidates in required.items():
            hit = next((d / c for c in candidates if (d / c).is_file()), None)
            if hit is not None:
                found[key] = hit
        if len(found) == len(required):
            return found
        if found:
            missing = [k for k in required if k not in found]
            partial.append(f"{d} has {len(found)} of {len(required)} (missing: {', '.join(missing)})")
    expected = ", ".join(" or ".join(c) for c in required.values())
    searched = "\n  ".join(str(d) for d in unique_dirs)
    msg = (f"dataset {name!r}: expected files {expected} together in one of these "
           f"directories (searched in this order):\n  {searched}\n")
    if partial:
        msg += "Incomplete: " + "; ".join(partial) + "\n"
    msg += "This data is never downloaded; place the files there yourself (or pass data_root)."
    raise FileNotFoundError(msg)


# ---------------------------------------------------------------- idx (MNIST, Fashion-MNIST)

_IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
_IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_DIRS = {"mnist": ("mnist", "MNIST"), "fashion-mnist": ("fashion-mnist", "FashionMNIST")}


def _load_idx_dataset(name: str, root: Path) -> Dataset:
    dirs = []
    for sub in _IDX_DIRS[name]:
        dirs += [root / sub, root / sub / "raw"]
    dirs.append(root)
    paths = locate(name, dirs, {f: (f, f + ".gz") for f in _IDX_FILES})

    def split(prefix):
        img_path, lbl_path = paths[f"{prefix}-images-idx3-ubyte"], paths[f"{prefix}-labels-idx1-ubyte"]
        images = read_idx(img_path, _IDX_IMAGES_MAGIC)
        labels = read_idx(lbl_path, _IDX_LABELS_MAGIC)
        if images.shape[1:] != (28, 28):
            raise ValueError(f"{img_path}: images are {images.shape[1:]}, expected (28, 28)")
        if len(labels) != len(images):
            raise ValueError(f"{lbl_path}: {len(labels)} labels for {len(images)} images in {img_path}")
        if labels.size and labels.max() >= 10:
            raise ValueError(f"{lbl_path}: label {labels.max()} out of range 0..9")
        return images.astype(np.float32) / 255.0, labels.astype(np.int64)

    x_tr, y_tr = split("train")
    x_te, y_te = split("t10k")
    return as_dataset(name, x_tr, y_tr, x_te, y_te, 10, (1, 28, 28), image_shape=(1, 28, 28))


# ---------------------------------------------------------------- CIFAR pickles

def _channel_stats(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean/std, in [0, 1] units, of uint8 (N, 3072) CIFAR rows.

    From a 256-bin histogram per channel: no float copy of the training set needed."""
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(3):
        counts = np.bincount(data[:, c * 1024:(c + 1) * 1024].ravel(), minlength=256)
        mean = (counts * values).sum() / counts.sum()
        var = (counts * (values - mean) ** 2).sum() / counts.sum()
        means.append(mean)
        stds.append(math.sqrt(var) if var > 0 else 1.0)  # a constant channel stays finite
    return np.array(means), np.array(stds)


def _cifar_images(data: np.ndarray, mean: np.ndarray, std: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(data.astype(np.float32)).reshape(-1, 3, 32, 32)
    # In place: a float copy of CIFAR's training set is already ~600 MB.
    x.div_(255.0)
    x.sub_(torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
    x.div_(torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
    return x


_CIFAR = {
    # name: (batch dir, train files, test file, label key, classes)
    "cifar10": ("cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                "test_batch", "labels", 10),
    "cifar100": ("cifar-100-python", ("train",), "test", "fine_labels", 100),
}


def _load_cifar(name: str, root: Path) -> Dataset:
    batch_dir, train_files, test_file, label_key, num_classes = _CIFAR[name]
    dirs = [root / batch_dir, root / name / batch_dir, root / name, root]
    paths = locate(name, dirs, {f: (f,) for f in (*train_files, test_file)})
    train = [read_cifar_batch(paths[f], label_key, num_classes) for f in train_files]
    data_tr = np.concatenate([d for d, _ in train])
    y_tr = np.concatenate([y for _, y in train])
    data_te, y_te = read_cifar_batch(paths[test_file], label_key, num_classes)
    mean, std = _channel_stats(data_tr)
    x_tr = _cifar_images(data_tr, mean, std)
    x_te = _cifar_images(data_te, mean, std)
    return as_dataset(name, x_tr, y_tr, x_te, y_te, num_classes, (3, 32, 32), image_shape=(3, 32, 32))


# ---------------------------------------------------------------- Pascal VOC layout

def _load_voc(root: Path) -> Dataset:
    lists = {s: (f"ImageSets/Segmentation/{s}.txt",) for s in voc.SPLITS}
    paths = locate("voc", [root / d for d in voc.DIRS] + [root], lists)
    return voc.read_voc(paths["train"].parents[2])


_SOURCES = {
    "mnist": lambda root: _load_idx_dataset("mnist", root),
    "fashion-mnist": lambda root: _load_idx_dataset("fashion-mnist", root),
    "cifar10": lambda root: _load_cifar("cifar10", root),
    "cifar100": lambda root: _load_cifar("cifar100", root),
    "voc": _load_voc,
}
for _name, _load in _SOURCES.items():
    register_source(_name, lambda _n, root, load=_load: load(root), reads_files=True)
