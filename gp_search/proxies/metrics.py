"""Held-out metrics of a proxy: predicted and true class ids → one confusion matrix → one score.

Every metric is read from a confusion matrix (rows: true class, columns: predicted class) that is
accumulated over the whole held-out split, chunk by chunk (:func:`chunked_confusion`, which
``train_one`` and both population stacks call), so a score never depends on the evaluation
batch size. Targets equal to :data:`IGNORE_INDEX` (Pascal VOC's "void" pixels) are left
out of every metric. Dense predictions ``(N, H, W)`` are counted pixel by pixel.

* ``accuracy`` — fraction correct (for dense predictions: pixel accuracy).
* ``balanced_accuracy`` — mean per-class recall over the classes present in the targets.
* ``macro_f1`` — mean per-class F1 over the classes present in the targets or the predictions.
* ``miou`` — mean intersection over union, the standard definition: per-class IoU
  ``TP / (TP + FP + FN)`` from the confusion accumulated over the whole split, averaged over the
  classes present in the targets or the predictions (background, class 0, counted as a class).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gp_search.lang import IGNORE_INDEX


def confusion(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
              ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Confusion counts of one chunk: ``(num_classes, num_classes)`` int64, ``[true, predicted]``.

    Args:
        pred: predicted class ids, any shape.
        target: true class ids, same shape; entries equal to ``ignore_index`` are skipped
            when ``num_classes <= ignore_index`` (where the id cannot be a class).
        num_classes: C.
        ignore_index: target value to skip.
    """
    if num_classes <= ignore_index:  # as the losses do: with more classes the id is a class
        keep = target != ignore_index
        target, pred = target[keep], pred[keep]
    t, p = target.long(), pred.long()
    flat = torch.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return flat.view(num_classes, num_classes).cpu()


def confusions(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
               ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Confusion counts of one chunk for every slot of a population at once, on the device:
    ``(n, C, C)`` int64 from ``pred`` ``(n, ...)`` against the shared ``target`` ``(...)``.

    One ``bincount`` over ``slot·C² + true·C + predicted`` (a skipped target, as in
    :func:`confusion`, goes to one extra bin that is dropped): no per-slot loop, no boolean
    indexing, so on CUDA one chunk costs one synchronisation (``bincount`` sizing its output)
    whatever ``n``; the counts equal :func:`confusion`'s slot by slot.

    Example:
        >>> pred = torch.tensor([[0, 1, 1], [1, 1, 0]]); y = torch.tensor([0, 1, 1])
        >>> confusions(pred, y, 2).tolist()
        [[[1, 0], [0, 2]], [[0, 1], [1, 1]]]
    """
    n, cc = pred.shape[0], num_classes * num_classes
    t, p = target.long().reshape(1, -1), pred.long().reshape(n, -1)
    slot = torch.arange(n, device=pred.device).view(n, 1) * cc
    index = slot + t * num_classes + p
    if num_classes <= ignore_index:  # the same rule as confusion(): the id cannot be a class
        index = torch.where(t == ignore_index, n * cc, index)
    return torch.bincount(index.reshape(-1), minlength=n * cc + 1)[:n * cc].view(
        n, num_classes, num_classes)


def chunked_confusion(logits_of: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                      y: torch.Tensor, num_classes: int, chunk: int,
                      population: int | None = None, kept: list | None = None) -> torch.Tensor:
    """The confusion over a whole split, predicted ``chunk`` samples at a time: what every
    trainer scores with (one model, or a population stacked in one). Each chunk is counted for
    every slot at once (:func:`confusions`) and the counts stay on the device until the end: one
    copy to the host per split, none per slot.

    Args:
        logits_of: a chunk of ``x`` -> its logits: ``(B, C, ...)`` for one model, ``(n, B, C,
            ...)`` for a population of ``n`` (classes on the axis after the samples).
        x, y: the split's inputs and class ids (dense targets: one per pixel).
        num_classes: C.
        chunk: samples per call of ``logits_of`` (memory only; never the result).
        population: None for one model, else ``n``: one matrix per slot.
        kept: when a list, each chunk's logits are appended to it (on the CPU).

    Returns:
        int64 ``(C, C)``, or ``(n, C, C)`` for a population.

    Example:
        >>> x = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]); y = torch.tensor([0, 1, 1])
        >>> chunked_confusion(lambda xb: xb, x, y, 2, chunk=2).tolist()
        [[1, 0], [1, 1]]
    """
    stacked = population is not None
    cms = torch.zeros(population if stacked else 1, num_classes, num_classes, dtype=torch.long,
                      device=y.device)  # accumulated on the device, copied to the host once
    for start in range(0, len(x), chunk):
        logits = logits_of(x[start:start + chunk])
        pred = logits.argmax(2) if stacked else logits.argmax(1).unsqueeze(0)
        cms += confusions(pred, y[start:start + chunk], num_classes)
        if kept is not None:
            kept.append(logits.cpu())
    cms = cms.cpu()
    return cms if stacked else cms[0]


def _per_class(cm: torch.Tensor):
    cm = cm.double()
    tp = cm.diag()
    return tp, cm.sum(1), cm.sum(0)  # true positives, true counts, predicted counts


def accuracy(cm: torch.Tensor) -> float:
    """Fraction of counted targets predicted right."""
    total = int(cm.sum())
    return int(cm.diag().sum()) / total if total else float("nan")


def balanced_accuracy(cm: torch.Tensor) -> float:
    """Mean recall over the classes present in the targets."""
    tp, true, _ = _per_class(cm)
    present = true > 0
    return float((tp[present] / true[present]).mean()) if present.any() else float("nan")


def macro_f1(cm: torch.Tensor) -> float:
    """Mean F1 = 2·TP / (2·TP + FP + FN) over the classes seen in targets or predictions."""
    tp, true, predicted = _per_class(cm)
    denom = true + predicted
    seen = denom > 0
    return float((2 * tp[seen] / denom[seen]).mean()) if seen.any() else float("nan")


def mean_iou(cm: torch.Tensor) -> float:
    """Mean IoU = TP / (TP + FP + FN) over the classes seen in targets or predictions."""
    tp, true, predicted = _per_class(cm)
    union = true + predicted - tp
    seen = union > 0
    return float((tp[seen] / union[seen]).mean()) if seen.any() else float("nan")


METRICS = {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "macro_f1": macro_f1,
           "miou": mean_iou}
"""Metric name → function of a confusion matrix. Higher is better for every one."""

LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
          "macro_f1": "macro F1", "miou": "mIoU"}
"""Metric name → how tables, reports and listings print it."""


def label(name: str) -> str:
    """How a metric is printed: ``label("miou") == "mIoU"`` (an unknown name as it is)."""
    return LABELS.get(name, name)


def score(name: str, cm: torch.Tensor) -> float:
    """The metric ``name`` of confusion matrix ``cm`` (a clear error for an unknown name)."""
    try:
        return METRICS[name](cm)
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}") from None
