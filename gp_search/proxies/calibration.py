"""Calibration of a trained classifier: the expected calibration error and temperature scaling.

A loss can raise accuracy and still leave the model's confidence far from its hit rate: NGL-like
losses cap the softmax's top probability. Every training therefore also measures, on its
held-out split (:func:`measure`):

* ``ece`` — the expected calibration error (Guo et al. 2017): the top softmax probability of
  each sample binned into :data:`ECE_BINS` equal-width bins, ``sum_b (n_b/N)·|acc_b − conf_b|``;
* ``temperature`` — the T that minimises the negative log-likelihood of ``softmax(logits / T)``
  (temperature scaling, Guo et al. 2017), fitted by SciPy's bounded scalar minimiser over
  log T ∈ [log 0.01, log 100];
* ``ece_scaled`` — the ECE after temperature scaling, fitted on a *validation* part and measured
  on the rest: the held-out split is cut in two fixed halves (a permutation drawn with seed 0),
  each half's logits are divided by the T fitted on the other half (2-fold cross-fitting), and
  the ECE is taken over all samples. So no sample is scored with a temperature fitted on it.
  ``temperature`` reports the geometric mean of the two halves' T.

The figures are rounded (ECE to 1e-5, T to 5 significant digits), far finer than any
difference they are used to show, so that the last-bit differences of the logits between
evaluation chunks and training paths do not make two equal trainings differ.

Temperature scaling never changes a prediction (argmax), only its confidence: it is the way to
undo what a loss does to calibration. Dense (per-pixel) tasks get no figures here (NaN):
``gp_search.analysis.compare`` measures their ECE pixel by pixel.

Example:
    >>> round(ece([0.9, 0.9, 0.6, 0.6], [True, False, True, True]), 3)
    0.4
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import minimize_scalar

ECE_BINS = 15
"""Equal-width confidence bins of the expected calibration error (Guo et al. 2017)."""
LOG_T_RANGE = (math.log(0.01), math.log(100.0))
"""The interval of log T searched by :func:`fit_temperature`."""
FOLD_SEED = 0
"""Seeds the fixed permutation that cuts a held-out split into its two calibration halves."""
NAN_FIGURES = {"ece": math.nan, "temperature": math.nan, "ece_scaled": math.nan}
"""What :func:`measure` gives where there is nothing to measure."""


def _bin_index(confidence: np.ndarray, bins: int) -> np.ndarray:
    """Bin ``i`` holds ``i/bins < c <= (i+1)/bins`` (Guo et al.); 0 falls in the first bin."""
    edges = np.arange(bins + 1) / bins  # exact i/bins, so a value on an edge bins as stated
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)


def reliability(confidence: Sequence[float], correct: Sequence[bool],
                bins: int = ECE_BINS) -> list[dict]:
    """Per-bin counts, mean confidence and accuracy (the reliability diagram's points).

    Args:
        confidence: top softmax probability of each sample, in [0, 1].
        correct: whether each sample's argmax is its label.
        bins: equal-width bins on [0, 1].

    Returns:
        One dict per bin: ``lo``, ``hi``, ``count``, ``confidence``, ``accuracy`` (NaN when empty).
    """
    conf = np.asarray(confidence, dtype=float)
    corr = np.asarray(correct, dtype=float)
    if conf.shape != corr.shape:
        raise ValueError(f"confidence and correct must have the same length, got {conf.shape} "
                         f"and {corr.shape}")
    idx = _bin_index(conf, bins)
    out = []
    for b in range(bins):
        m = idx == b
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": int(m.sum()),
                    "confidence": float(conf[m].mean()) if m.any() else math.nan,
                    "accuracy": float(corr[m].mean()) if m.any() else math.nan})
    return out


def ece(confidence: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |accuracy_b - confidence_b|``.

    Args:
        confidence: top softmax probability per sample.
        correct: whether each sample was classified right.
        bins: equal-width bins on [0, 1] (15, as Guo et al. 2017).

    Returns:
        The ECE in [0, 1]; NaN for no samples.
    """
    rows = reliability(confidence, correct, bins)
    total = sum(r["count"] for r in rows)
    if total == 0:
        return math.nan
    return float(sum(r["count"] / total * abs(r["accuracy"] - r["confidence"])
                     for r in rows if r["count"]))


def logits_ece(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """ECE of ``softmax(logits / temperature)`` (``(N, C)``) against class ids ``labels``."""
    p = torch.softmax(logits.double() / temperature, dim=1)
    return ece(p.amax(1).numpy(), (p.argmax(1) == labels).numpy())


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / temperature)`` (float64)."""
    return float(torch.nn.functional.cross_entropy(logits.double() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T minimising :func:`nll` on ``(logits, labels)`` (log T in
    :data:`LOG_T_RANGE`, SciPy's bounded Brent search); 1.0 for no samples."""
    if len(labels) == 0:
        return 1.0
    z, y = logits.double(), labels.long()
    found = minimize_scalar(lambda log_t: nll(z, y, math.exp(log_t)), bounds=LOG_T_RANGE,
                            method="bounded", options={"xatol": 1e-3})
    return math.exp(float(found.x))


def measure(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``ece``, ``temperature`` and ``ece_scaled`` of a held-out split (see the module docstring).

    Args:
        logits: ``(N, C)`` held-out logits (any device; read on the CPU in float64).
        labels: ``(N,)`` class ids.

    Returns:
        The three figures; NaN for all of them when the logits are not finite, are dense, or
        there are fewer than 4 samples.
    """
    z, y = logits.detach().double().cpu(), labels.detach().long().cpu()
    if z.dim() != 2 or len(y) < 4 or not bool(torch.isfinite(z).all()):
        return dict(NAN_FIGURES)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(FOLD_SEED))
    halves = (perm[:len(y) // 2], perm[len(y) // 2:])
    temps = [fit_temperature(z[h], y[h]) for h in halves]
    scaled = z.clone()
    for h, t in zip(halves, reversed(temps)):  # each half scaled by the other half's fit
        scaled[h] = z[h] / t
    # Rounded (ECE to 1e-5, T to 5 significant digits): the logits of one training differ in
    # their last bits with the evaluation chunk and the training path (GEMM blocking), which
    # moves these figures by ~1e-10; rounding keeps results equal where accuracies are.
    t = math.exp(sum(map(math.log, temps)) / 2)
    return {"ece": round(logits_ece(z, y), 5), "temperature": float(f"{t:.5g}"),
            "ece_scaled": round(logits_ece(scaled, y), 5)}
