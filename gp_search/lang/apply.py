"""How a loss meets a batch: softmax probabilities, one-hot targets, positions left out, the mean.

A loss is an element-wise expression ``f(y_pred, y_real)`` of the softmax probabilities and the
one-hot target (:func:`prepare`); the training loss is its mean over all elements (batch ×
classes, and the spatial positions of dense outputs), as in the published NGL code. Target
positions holding :data:`IGNORE_INDEX` (255, Pascal VOC's "void") count nowhere: the mean is
then taken over the kept positions × classes (:func:`prepare_masked`, :func:`masked_mean`).
Every loss the package trains (:class:`gp_search.lang.LossExpr`, the reference losses) applies
this one convention.

Example:
    >>> import torch
    >>> p, t, keep = prepare_masked(torch.zeros(1, 2, 2), torch.tensor([[1, IGNORE_INDEX]]))
    >>> p[0, :, 0].tolist(), t[0, :, 0].tolist(), keep.tolist()
    ([0.5, 0.5], [0.0, 1.0], [[True, False]])
    >>> masked_mean(torch.tensor([[[1.0, 9.0], [3.0, 9.0]]]), keep).item()
    2.0
"""

from __future__ import annotations

import torch

IGNORE_INDEX = 255
"""Target class id that every loss leaves out (dense tasks' unlabelled pixels), wherever the
logits have at most 255 classes, so that 255 cannot be a class of its own."""


def prepare(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax probabilities over dim 1 and a float target of the same shape.

    Args:
        logits: ``(N, C)`` or dense ``(N, C, *spatial)``.
        target: integer class indices ``(N,)`` / ``(N, *spatial)``, or one-hot / probabilities
            shaped like ``logits``.

    Raises:
        ValueError: when the shapes do not fit together.
    """
    if logits.dim() < 2:
        raise ValueError(f"logits must be (N, C) or (N, C, ...); got shape {tuple(logits.shape)}")
    p = torch.softmax(logits, dim=1)
    if target.shape == logits.shape and target.is_floating_point():
        return p, target.to(p.dtype)
    if target.is_floating_point() or target.dim() != logits.dim() - 1 or \
            target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"target must be class indices shaped {(logits.shape[0], *logits.shape[2:])} or "
            f"probabilities shaped {tuple(logits.shape)}; got {tuple(target.shape)} "
            f"{target.dtype}")
    onehot = torch.nn.functional.one_hot(target.long(), num_classes=logits.shape[1])
    return p, onehot.movedim(-1, 1).to(p.dtype)


def prepare_masked(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`prepare` that also leaves out the positions whose target is ``ignore_index``.

    Args:
        logits: ``(N, C)`` or dense ``(N, C, *spatial)``.
        target: as for :func:`prepare`; integer entries equal to ``ignore_index`` are ignored
            when ``C <= ignore_index`` (where the id cannot be a class).

    Returns:
        ``(p, t, keep)``: as :func:`prepare` (an ignored position gets a placeholder one-hot of
        class 0), and ``keep``, bool ``(N, *spatial)`` of the positions that count (all of them
        when none is ignored: the masked mean then equals the plain mean bit for bit on CPU,
        tests/lang/test_losses.py), or None for probability targets.
    """
    keep = None
    if not target.is_floating_point() and logits.dim() >= 2 and logits.shape[1] <= ignore_index:
        # Masked whether or not any position is ignored: asking would be a host sync per loss
        # call on a GPU; with none ignored, the masked mean is the plain one bit for bit.
        keep = target != ignore_index
        target = torch.where(keep, target, torch.zeros_like(target))
    p, t = prepare(logits, target)
    return p, t, keep


def masked_mean(values: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``values`` over the kept positions (all of them when ``keep`` is None).

    Args:
        values: per position ``(N, *spatial)``, or per position and class ``(N, C, *spatial)``
            (the mean is then over kept positions × classes).
        keep: bool ``(N, *spatial)`` from :func:`prepare_masked`, or None.

    Returns:
        The scalar mean; NaN when no position is kept (as ``F.cross_entropy`` gives).
    """
    if keep is None:
        return values.mean()
    per_class = values.dim() == keep.dim() + 1
    mask = keep.unsqueeze(1) if per_class else keep
    # where, not a product: an ignored position's value never reaches the sum, even if not finite.
    total = torch.where(mask, values, torch.zeros((), dtype=values.dtype)).sum()
    return total / (keep.sum() * (values.shape[1] if per_class else 1))


__all__ = ["IGNORE_INDEX", "masked_mean", "prepare", "prepare_masked"]
