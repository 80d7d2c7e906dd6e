"""Datasets for the proxy trainings: embedded and user-supplied, loaded once as tensors.

Embedded (offline, nothing on disk):

* ``digits``: scikit-learn's 8x8 digits / 16 -> [0, 1], flat ``(64,)`` (``image_shape``
  ``(1, 8, 8)``), split ``train_test_split(test_size=0.2, stratify=y, random_state=0)``:
  1437 train / 360 test.
* ``mnist1d``: ``make_dataset(get_dataset_args())`` defaults (4000 / 1000, length 40,
  seed 42), standardised by the training split's scalar mean/std, shape ``(1, 40)``.
* ``synthetic``: 10 noisy Gaussian classes in 32-D (means from ``RandomState(0)``),
  1000 / 500, balanced; a linear model reaches about 80 %.
* ``synthetic-100``: the same construction with 100 classes in 32-D (means from
  ``RandomState(100)``, noise 1.6), 5000 / 1000, balanced: the search suite's many-class task.
* ``tabular-2``, ``tabular-3``, ``tabular-20``: scikit-learn's ``make_classification`` with K
  classes (20 features, 8 informative, 4 redundant, 2 clusters per class, 1 % flipped labels,
  ``random_state=0``), 2000 / 500 stratified, standardised by the training split's per-feature
  mean/std: a tabular task unlike any image or signal the search proxies see.
* ``seg-digits``, ``seg-digits-imbalanced``: digits composited on cluttered 32x32 canvases,
  a class per pixel (:mod:`gp_search.proxies.data.scenes`).

Task transforms (relabelling, subsampling, label noise) live in :mod:`gp_search.proxies.data.transforms`.

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

Datasets are cached per process as CPU tensors keyed by name and resolved root;
every caller shares them, so treat them as read-only.
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import threading
from pathlib import Path

import numpy as np
import torch

from gp_search.proxies.data.readers import UnsafePickleError, read_cifar_batch, read_idx  # noqa: F401 (re-exported)

DEFAULT_DATA_ROOT = "data"

DATASETS: dict[str, str] = {
    "digits": "embedded: scikit-learn's 8x8 digits, 1437 train / 360 test, 10 classes",
    "mnist1d": "embedded: MNIST-1D generated locally by the mnist1d package, 4000 / 1000, 10 classes",
    "synthetic": "embedded: deterministic 32-D Gaussian classes for smoke tests, 1000 / 500, 10 classes",
    "synthetic-100": "embedded: deterministic 32-D Gaussian classes, 5000 / 1000, 100 classes",
    "tabular-2": "embedded: sklearn make_classification, 20 features, 2000 / 500, 2 classes",
    "tabular-3": "embedded: sklearn make_classification, 20 features, 2000 / 500, 3 classes",
    "tabular-20": "embedded: sklearn make_classification, 20 features, 2000 / 500, 20 classes",
    "mnist": "user files: MNIST idx files under <data_root>/mnist/, 60000 / 10000, 10 classes",
    "fashion-mnist": "user files: Fashion-MNIST idx files under <data_root>/fashion-mnist/, 60000 / 10000",
    "cifar10": "user files: CIFAR-10 python batches under <data_root>/cifar-10-batches-py/, 50000 / 10000",
    "cifar100": "user files: CIFAR-100 python files under <data_root>/cifar-100-python/, 50000 / 10000, 100 classes",
    "seg-digits": "embedded: digit scenes 32x32, per-pixel labels, 2000 / 500, 5 classes + background",
    "seg-digits-imbalanced": "embedded: as seg-digits, one small digit a scene, ~93 % background",
    "voc": "user files: Pascal VOC segmentation layout under <data_root>/VOCdevkit/VOC2012/, 21 classes",
}


# eq=False: the generated __eq__ would compare tensors, whose truth value is ambiguous.
@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split held as tensors.

    ``x_*`` are float32 of shape ``(N, *input_shape)``, ``y_*`` int64 class ids: ``(N,)``, or
    ``(N, H, W)`` per pixel for dense (segmentation) data, 255 where unlabelled.
    ``image_shape`` is how one sample can be viewed as a ``(C, H, W)`` image for
    2-D conv models (e.g. ``(1, 8, 8)`` for flat digits), or None when the data
    are not images.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_shape: tuple
    image_shape: tuple | None = None

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    def to(self, device: str | torch.device) -> Dataset:
        """Return this dataset with its tensors on ``device``.

        Args:
            device: a torch device or its name, e.g. ``"cuda"``.

        Returns:
            ``self`` when the tensors already live there, else a copy.
        """
        device = torch.device(device)
        if self.x_train.device == device:
            return self
        fields = ("x_train", "y_train", "x_test", "y_test")
        return dataclasses.replace(self, **{f: getattr(self, f).to(device) for f in fields})


def _make(name, x_train, y_train, x_test, y_test, num_classes, input_shape, image_shape=None):
    """Build a Dataset from numpy arrays (or tensors), fixing dtypes and sample shapes."""
    def as_x(a):
        t = torch.as_tensor(a, dtype=torch.float32)
        return t.reshape(t.shape[0], *input_shape)

    def as_y(a):
        return torch.as_tensor(a, dtype=torch.int64).reshape(-1)

    return Dataset(name, as_x(x_train), as_y(y_train), as_x(x_test), as_y(y_test),
                   int(num_classes), tuple(input_shape),
                   tuple(image_shape) if image_shape is not None else None)


VAL_FRACTION = 0.2
"""Share of every class of the training split that :func:`validation_split` holds out."""


def validation_split(ds: Dataset, fraction: float = VAL_FRACTION) -> Dataset:
    """The training split cut in two for model selection; the test split is left out entirely.

    A stratified ``fraction`` of every class of ``ds``'s training samples (the same samples on
    every call: a fixed permutation per class) becomes the held-out part — the result's
    ``x_test``/``y_test`` — and the rest trains. Input normalisation stays the one the loader
    computed on the whole training split (label-free statistics).

    Returns:
        A :class:`Dataset` named ``"<name>:val"``.
    """
    y = ds.y_train.cpu().numpy()
    if y.ndim > 1:  # dense targets: a sample has no single class; one stratum
        y = np.zeros(len(y), dtype=np.int64)
    rng = np.random.RandomState(0)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        held.extend(rng.permutation(idx)[:int(round(fraction * len(idx)))])
    mask = np.ones(len(y), dtype=bool)
    mask[held] = False
    dev = ds.x_train.device
    keep = torch.as_tensor(np.flatnonzero(mask), device=dev)
    val = torch.as_tensor(np.sort(np.array(held, dtype=np.int64)), device=dev)
    return dataclasses.replace(ds, name=f"{ds.name}:val", x_train=ds.x_train[keep],
                               y_train=ds.y_train[keep], x_test=ds.x_train[val],
                               y_test=ds.y_train[val])


# ---------------------------------------------------------------- embedded

def _load_digits(_root: Path | None) -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return _make("digits", x_tr, y_tr, x_te, y_te, 10, (64,), image_shape=(1, 8, 8))


def _load_mnist1d(_root: Path | None) -> Dataset:
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global numpy and python RNGs; put them back so that
    # loading data does not change the randomness of whatever runs next.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(get_dataset_args())  # never get_dataset: it downloads
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x_tr = raw["x"].astype(np.float64)
    mean, std = x_tr.mean(), x_tr.std()
    x_tr = (x_tr - mean) / std
    x_te = (raw["x_test"].astype(np.float64) - mean) / std
    return _make("mnist1d", x_tr, raw["y"], x_te, raw["y_test"], 10, (1, x_tr.shape[1]))


def _load_synthetic(_root: Path | None, num_classes: int = 10, noise: float = 2.0,
                    n_train: int = 1000, n_test: int = 500) -> Dataset:
    dim = 32
    # RandomState(0) for the 10-class set keeps its numbers as they always were.
    rng = np.random.RandomState(0 if num_classes == 10 else num_classes)
    means = rng.normal(size=(num_classes, dim))

    def draw(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        x = means[y] + noise * rng.normal(size=(n, dim))
        # Unit-ish feature scale, so default optimiser settings behave as on real data.
        return x / math.sqrt(1.0 + noise**2), y

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    name = "synthetic" if num_classes == 10 else f"synthetic-{num_classes}"
    return _make(name, x_tr, y_tr, x_te, y_te, num_classes, (dim,))


def _load_tabular(num_classes: int) -> Dataset:
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=2500, n_features=20, n_informative=8, n_redundant=4,
                               n_classes=num_classes, n_clusters_per_class=2, flip_y=0.01,
                               random_state=0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=500, stratify=y, random_state=0)
    mean, std = x_tr.mean(0), x_tr.std(0)
    return _make(f"tabular-{num_classes}", (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te,
                 num_classes, (x.shape[1],))


# ---------------------------------------------------------------- locating user files

def _locate(name: str, dirs: list[Path], required: dict[str, tuple[str, ...]]) -> dict[str, Path]:
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
    paths = _locate(name, dirs, {f: (f, f + ".gz") for f in _IDX_FILES})

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
    return _make(name, x_tr, y_tr, x_te, y_te, 10, (1, 28, 28), image_shape=(1, 28, 28))


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
    paths = _locate(name, dirs, {f: (f,) for f in (*train_files, test_file)})
    train = [read_cifar_batch(paths[f], label_key, num_classes) for f in train_files]
    data_tr = np.concatenate([d for d, _ in train])
    y_tr = np.concatenate([y for _, y in train])
    data_te, y_te = read_cifar_batch(paths[test_file], label_key, num_classes)
    mean, std = _channel_stats(data_tr)
    x_tr = _cifar_images(data_tr, mean, std)
    x_te = _cifar_images(data_te, mean, std)
    return _make(name, x_tr, y_tr, x_te, y_te, num_classes, (3, 32, 32), image_shape=(3, 32, 32))


# ---------------------------------------------------------------- Pascal VOC layout

def _load_voc(root: Path) -> Dataset:
    from gp_search.proxies.data import voc

    lists = {s: (f"ImageSets/Segmentation/{s}.txt",) for s in voc.SPLITS}
    paths = _locate("voc", [root / d for d in voc.DIRS] + [root], lists)
    return voc.read_voc(paths["train"].parents[2])


def _load_scenes(name: str) -> Dataset:
    from gp_search.proxies.data.scenes import scenes_dataset

    return scenes_dataset(name)


# ---------------------------------------------------------------- public entry point

_EMBEDDED = {"digits": _load_digits, "mnist1d": _load_mnist1d, "synthetic": _load_synthetic,
             "synthetic-100": lambda _root: _load_synthetic(_root, 100, 1.6, 5000, 1000),
             **{f"tabular-{k}": (lambda _root, k=k: _load_tabular(k)) for k in (2, 3, 20)},
             **{n: (lambda _root, n=n: _load_scenes(n))
                for n in ("seg-digits", "seg-digits-imbalanced")}}
_FROM_FILES = {
    "mnist": lambda root: _load_idx_dataset("mnist", root),
    "fashion-mnist": lambda root: _load_idx_dataset("fashion-mnist", root),
    "cifar10": lambda root: _load_cifar("cifar10", root),
    "cifar100": lambda root: _load_cifar("cifar100", root),
    "voc": _load_voc,
}
_CACHE: dict[tuple[str, str | None], Dataset] = {}
# One lock for all loads: concurrent callers wait for a single read instead of
# each parsing the same files.
_CACHE_LOCK = threading.Lock()


def load(name: str, data_root: str | os.PathLike | None = None,
         device: str | torch.device = "cpu") -> Dataset:
    """Load a dataset by name, reading it at most once per process.

    Args:
        name: one of ``DATASETS`` (case-insensitive; ``_`` may stand for ``-``), or a user
            task's ``"file:…"`` / ``"factory:…"`` (:mod:`gp_search.proxies.user_task`).
        data_root: directory searched for user-supplied datasets (default
            ``./data``); ignored by the embedded ones.
        device: where the returned tensors live; the cache keeps CPU tensors.

    Returns:
        The Dataset; on CPU, the very cached object on every call.

    Raises:
        ValueError: unknown name, or a malformed data file.
        FileNotFoundError: a user-supplied dataset's files are not in place.
    """
    key_name = name.lower().replace("_", "-")
    if name.startswith(("file:", "factory:")):  # a user's task: gp_search.proxies.user_task
        from gp_search.proxies.user_task import load_dataset

        loader, root, key_name = (lambda _root: load_dataset(name)), None, name
    elif key_name in _EMBEDDED:
        loader, root = _EMBEDDED[key_name], None
    elif key_name in _FROM_FILES:
        loader = _FROM_FILES[key_name]
        root = Path(data_root if data_root is not None else DEFAULT_DATA_ROOT).expanduser().resolve()
    else:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    key = (key_name, None if root is None else str(root))
    with _CACHE_LOCK:
        dataset = _CACHE.get(key)
        if dataset is None:
            dataset = loader(root)
            _CACHE[key] = dataset
    return dataset.to(device)


def clear_cache() -> None:
    """Forget every loaded dataset (e.g. after the files under a root changed)."""
    with _CACHE_LOCK:
        _CACHE.clear()
