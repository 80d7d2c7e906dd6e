"""A user's data files (.npz, .csv/.tsv, image folders) read, checked and standardised into a Dataset.

Every reader ends in :func:`from_arrays`, which is also what arrays given in Python go through,
so one set of checks guards every way in. They refuse, with a :class:`TaskDataError` that names
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
drawn with ``split_seed`` and recorded in the returned info. Nothing is ever unpickled
(``np.load(..., allow_pickle=False)``).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 3)); y = np.arange(40) % 2
    >>> ds, info = from_arrays(x, y, source="example")
    >>> ds.n_train, ds.n_test, ds.num_classes, info["test_part"]
    (32, 8, 2, 'stratified 20% of each class of example, split_seed 0')
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from gp_search.proxies.data.dataset import Dataset

MIN_PER_CLASS = 5
"""Fewest training samples a class may have: the validation split holds out a fifth of each
class (one sample at least), and four must be left to train on."""
TEST_FRACTION = 0.2
"""Share of every class held out as the test part when the data come without one."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""What counts as an image in a class folder (case-insensitive); other files are ignored."""
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}


class TaskDataError(ValueError):
    """A user's data that cannot make a task; the message names the file and how to fix it."""


def digest(path: str | os.PathLike) -> dict:
    """Absolute path, size in bytes and SHA-256 of a data file, or of an image folder (over each
    image's relative path and bytes, in sorted order).

    Raises:
        TaskDataError: the path does not exist or cannot be read.
    """
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise TaskDataError(f"{path}: no such file or directory; give the path of an .npz, "
                            f".csv or .tsv file, or of a folder of class sub-folders of images")
    h, size = hashlib.sha256(), 0
    files = [path] if path.is_file() else _images_under(path)
    try:
        for f in files:
            if path.is_dir():
                h.update(f.relative_to(path).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
                    size += len(block)
    except OSError as exc:
        raise TaskDataError(f"{f}: cannot be read ({exc.strerror or exc}); check its "
                            f"permissions") from None
    return {"path": str(path), "size": size, "sha256": h.hexdigest()}


def _images_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read(path: str | os.PathLike, label_column: str = "", image_size: int = 32,
         split_seed: int = 0) -> tuple[Dataset, dict]:
    """Read a data file or image folder into a checked, standardised :class:`Dataset`.

    Args:
        path: an ``.npz`` (``x_train``, ``y_train``, optionally ``x_test`` and ``y_test``), a
            ``.csv``/``.tsv`` with a header row, or a folder ``root/<class>/*.png|jpg`` (or
            ``root/train/<class>/…`` and ``root/test/<class>/…``).
        label_column: the CSV/TSV column holding the labels (required for those files).
        image_size: images are resized to ``image_size`` x ``image_size``.
        split_seed: seeds the stratified test split when there is no test part.

    Returns:
        ``(dataset, info)``; ``info`` records how the data were read (``kind``, ``classes``:
        the label of each class id, ``test_part``, sizes and shapes).

    Raises:
        TaskDataError: the file is unreadable or fails a check (module docstring).
    """
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        return _read_image_folder(path, image_size, split_seed)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise TaskDataError(f"{path}: no such file or directory")
    if suffix == ".npz":
        return _read_npz(path, split_seed)
    if suffix in CSV_DELIMITERS:
        return _read_csv(path, label_column, split_seed)
    raise TaskDataError(f"{path}: unknown kind of data file {suffix!r}; give an .npz, a .csv or "
                        f".tsv, or a folder of class sub-folders of images")


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


# ---------------------------------------------------------------- .npz

def _read_npz(path: Path, split_seed: int) -> tuple[Dataset, dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            missing = {"x_train", "y_train"} - keys
            if missing:
                raise TaskDataError(f"{path}: missing array(s) {sorted(missing)} (has "
                                    f"{sorted(keys)}); save with np.savez(path, x_train=..., "
                                    f"y_train=..., x_test=..., y_test=...)")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test") if k in keys}
    except TaskDataError:
        raise
    except ValueError as exc:  # object arrays: refused rather than unpickled
        raise TaskDataError(f"{path}: cannot be read without unpickling ({exc}); save plain "
                            f"numeric arrays with np.savez") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise TaskDataError(f"{path}: unreadable or truncated .npz ({type(exc).__name__}: "
                            f"{exc}); write it again with np.savez") from None
    ds, info = from_arrays(arrays["x_train"], arrays["y_train"], arrays.get("x_test"),
                           arrays.get("y_test"), str(path), split_seed)
    return ds, {"kind": "npz", **info}


# ---------------------------------------------------------------- .csv / .tsv

def _read_csv(path: Path, label_column: str, split_seed: int) -> tuple[Dataset, dict]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter=CSV_DELIMITERS[path.suffix.lower()]))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TaskDataError(f"{path}: unreadable as UTF-8 {path.suffix[1:].upper()} ({exc}); "
                            f"save it as UTF-8 text with a header row") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise TaskDataError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if not label_column:
        raise TaskDataError(f"{path}: say which column holds the labels with --label-column "
                            f"(columns: {', '.join(header)})")
    if label_column not in header:
        raise TaskDataError(f"{path}: no column {label_column!r}; --label-column must be one of "
                            f"{', '.join(header)}")
    li = header.index(label_column)
    features = [i for i in range(len(header)) if i != li]
    if not features:
        raise TaskDataError(f"{path}: no feature column besides the label column")
    x = np.empty((len(rows) - 1, len(features)), np.float64)
    labels = []
    for n, row in enumerate(rows[1:]):
        line = n + 2
        if len(row) != len(header):
            raise TaskDataError(f"{path}: line {line} has {len(row)} fields, the header "
                                f"{len(header)}; every row needs one value per column")
        for j, i in enumerate(features):
            x[n, j] = _cell(row[i], path, line, header[i])
        labels.append(row[li].strip())
    classes = _class_order(labels)
    index = {c: k for k, c in enumerate(classes)}
    y = np.array([index[v] for v in labels], np.int64)
    ds, info = from_arrays(x, y, source=str(path), split_seed=split_seed, classes=classes)
    return ds, {"kind": path.suffix[1:].lower(), "label_column": label_column,
                "feature_columns": [header[i] for i in features], **info}


def _cell(text: str, path: Path, line: int, column: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        what = "empty (a missing value)" if not text else f"{text[:40]!r}, not a number"
        raise TaskDataError(f"{path}: line {line}, column {column!r} is {what}; feature columns "
                            f"must be numeric: encode categories as numbers, fill missing values "
                            f"or drop the column") from None
    if not math.isfinite(value):
        raise TaskDataError(f"{path}: line {line}, column {column!r} is {text!r}; features must "
                            f"be finite numbers: fill or drop missing values")
    return value


def _class_order(labels: list[str]) -> list:
    """Distinct labels in class-id order: numerically when all are numbers, else as text."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


# ---------------------------------------------------------------- image folders

def _read_image_folder(root: Path, size: int, split_seed: int) -> tuple[Dataset, dict]:
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    parts = ("train", "test") if subdirs == {"train", "test"} else ("",)
    classes = sorted(p.name for p in (root / parts[0]).iterdir()
                     if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise TaskDataError(f"{root}: found {len(classes)} class folder(s); put the images of "
                            f"each class in its own sub-folder, root/<class>/*.png (at least two)")
    files = {part: [(f, k) for k, c in enumerate(classes)
                    for f in _images_under(root / part / c)] for part in parts}
    for part in parts:
        for k, c in enumerate(classes):
            if not any(label == k for _, label in files[part]):
                raise TaskDataError(f"{root / part / c}: no .png or .jpg image in this class "
                                    f"folder; add images or remove the folder")
    if parts != ("",):
        unknown = {p.name for p in (root / "test").iterdir() if p.is_dir()} - set(classes)
        if unknown:
            raise TaskDataError(f"{root / 'test'}: class folder(s) {sorted(unknown)} are not in "
                                f"{root / 'train'}; both need the same classes")
    from PIL import Image

    modes = {}
    for part in parts:
        for f, _ in files[part]:
            modes[f] = _open(Image, f, size).mode
    channels = 1 if all(m == "L" for m in modes.values()) else 3
    arrays = {part: (np.stack([_pixels(Image, f, size, channels) for f, _ in files[part]]),
                     np.array([k for _, k in files[part]], np.int64)) for part in parts}
    x_tr, y_tr = arrays[parts[0]]
    x_te, y_te = arrays["test"] if "test" in arrays else (None, None)
    shape = (channels, size, size)
    ds, info = from_arrays(x_tr, y_tr, x_te, y_te, source=str(root), split_seed=split_seed,
                           classes=classes, image_shape=shape)
    return ds, {"kind": "image folder", "image_size": size, "channels": channels, **info}


def _open(image_module, f: Path, size: int):
    """The image at ``f`` decoded and resized (grayscale stays ``L``, anything else ``RGB``)."""
    try:
        with image_module.open(f) as im:
            im.load()
            im = im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")
            return im.resize((size, size), image_module.Resampling.BILINEAR)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for a bad file
        raise TaskDataError(f"{f}: not a readable image ({type(exc).__name__}: {exc}); the file "
                            f"may be truncated: replace or remove it") from None


def _pixels(image_module, f: Path, size: int, channels: int) -> np.ndarray:
    im = _open(image_module, f, size).convert("L" if channels == 1 else "RGB")
    a = np.asarray(im, dtype=np.float32) / 255.0
    return a[None] if channels == 1 else a.transpose(2, 0, 1)
