"""A user's data files (.npz, .csv/.tsv, image folders): found, hashed, read into arrays.

Each reader hands its arrays to :func:`gp_search.proxies.data.user_arrays.from_arrays`, which
checks and standardises them (its docstring lists what is refused); errors are a
:class:`TaskDataError` naming the file, the row, column or sample, and the fix. Nothing is ever
unpickled (``np.load(..., allow_pickle=False)``).

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "blobs.npz"
    >>> np.savez(path, x_train=np.random.default_rng(0).normal(size=(40, 3)),
    ...          y_train=np.arange(40) % 2)
    >>> ds, info = read(path)
    >>> info["kind"], ds.n_train, ds.n_test, digest(path)["size"] > 0
    ('npz', 32, 8, True)
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import zipfile
from pathlib import Path

import numpy as np

from gp_search.proxies.data.dataset import Dataset
from gp_search.proxies.data.user_arrays import TaskDataError, from_arrays

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
"""What counts as an image in a class folder (case-insensitive); other files are ignored."""
CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}


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
