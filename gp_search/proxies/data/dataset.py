"""The dataset record, its per-process cache, and :func:`load`, which picks a source by name.

Every source ends as a :class:`Dataset` (float32 features, int64 labels, train and test parts).
Sources plug in with :func:`register_source`: the embedded ones
(:mod:`gp_search.proxies.data.embedded`), the file readers (:mod:`gp_search.proxies.data.files`)
and a user's task (``"file:…"`` / ``"factory:…"``, registered by
:mod:`gp_search.proxies.user_task`), so this module imports none of them. :data:`DATASETS`
describes the built-in names.

Datasets are cached per process as CPU tensors keyed by name and resolved root;
every caller shares them, so treat them as read-only.

Example:
    >>> ds = load("synthetic")
    >>> ds.n_train, ds.n_test, ds.num_classes, validation_split(ds).n_train
    (1000, 500, 10, 800)
"""
from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

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


def as_dataset(name, x_train, y_train, x_test, y_test, num_classes, input_shape, image_shape=None):
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


Loader = Callable[[str, "Path | None"], Dataset]
"""A source: ``loader(name, root) -> Dataset``; ``root`` is the resolved data root for a source
that reads files, None for the others."""

_SOURCES: dict[str, tuple[Loader, bool]] = {}
_CACHE: dict[tuple[str, str | None], Dataset] = {}
# One lock for all loads: concurrent callers wait for a single read instead of
# each parsing the same files.
_CACHE_LOCK = threading.Lock()


def register_source(name: str, loader: Loader, *, reads_files: bool = False) -> None:
    """Offer a source of datasets to :func:`load`.

    Args:
        name: a dataset name (lower case, ``-`` between words), or a prefix ending in ``":"``
            (e.g. ``"file:"``) that claims every name starting with it, which is then the cache
            key as given.
        loader: ``loader(name, root) -> Dataset``, called at most once per name and root per
            process.
        reads_files: the loader reads from the data root (``data_root`` or ``./data``).
    """
    _SOURCES[name] = (loader, reads_files)


def load(name: str, data_root: str | os.PathLike | None = None,
         device: str | torch.device = "cpu") -> Dataset:
    """Load a dataset by name, reading it at most once per process.

    Args:
        name: one of ``DATASETS`` (case-insensitive; ``_`` may stand for ``-``), or a name
            a registered prefix claims (a user task's ``"file:…"`` / ``"factory:…"``,
            :mod:`gp_search.proxies.user_task`).
        data_root: directory searched for user-supplied datasets (default
            ``./data``); ignored by the embedded ones.
        device: where the returned tensors live; the cache keeps CPU tensors.

    Returns:
        The Dataset; on CPU, the very cached object on every call.

    Raises:
        ValueError: unknown name, or a malformed data file.
        FileNotFoundError: a user-supplied dataset's files are not in place.
    """
    prefix = next((p for p in _SOURCES if p.endswith(":") and name.startswith(p)), None)
    key_name = name if prefix else name.lower().replace("_", "-")
    if (prefix or key_name) not in _SOURCES:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    loader, reads_files = _SOURCES[prefix or key_name]
    root = None
    if reads_files:
        root = Path(data_root if data_root is not None else DEFAULT_DATA_ROOT).expanduser().resolve()
    key = (key_name, None if root is None else str(root))
    with _CACHE_LOCK:
        dataset = _CACHE.get(key)
        if dataset is None:
            dataset = loader(key_name, root)
            _CACHE[key] = dataset
    return dataset.to(device)


def clear_cache() -> None:
    """Forget every loaded dataset (e.g. after the files under a root changed)."""
    with _CACHE_LOCK:
        _CACHE.clear()
