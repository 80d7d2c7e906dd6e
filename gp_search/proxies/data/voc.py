"""Reader for the Pascal VOC segmentation layout: JPEG images and palette-PNG class masks.

The layout (VOC2012, and any data set written the same way), under one directory ``BASE``::

    BASE/ImageSets/Segmentation/train.txt   one image id per line (the training split)
    BASE/ImageSets/Segmentation/val.txt     one image id per line (scored as the test split)
    BASE/JPEGImages/<id>.jpg                the RGB image
    BASE/SegmentationClass/<id>.png         the mask: a palette ("P") PNG whose pixel *indices*
                                            are class ids, 0 background, 1-20 the VOC classes,
                                            255 unlabelled ("void": object borders)

Greyscale ("L") masks holding the class ids directly are read too. Every listed file is checked
before any is read, so a missing one fails up front naming each path expected; a mask with an id
outside 0-20 and 255, or of another size than its image, fails naming the file. Images are
resized to ``size x size`` with bilinear filtering and masks with nearest-neighbour (a class id
is never blended); the pixels / 255 are then standardised per channel by the training split's
mean and std. Where to find ``BASE`` under a data root: :mod:`gp_search.proxies.data.dataset` (``voc``).

Example (writing a one-image fixture in this format, as the tests do):
    >>> import numpy as np, tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp())
    >>> write_example(base, "a", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    >>> for split in ("train", "val"):
    ...     _ = (base / f"ImageSets/Segmentation/{split}.txt").write_text("a\\n")
    >>> read_voc(base, size=4).y_test.shape
    torch.Size([1, 4, 4])
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gp_search.lang import IGNORE_INDEX
from gp_search.proxies.data.dataset import Dataset

NUM_CLASSES = 21
"""Background plus the 20 VOC object classes."""
IGNORE = IGNORE_INDEX
"""The mask value of unlabelled pixels (the losses' and metrics' ignore label)."""
DEFAULT_SIZE = 64
"""Side of the square images and masks the registered ``voc`` dataset is resized to."""
SPLITS = ("train", "val")
DIRS = ("VOCdevkit/VOC2012", "VOC2012", "voc")
"""Directories under a data root where ``BASE`` may be (then the root itself)."""


def voc_palette() -> list[int]:
    """The VOC colour map as a flat 768-entry PIL palette (class c's colour at 3c..3c+2).

    The devkit's bit-interleaving construction; index 255 is (224, 224, 192), the void colour.
    """
    out = []
    for c in range(256):
        r = g = b = 0
        for shift in range(8):
            r |= ((c >> 0) & 1) << (7 - shift)
            g |= ((c >> 1) & 1) << (7 - shift)
            b |= ((c >> 2) & 1) << (7 - shift)
            c >>= 3
        out += [r, g, b]
    return out


def write_example(base: str | os.PathLike, image_id: str, image: np.ndarray,
                  mask: np.ndarray) -> None:
    """Write one image (uint8 ``(H, W, 3)``) as JPEG and its mask (uint8 ``(H, W)`` class ids)
    as a VOC palette PNG under ``base`` (for fixtures and for exporting generated scenes)."""
    from PIL import Image

    base = Path(base)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    image = np.ascontiguousarray(image, np.uint8)
    Image.fromarray(image).save(base / "JPEGImages" / f"{image_id}.jpg", quality=95)
    mask = np.ascontiguousarray(mask, np.uint8)
    # The indices are the class ids: written as they are, never quantised from colours.
    png = Image.frombytes("P", (mask.shape[1], mask.shape[0]), mask.tobytes())
    png.putpalette(voc_palette())
    png.save(base / "SegmentationClass" / f"{image_id}.png")


def read_ids(path: Path) -> list[str]:
    """The image ids of a split list, one per line (blank lines skipped).

    Raises:
        ValueError: an empty list, or an id that is not a plain file name.
    """
    ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not ids:
        raise ValueError(f"{path}: no image ids; expected one id per line (e.g. 2007_000032)")
    bad = [i for i in ids if Path(i).name != i or i in (".", "..")]
    if bad:
        raise ValueError(f"{path}: {bad[0]!r} is not an image id (a plain file name without "
                         f"directories, e.g. 2007_000032)")
    return ids


def _files(base: Path, ids: list[str]) -> list[tuple[Path, Path]]:
    return [(base / "JPEGImages" / f"{i}.jpg", base / "SegmentationClass" / f"{i}.png")
            for i in ids]


def _read_pair(image_path: Path, mask_path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image_path) as im:
            image = im.convert("RGB")
        with Image.open(mask_path) as m:
            m.load()
            mask = m
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ValueError(f"{image_path} / {mask_path}: not a readable JPEG image and PNG mask "
                         f"({type(err).__name__}: {err})") from err
    if mask.mode not in ("P", "L"):
        raise ValueError(f"{mask_path}: a mask must be a palette ('P') PNG of class ids, as "
                         f"VOC's SegmentationClass, or greyscale ('L'); got mode {mask.mode!r}")
    if mask.size != image.size:
        raise ValueError(f"{mask_path}: mask is {mask.size[0]}x{mask.size[1]} but its image "
                         f"{image_path} is {image.size[0]}x{image.size[1]}")
    ids = np.asarray(mask)
    bad = np.setdiff1d(np.unique(ids), [*range(NUM_CLASSES), IGNORE])
    if bad.size:
        raise ValueError(f"{mask_path}: class id(s) {bad.tolist()} in the mask; VOC masks hold "
                         f"0-{NUM_CLASSES - 1} and {IGNORE} (unlabelled)")
    image = image.resize((size, size), Image.Resampling.BILINEAR)
    mask = mask.resize((size, size), Image.Resampling.NEAREST)
    return np.asarray(image).transpose(2, 0, 1), np.asarray(mask).astype(np.int64)


def read_voc(base: str | os.PathLike, size: int = DEFAULT_SIZE, name: str = "voc") -> Dataset:
    """Read the ``train`` and ``val`` lists of a VOC-layout directory as a dense dataset.

    Args:
        base: the directory holding ``ImageSets``, ``JPEGImages`` and ``SegmentationClass``.
        size: side of the square the images and masks are resized to.
        name: the dataset's name.

    Returns:
        A :class:`~gp_search.proxies.data.dataset.Dataset`: ``x_*`` float32 ``(N, 3, size, size)``,
        ``y_*`` int64 ``(N, size, size)`` with 255 where unlabelled; ``train.txt`` trains and
        ``val.txt`` is the test split (VOC's own test masks are not public); 21 classes.

    Raises:
        FileNotFoundError: a split list, image or mask is missing (all missing files named).
        ValueError: a malformed list, image or mask (the file named).
    """
    import torch

    base = Path(base)
    lists = {s: base / "ImageSets" / "Segmentation" / f"{s}.txt" for s in SPLITS}
    absent = [str(p) for p in lists.values() if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"Pascal VOC layout: missing split list(s) {', '.join(absent)}")
    pairs = {s: _files(base, read_ids(p)) for s, p in lists.items()}
    missing = [str(f) for split in pairs.values() for pair in split for f in pair
               if not f.is_file()]
    if missing:
        shown = "\n  ".join(missing[:10]) + (f"\n  ... and {len(missing) - 10} more"
                                             if len(missing) > 10 else "")
        raise FileNotFoundError(f"Pascal VOC layout under {base}: {len(missing)} listed file(s) "
                                f"missing (each id needs JPEGImages/<id>.jpg and "
                                f"SegmentationClass/<id>.png):\n  {shown}")
    arrays = {}
    for split, files in pairs.items():
        read = [_read_pair(img, mask, size) for img, mask in files]
        arrays[split] = (np.stack([x for x, _ in read]), np.stack([y for _, y in read]))
    x_tr = arrays["train"][0].astype(np.float32) / 255.0
    mean = x_tr.mean(axis=(0, 2, 3), keepdims=True)
    std = np.maximum(x_tr.std(axis=(0, 2, 3), keepdims=True), 1e-6)  # a constant channel stays finite
    x_te = arrays["val"][0].astype(np.float32) / 255.0
    shape = (3, size, size)
    return Dataset(name, torch.from_numpy((x_tr - mean) / std),
                   torch.from_numpy(arrays["train"][1]), torch.from_numpy((x_te - mean) / std),
                   torch.from_numpy(arrays["val"][1]), NUM_CLASSES, shape, shape)
