"""The embedded datasets: generated or shipped with a library, offline, nothing on disk.

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

Each registers itself with :func:`gp_search.proxies.data.dataset.register_source` on import.

Example:
    >>> load_synthetic().y_train.bincount().tolist()
    [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
"""

from __future__ import annotations

import math
import random

import numpy as np

from gp_search.proxies.data.dataset import Dataset, as_dataset, register_source
from gp_search.proxies.data.scenes import scenes_dataset


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits, 1437 train / 360 test (see the module docstring)."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return as_dataset("digits", x_tr, y_tr, x_te, y_te, 10, (64,), image_shape=(1, 8, 8))


def load_mnist1d() -> Dataset:
    """MNIST-1D generated locally (never downloaded), 4000 / 1000."""
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
    return as_dataset("mnist1d", x_tr, raw["y"], x_te, raw["y_test"], 10, (1, x_tr.shape[1]))


def load_synthetic(num_classes: int = 10, noise: float = 2.0,
                    n_train: int = 1000, n_test: int = 500) -> Dataset:
    """Noisy Gaussian classes in 32-D, balanced (``synthetic``, ``synthetic-100``)."""
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
    return as_dataset(name, x_tr, y_tr, x_te, y_te, num_classes, (dim,))


def load_tabular(num_classes: int) -> Dataset:
    """``make_classification`` tabular data with ``num_classes`` classes, 2000 / 500."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    x, y = make_classification(n_samples=2500, n_features=20, n_informative=8, n_redundant=4,
                               n_classes=num_classes, n_clusters_per_class=2, flip_y=0.01,
                               random_state=0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=500, stratify=y, random_state=0)
    mean, std = x_tr.mean(0), x_tr.std(0)
    return as_dataset(f"tabular-{num_classes}", (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te,
                 num_classes, (x.shape[1],))


_SOURCES = {
    "digits": load_digits, "mnist1d": load_mnist1d, "synthetic": load_synthetic,
    "synthetic-100": lambda: load_synthetic(100, 1.6, 5000, 1000),
    **{f"tabular-{k}": (lambda k=k: load_tabular(k)) for k in (2, 3, 20)},
    **{n: (lambda n=n: scenes_dataset(n)) for n in ("seg-digits", "seg-digits-imbalanced")},
}
for _name, _load in _SOURCES.items():
    register_source(_name, lambda _n, _root, load=_load: load())
