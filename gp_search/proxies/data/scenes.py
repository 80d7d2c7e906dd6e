"""The embedded segmentation data: digits composited onto cluttered canvases, labelled per pixel.

Generated locally from scikit-learn's 8x8 digits (nothing is downloaded), deterministically per
seed. A scene is a ``size x size`` one-channel canvas:

1. a smooth background: a random linear brightness gradient plus Gaussian pixel noise;
2. clutter: digits of the *distractor* classes (5-9), pasted like objects but labelled
   background, so a model has to recognise a shape, not merely find ink;
3. objects: digits of the *object* classes (0-4), each upscaled by a random factor with linear
   interpolation (:func:`scipy.ndimage.zoom`), given a random contrast, and pasted at a random
   position fully inside the canvas; later objects occlude earlier ones.

Each pixel is labelled with its object's class (digit ``d`` → class ``d + 1``) where the
upscaled digit's intensity exceeds ``threshold``, and background (class 0) elsewhere: K = 5 object
classes plus background, 6 classes in all.

Variants (:data:`VARIANTS`), both 2000 training / 500 test scenes of 32 x 32:

* ``seg-digits`` — 2 or 3 objects of uniformly drawn classes, zoom 1.6-3.0 (13-24 px digits),
  0-2 distractors; background is 70 % of the training pixels, each object class about 6 %.
* ``seg-digits-imbalanced`` — one small object (zoom 1.2-2.0), classes drawn with weights
  8 : 4 : 2 : 1 : 1, 1-3 distractors: background is 93 % of the training pixels and the two
  rarest classes 0.5 % each (the regime where per-pixel losses are said to favour background).

Training scenes paste digits from a fixed stratified 70 % of scikit-learn's digits and test
scenes from the other 30 %, so every test object is a digit instance never seen in training.
The inputs are standardised by the training split's scalar mean and std.

Example:
    >>> x, y = generate(VARIANTS["seg-digits"], n=2, seed=0)
    >>> x.shape, y.shape, int(y.max()) <= 5
    ((2, 1, 32, 32), (2, 32, 32), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gp_search.proxies.data.dataset import Dataset


@dataclass(frozen=True)
class SceneConfig:
    """How scenes of one variant are drawn (every range is inclusive).

    Attributes:
        size: canvas side in pixels.
        objects: least and most objects per scene.
        distractors: least and most distractor digits per scene (labelled background).
        zoom: least and most upscaling of an 8x8 digit.
        class_weights: relative sampling weights of the object classes (digits 0-4).
        noise: standard deviation of the Gaussian pixel noise (canvas intensities in [0, 1]).
        threshold: upscaled-digit intensity above which a pixel belongs to the digit.
        n_train: training scenes.
        n_test: test scenes.
    """

    size: int = 32
    objects: tuple[int, int] = (2, 3)
    distractors: tuple[int, int] = (0, 2)
    zoom: tuple[float, float] = (1.6, 3.0)
    class_weights: tuple[float, ...] = (1, 1, 1, 1, 1)
    noise: float = 0.1
    threshold: float = 0.3
    n_train: int = 2000
    n_test: int = 500


OBJECT_DIGITS = (0, 1, 2, 3, 4)
"""Digits drawn as objects; digit ``d`` is labelled class ``d + 1`` (0 is background)."""
DISTRACTOR_DIGITS = (5, 6, 7, 8, 9)
"""Digits drawn as clutter and labelled background."""
NUM_CLASSES = len(OBJECT_DIGITS) + 1
TRAIN_SEED, TEST_SEED = 0, 1
"""The seeds of the registered variants' training and test scenes."""

VARIANTS: dict[str, SceneConfig] = {
    "seg-digits": SceneConfig(),
    "seg-digits-imbalanced": SceneConfig(objects=(1, 1), distractors=(1, 3), zoom=(1.2, 2.0),
                                         class_weights=(8, 4, 2, 1, 1)),
}
"""The registered variants by dataset name (see the module docstring)."""


@lru_cache(maxsize=None)
def digit_pool(part: str) -> dict[int, np.ndarray]:
    """scikit-learn's digits in [0, 1] by digit, ``part`` ``"train"`` (70 %) or ``"test"`` (30 %).

    Returns:
        digit → float array ``(n, 8, 8)``; the split is stratified with ``random_state=0``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float64)
    tr, te = train_test_split(np.arange(len(images)), test_size=0.3, stratify=bunch.target,
                              random_state=0)
    idx = {"train": tr, "test": te}[part]
    return {d: images[idx[bunch.target[idx] == d]] for d in range(10)}


def _paste(canvas, labels, digit_img, zoom, contrast, rng, label, threshold):
    """Upscale one digit and paste it at a random position; label its pixels (None: keep)."""
    from scipy.ndimage import zoom as upscale

    img = np.clip(upscale(digit_img, zoom, order=1), 0.0, 1.0)
    h, w = img.shape
    size = canvas.shape[0]
    top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
    mask = img > threshold
    window = canvas[top:top + h, left:left + w]
    window[mask] = contrast * img[mask]
    if label is not None:
        labels[top:top + h, left:left + w][mask] = label


def generate(config: SceneConfig, n: int, seed: int,
             part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` scenes: the same ``(config, n, seed, part)`` always gives the same arrays.

    Args:
        config: the variant.
        n: scenes to draw.
        seed: seeds a private ``numpy.random.default_rng``; the global RNGs are untouched.
        part: which digit instances to paste, ``"train"`` or ``"test"`` (:func:`digit_pool`).

    Returns:
        ``(x, y)``: float32 ``(n, 1, size, size)`` intensities (not standardised) and int64
        ``(n, size, size)`` labels in ``0 .. 5``.

    Raises:
        ValueError: a zoom that makes a digit larger than the canvas.
    """
    size = config.size
    if round(8 * config.zoom[1]) > size:
        raise ValueError(f"zoom up to {config.zoom[1]} makes an 8x8 digit larger than the "
                         f"{size}x{size} canvas; lower zoom or raise size")
    pool = digit_pool(part)
    rng = np.random.default_rng(seed)
    weights = np.asarray(config.class_weights, dtype=np.float64)
    weights = weights / weights.sum()
    coords = np.linspace(-1.0, 1.0, size)
    x = np.empty((n, 1, size, size), dtype=np.float32)
    y = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        gx, gy, base = rng.uniform(-0.15, 0.15, 2).tolist() + [rng.uniform(0.0, 0.2)]
        canvas = base + gx * coords[None, :] + gy * coords[:, None]
        canvas = canvas + rng.normal(0.0, config.noise, (size, size))
        for _ in range(rng.integers(config.distractors[0], config.distractors[1] + 1)):
            d = DISTRACTOR_DIGITS[rng.integers(len(DISTRACTOR_DIGITS))]
            img = pool[d][rng.integers(len(pool[d]))]
            _paste(canvas, y[i], img, rng.uniform(*config.zoom), rng.uniform(0.6, 1.0), rng,
                   None, config.threshold)
        for _ in range(rng.integers(config.objects[0], config.objects[1] + 1)):
            k = rng.choice(len(OBJECT_DIGITS), p=weights)
            d = OBJECT_DIGITS[k]
            img = pool[d][rng.integers(len(pool[d]))]
            _paste(canvas, y[i], img, rng.uniform(*config.zoom), rng.uniform(0.6, 1.0), rng,
                   k + 1, config.threshold)
        x[i, 0] = canvas
    return x, y


def scenes_dataset(name: str, config: SceneConfig | None = None) -> Dataset:
    """The registered variant ``name`` as a :class:`~gp_search.proxies.data.dataset.Dataset`.

    Args:
        name: a key of :data:`VARIANTS` (also the dataset's name).
        config: draw with this config instead of the registered one.

    Returns:
        Training scenes from :data:`TRAIN_SEED` and training digits, test scenes from
        :data:`TEST_SEED` and test digits; inputs standardised by the training split's scalar
        mean and std; ``y_*`` int64 ``(N, size, size)``.
    """
    import torch

    config = VARIANTS[name] if config is None else config
    x_tr, y_tr = generate(config, config.n_train, TRAIN_SEED, "train")
    x_te, y_te = generate(config, config.n_test, TEST_SEED, "test")
    mean, std = float(x_tr.mean()), float(x_tr.std())
    shape = (1, config.size, config.size)
    return Dataset(name, torch.from_numpy((x_tr - mean) / std), torch.from_numpy(y_tr),
                   torch.from_numpy((x_te - mean) / std), torch.from_numpy(y_te), NUM_CLASSES,
                   shape, shape)


def class_shares(y: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Fraction of the pixels of ``y`` in each class (what the imbalance claims rest on)."""
    counts = np.bincount(np.asarray(y).ravel(), minlength=num_classes)[:num_classes]
    return counts / counts.sum()
