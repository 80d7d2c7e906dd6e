"""Tasks made from datasets: relabel, subsample, long tail, label noise; mixup's soft targets.

A search scores losses on a few proxies; a loss that wins there has to keep winning on tasks
the search never saw (the held-out suites of :mod:`gp_search.proxies.catalog`). This module makes
those tasks out of an embedded dataset:

* the **transforms** — fewer classes (:data:`gp_search.proxies.spec.RELABELS`), fewer training
  samples, a long-tailed training split (class counts falling geometrically, the test split
  untouched), symmetric label noise on the training labels only — set by
  :class:`gp_search.proxies.spec.ProxySpec` fields (``relabel``, ``subsample``, ``long_tail``,
  ``label_noise``, ``data_seed``, checked by its rules) whose defaults mean "no transform",
  applied by the trainer (:func:`gp_search.proxies.train.dataset_for`) through :func:`transform`;
* **mixup** (``ProxySpec.mixup``): soft targets made per training batch
  (:func:`mixup_plan`, :func:`mix`), applied in the training loop.

Example:
    >>> relabel_map("mod3").tolist()
    [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from gp_search.proxies.data.dataset import Dataset
from gp_search.proxies.spec import RELABELS, check_transform


def relabel_map(name: str, num_classes: int = 10) -> np.ndarray:
    """The new class of each old class id under the map ``name`` (a key of :data:`RELABELS`).

    Raises:
        ValueError: unknown map, or a dataset whose class count the map does not fit.
    """
    if name not in RELABELS:
        raise ValueError(f"relabel must be '' (none) or one of {', '.join(RELABELS)}, got {name!r}")
    if num_classes != 10:
        raise ValueError(f"relabel {name!r} maps 10 classes and the dataset has {num_classes}; "
                         f"use it on a 10-class dataset or leave relabel empty")
    old = np.arange(num_classes)
    return {"parity": old % 2, "half": (old >= 5).astype(np.int64), "mod3": old % 3,
            "mod5": old % 5}[name]


def long_tail_counts(available: np.ndarray, ratio: float) -> np.ndarray:
    """Training samples kept per class for imbalance ``ratio``: class ``c`` of ``K`` keeps
    ``round(m · ratio^(-c/(K-1)))``, ``m`` the smallest class's count (so every class can give
    that many), at least 1: class 0 the most frequent, the last class ``ratio`` times rarer
    (the long-tailed CIFAR recipe of Cui et al. 2019, over class ids)."""
    k = len(available)
    m = int(available.min())
    return np.maximum(1, np.round(m * float(ratio) ** (-np.arange(k) / max(1, k - 1)))).astype(int)


def transform(ds: Dataset, relabel: str = "", subsample: int = 0, label_noise: float = 0.0,
              data_seed: int = 0, long_tail: float = 0.0) -> Dataset:
    """``ds`` made into another task: fewer classes, fewer training samples, a long tail, noise.

    In this order: ``relabel`` maps both splits' labels (:func:`relabel_map`); ``subsample``
    keeps that many training samples, stratified by class (``train_test_split`` with
    ``random_state=data_seed``); ``long_tail`` keeps :func:`long_tail_counts` training samples
    of each class, drawn with ``RandomState(data_seed)`` (order kept); ``label_noise`` gives
    exactly ``round(label_noise * n_train)``
    training samples, drawn with ``RandomState(data_seed)``, a label drawn uniformly from the
    *other* classes, so that fraction of the training labels is wrong. Test labels are never
    touched. Defaults mean "no transform" and return ``ds`` itself.

    Args:
        ds: the loaded dataset (CPU or any device).
        relabel, subsample, label_noise, data_seed, long_tail: as in
            :class:`gp_search.proxies.spec.ProxySpec`.

    Returns:
        The transformed :class:`Dataset`, named ``"<name>|<transform>…"``; the same for the same
        arguments on every call.

    Raises:
        ValueError: a bad setting (:func:`check_transform`), or ``subsample`` outside
            ``num_classes .. n_train``.
    """
    check_transform(relabel=relabel, subsample=subsample, label_noise=label_noise,
                    data_seed=data_seed, long_tail=long_tail)
    if not relabel and not subsample and not label_noise and not long_tail:
        return ds
    if ds.y_train.dim() > 1:  # per-pixel labels: a sample has no one class to stratify or flip
        raise ValueError(f"{ds.name} has per-pixel labels; relabel, subsample, long_tail and "
                         f"label_noise apply to one label per sample: leave them at their "
                         f"defaults")
    dev = ds.x_train.device
    x_tr, y_tr = ds.x_train, ds.y_train.cpu().numpy()
    y_te, k, name = ds.y_test.cpu().numpy(), ds.num_classes, ds.name
    if relabel:
        new = relabel_map(relabel, k)
        y_tr, y_te, k, name = new[y_tr], new[y_te], int(new.max()) + 1, f"{name}|{relabel}"
    if subsample:
        if not k <= subsample <= len(y_tr):
            raise ValueError(f"subsample must lie in {k}..{len(y_tr)} (classes .. training "
                             f"samples of {ds.name}), got {subsample}")
        if subsample < len(y_tr):
            from sklearn.model_selection import train_test_split
            keep, _ = train_test_split(np.arange(len(y_tr)), train_size=subsample,
                                       stratify=y_tr, random_state=data_seed)
            keep = np.sort(keep)
            x_tr, y_tr = x_tr[torch.as_tensor(keep, device=dev)], y_tr[keep]
        name = f"{name}|n{subsample}"
    if long_tail:
        rng = np.random.RandomState(data_seed)
        counts = long_tail_counts(np.bincount(y_tr, minlength=k), long_tail)
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(y_tr == c), n, replace=False)
                                       for c, n in enumerate(counts)]))
        x_tr, y_tr = x_tr[torch.as_tensor(keep, device=dev)], y_tr[keep]
        name = f"{name}|lt{long_tail:g}"
    if label_noise:
        rng = np.random.RandomState(data_seed)
        flip = rng.choice(len(y_tr), size=int(round(label_noise * len(y_tr))), replace=False)
        y_tr = y_tr.copy()
        # A shift of 1..k-1 classes: uniform over the other classes, never the true one.
        y_tr[flip] = (y_tr[flip] + rng.randint(1, k, size=len(flip))) % k
        name = f"{name}|noise{label_noise:g}"
    return dataclasses.replace(ds, name=f"{name}|seed{data_seed}", x_train=x_tr,
                               y_train=torch.as_tensor(y_tr, dtype=torch.int64, device=dev),
                               y_test=torch.as_tensor(y_te, dtype=torch.int64, device=dev),
                               num_classes=k)


def mixup_plan(batch_size: int, steps: int, alpha: float, seed: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup's draws for one training: a weight per batch and a partner per sample.

    Args:
        batch_size: samples per batch.
        steps: batches.
        alpha: the Beta(α, α) parameter (> 0).
        seed: the training seed; a private ``numpy.random.RandomState(seed)`` draws everything
            (torch's generators and the batch order are untouched), so every loss trained with
            a seed mixes the same batches the same way.

    Returns:
        ``(lam, partner)``: float32 ``(steps,)`` weights λ ~ Beta(α, α) and int64
        ``(steps, batch_size)`` permutations of the batch positions.
    """
    rng = np.random.RandomState(int(seed))
    lam = rng.beta(alpha, alpha, size=steps)
    partner = np.stack([rng.permutation(batch_size) for _ in range(steps)]) if steps else \
        np.zeros((0, batch_size), dtype=np.int64)
    return torch.as_tensor(lam, dtype=torch.float32), torch.as_tensor(partner, dtype=torch.int64)


def mix(x: torch.Tensor, y: torch.Tensor, num_classes: int, lam: torch.Tensor,
        partner: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One mixed batch: ``λ·x + (1-λ)·x[partner]`` and the same combination of one-hot targets.

    Args:
        x: the batch's inputs ``(B, ...)``; y: its class ids ``(B,)``.
        num_classes: K.
        lam: λ, a 0-d tensor; partner: ``(B,)`` positions (one row of :func:`mixup_plan`).

    Returns:
        The mixed inputs and the probability targets ``(B, K)`` (each row sums to 1).
    """
    lam = lam.to(x.dtype)
    onehot = torch.nn.functional.one_hot(y, num_classes).to(x.dtype)
    return (lam * x + (1 - lam) * x[partner], lam * onehot + (1 - lam) * onehot[partner])
