"""Arrays into a task's Dataset: one set of checks for every way a user's data comes in.

Every reader of a user's files (:mod:`gp_search.proxies.data.user_files`) ends in
:func:`from_arrays`, which is also what arrays given in Python go through, so one set of checks
guards every way in. They refuse, with a :class:`TaskDataError` that names
the file (and the row, column or sample where it applies) and says how to fix it:

* non-finite features (NaN, infinity), non-numeric CSV cells, empty cells;
* labels that are not whole numbers, negative, with a gap (a class id with no training sample),
  test labels outside the training classes, a single class;
* train and test with different feature shapes, features and labels of different lengths;
* a class with fewer than :data:`MIN_PER_CLASS` training samples (the validation split that a
  search scores on holds out a fifth of every class);
* unreadable, truncated or wrongly shaped files.

Inputs are standardised with statistics of the training part only: per feature for vectors,
per channel (axis 1) for signals and images; a constant feature is left centred (std 1). Without
a test part the file is split here: :data:`TEST_FRACTION` of every class (at least one sample),
drawn with ``split_seed`` and recorded in the returned info.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 3)); y = np.arange(40) % 2
    >>> ds, info = from_arrays(x, y, source="example")
    >>> ds.n_train, ds.n_test, ds.num_classes, info["test_part"]
    (32, 8, 2, 'stratified 20% of each class of example, split_seed 0')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gp_search.proxies.data.dataset import Dataset

MIN_PER_CLASS = 5
"""Fewest training samples a class may have: the validation split holds out a fifth of each
class (one sample at least), and four must be left to train on."""
TEST_FRACTION = 0.2
"""Share of every class held out as the test part when the data come without one."""
class TaskDataError(ValueError):
    """A user's data that cannot make a task; the message names the file and how to fix it."""


def from_arrays(x_train, y_train, x_test=None, y_test=None, source: str = "arrays",
                split_seed: int = 0, classes: list | None = None,
                image_shape: tuple | None = None) -> tuple[Dataset, dict]:
    """Check arrays (NumPy or torch) and make the standardised :class:`Dataset` of a task.

    Args:
        x_train, y_train: features ``(N, ...)`` and integer class ids ``0 .. K-1`` ``(N,)``.
        x_test, y_test: the test part, both or neither (neither: a stratified split).
        source: what error messages name (the file).
        split_seed: seeds the stratified test split.
        classes: the label of each class id, for the info (default the ids themselves).
        image_shape: ``(C, H, W)`` when each sample is an image (3-D samples are anyway).

    Returns:
        ``(dataset, info)`` as :func:`read`.

    Raises:
        TaskDataError: a check failed (module docstring).
    """
    if (x_test is None) != (y_test is None):
        raise TaskDataError(f"{source}: give both x_test and y_test, or neither (then a "
                            f"stratified {TEST_FRACTION:.0%} of each class is held out)")
    x_tr, y_tr = _features(x_train, "x_train", source), _labels(y_train, "y_train", source)
    _same_length(x_tr, y_tr, "train", source)
    k = _classes(y_tr, source)
    if x_test is None:
        x_tr, y_tr, x_te, y_te = _split(x_tr, y_tr, k, split_seed)
        test_part = f"stratified {TEST_FRACTION:.0%} of each class of {source}, split_seed {split_seed}"
    else:
        x_te, y_te = _features(x_test, "x_test", source), _labels(y_test, "y_test", source)
        _same_length(x_te, y_te, "test", source)
        if x_te.shape[1:] != x_tr.shape[1:]:
            raise TaskDataError(f"{source}: x_train samples have shape {x_tr.shape[1:]} but "
                                f"x_test samples {x_te.shape[1:]}; train and test need the same "
                                f"features, in the same order")
        if y_te.size and y_te.max() >= k:
            raise TaskDataError(f"{source}: y_test has label {int(y_te.max())}, but y_train's "
                                f"classes are 0..{k - 1}; every test label must occur in training")
        test_part = f"x_test / y_test of {source}"
    counts = np.bincount(y_tr, minlength=k)
    if counts.min() < MIN_PER_CLASS:
        c = int(counts.argmin())
        raise TaskDataError(f"{source}: class {_name(classes, c)} has {counts[c]} training "
                            f"sample(s); each class needs at least {MIN_PER_CLASS} (a fifth of "
                            f"each class is held out for validation); add samples or drop it")
    mean, std = _stats(x_tr)
    shape = tuple(x_tr.shape[1:])
    if image_shape is None and len(shape) == 3:
        image_shape = shape
    ds = Dataset(Path(source).name, torch.from_numpy((x_tr - mean) / std),
                 torch.from_numpy(y_tr), torch.from_numpy((x_te - mean) / std),
                 torch.from_numpy(y_te), k, shape, image_shape)
    info = {"classes": [_name(classes, c) for c in range(k)], "n_train": ds.n_train,
            "n_test": ds.n_test, "input_shape": list(shape), "test_part": test_part,
            "standardised": "per feature" if len(shape) == 1 else "per channel (axis 1)"}
    return ds, info


def _name(classes, c: int):
    return classes[c] if classes is not None else c


def _features(x, what: str, source: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TaskDataError(f"{source}: {what} is not an array ({exc})") from None
    if x.dtype.kind not in "biuf":
        raise TaskDataError(f"{source}: {what} holds {x.dtype} values; features must be numbers")
    if x.ndim < 2 or x.shape[0] == 0:
        raise TaskDataError(f"{source}: {what} has shape {x.shape}; it must be (samples, "
                            f"features...) with at least one sample")
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise TaskDataError(f"{source}: {what}{list(at)} is {x[at]}; features must be finite "
                            f"({int(bad.sum())} value(s) are not): fill or drop missing values")
    return x


def _labels(y, what: str, source: str) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise TaskDataError(f"{source}: {what} must be one class id per sample, shape (N,), got "
                            f"{y.dtype} {y.shape}; one-hot labels: take argmax(axis=1)")
    whole = np.isfinite(y) & (y == np.round(y)) if y.dtype.kind == "f" else np.ones(len(y), bool)
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise TaskDataError(f"{source}: {what}[{i}] is {y[i]}; labels must be whole numbers "
                            f"0..K-1 (class ids)")
    if y.size and y.min() < 0:
        i = int(y.argmin())
        raise TaskDataError(f"{source}: {what}[{i}] is {int(y[i])}; labels out of range: class "
                            f"ids must be 0..K-1")
    return y.astype(np.int64)


def _same_length(x: np.ndarray, y: np.ndarray, part: str, source: str) -> None:
    if len(x) != len(y):
        raise TaskDataError(f"{source}: x_{part} has {len(x)} samples but y_{part} {len(y)} "
                            f"labels; give one label per sample")


def _classes(y: np.ndarray, source: str) -> int:
    k = int(y.max()) + 1
    counts = np.bincount(y, minlength=k)
    if (counts == 0).any():
        c = int(np.flatnonzero(counts == 0)[0])
        raise TaskDataError(f"{source}: labels out of range: y_train uses ids up to {k - 1} but "
                            f"class {c} has no training sample; number the classes 0..K-1 "
                            f"without gaps")
    if k < 2:
        raise TaskDataError(f"{source}: y_train has one class only (0); a classification task "
                            f"needs at least two")
    return k


def _split(x, y, k: int, seed: int):
    """A stratified split: per class ``max(1, round(TEST_FRACTION * n))`` samples held out."""
    rng = np.random.RandomState(seed)
    held = np.concatenate([rng.permutation(np.flatnonzero(y == c))[
        :max(1, int(round(TEST_FRACTION * np.sum(y == c))))] for c in range(k)])
    mask = np.ones(len(y), bool)
    mask[held] = False
    test = np.sort(held)
    return x[mask], y[mask], x[test], y[test]


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training part: per feature (vectors) or per channel (axis 1)."""
    axes = (0,) if x.ndim == 2 else tuple(i for i in range(x.ndim) if i != 1)
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)
    std[std == 0] = 1.0
    return mean[0].astype(np.float32), std[0].astype(np.float32)
