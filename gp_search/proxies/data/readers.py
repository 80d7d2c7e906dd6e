"""Readers for the standard on-disk dataset formats: idx (MNIST) and CIFAR python pickles.

The CIFAR reader unpickles with an allow-list: only the numpy reconstruction functions and the
two byte helpers those files reference are admitted, so a tampered file cannot run code.
"""
from __future__ import annotations

import gzip
import math
import os
import pickle
import zlib
from pathlib import Path

import numpy as np


def _read_bytes(path: Path) -> bytes:
    """Read a file, transparently gunzipping ``*.gz``; corrupt gzip -> ValueError."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"{path}: not a valid gzip file ({err})") from err


def read_idx(path: str | os.PathLike, expected_magic: int) -> np.ndarray:
    """Parse an idx file (the MNIST format) of unsigned bytes.

    Args:
        path: the file, plain or gzipped (``.gz`` suffix).
        expected_magic: 0x00000803 for image files, 0x00000801 for label files.

    Returns:
        uint8 array of the dimensions given in the header.

    Raises:
        ValueError: wrong magic, or a length that disagrees with the header.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: only {len(raw)} bytes, too short for an idx header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise ValueError(f"{path}: bad idx magic 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header ({len(raw)} bytes, need {header})")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    want = header + math.prod(dims)
    if len(raw) != want:
        problem = "truncated" if len(raw) < want else "trailing bytes"
        raise ValueError(f"{path}: {problem}: {len(raw)} bytes but header dims {dims} need {want}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


try:  # numpy >= 2 keeps these in numpy._core; older pickles still name numpy.core
    from numpy._core import multiarray as _np_multiarray, numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray, numeric as _np_numeric


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A pickle asked for a global outside the allow-list (also a ValueError, like other bad data)."""


def _latin1_encode(text, encoding="latin1"):
    # Python 3 writes bytes as _codecs.encode(str, 'latin1') at protocol 2; admit only that use.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode only admitted as (str, 'latin1'), got {encoding!r}")
    return text.encode("latin1")


def _empty_bytes(*args):
    # Python 3 writes b'' as bytes() at protocol 2; refuse bytes(n), which could allocate n bytes.
    if args:
        raise UnsafePickleError("builtins.bytes only admitted without arguments")
    return b""


# Exactly what CIFAR batches (numpy arrays, lists, bytes) can reference, whichever
# numpy and pickle protocol wrote them. Mapping to objects, rather than importing
# by name, also avoids numpy 2's deprecation warning for ``numpy.core``.
_PICKLE_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
}
for _module in ("numpy.core", "numpy._core"):
    _PICKLE_ALLOWED[(f"{_module}.multiarray", "_reconstruct")] = _np_multiarray._reconstruct
    _PICKLE_ALLOWED[(f"{_module}.multiarray", "scalar")] = _np_multiarray.scalar
    _PICKLE_ALLOWED[(f"{_module}.numeric", "_frombuffer")] = _np_numeric._frombuffer


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"forbidden global {module}.{name}") from None


def read_cifar_batch(path: str | os.PathLike, label_key: str, num_classes: int):
    """Read one CIFAR python batch with the allow-list unpickler.

    Args:
        path: a batch file such as ``data_batch_1`` or ``train``.
        label_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).
        num_classes: labels must lie in ``0 .. num_classes - 1``.

    Returns:
        ``(data, labels)``: uint8 array ``(N, 3072)`` and int64 array ``(N,)``.

    Raises:
        UnsafePickleError: the pickle references a forbidden global (nothing is run).
        ValueError: the file is not a well-formed batch.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="bytes").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}; refusing to unpickle") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, OverflowError, MemoryError) as err:
        raise ValueError(f"{path}: not a readable CIFAR pickle ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    # The real files have bytes keys; accept str keys from re-pickled copies too.
    obj = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}
    for key in ("data", label_key):
        if key not in obj:
            raise ValueError(f"{path}: missing key {key!r} (has {sorted(map(str, obj))})")
    data = obj["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: 'data' must be a uint8 array (N, 3072), got {desc}")
    labels = np.asarray(obj[label_key])
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise ValueError(f"{path}: {label_key!r} must be {len(data)} integers, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{path}: {label_key!r} outside 0..{num_classes - 1}")
    return data, labels.astype(np.int64)
