r"""best_loss: a loss function exported by gp-search 0.2.0.

Loss = s × mean over all elements of f(p, t), p = softmax(logits) over dim 1,
t = one-hot target (or the given probabilities); positions whose target is
255 count nowhere when there are at most 255 classes; where

    f(p, t) = sin(y_pred - y_real - cos(y_real) + 0.715300243237636)

Scale s = 489.6731764912054: s gives the loss cross-entropy's logit-gradient norm
(median over K in (2, 10, 100) of ||grad CE|| / ||grad f|| on 256 rows of N(0, 1) logits),
so under SGD it takes CE's learning rate; under Adam s changes nothing.

LaTeX: \sin{\left(p - t - \cos{\left(t \right)} + 0.7153 \right)}

Tree: sin(sub(sub(cos(1), cos(1.7467)), sub(cos(y_real), sub(y_pred, y_real))))
Source: gp-search run 20261206-112510-paper-s1, search fitness 0.0059 (n = 2 seeds) on
s-synthetic-noisy-mlp, s-digits-half-mlp, s-synthetic100-mlp, s-digits-half-mlp-sgd,
s-mnist1d-mod3-cnn, s-mnist1d-cnn, s-digits-cnn-sgd; hall of fame #2, picked on the
selection suite 'transfer-select' although every candidate was below CE on some selection
task (the least bad); on the report suite 'transfer-report' (used for no choice): mean
change vs CE +0.9 points, worst task t-tabular20-mlp (-1.9), below CE on no task; transfer
rate: 2 of the top 5 are below CE on no report task; calibration on 'transfer-report' (mean
over tasks): ECE 0.275 against CE's 0.062; the model it trains is under-confident (fitted
temperature T = 0.454); dividing the logits by T (temperature scaling, fitted by NLL on a
validation split) brings the ECE to 0.029 (CE's: 0.031) without changing any prediction
"""

import torch

IGNORE = 255  # target id that counts nowhere (e.g. Pascal VOC's void)


def best_loss(logits, target):
    """489.6731764912054 × mean of f(p, t) over all elements; target: class indices (positions
    labelled IGNORE left out when there are at most IGNORE classes), or one-hot or
    probability targets (mixup, label smoothing) shaped like the logits."""
    p = torch.softmax(logits, dim=1)
    keep = None
    if target.shape == logits.shape and target.is_floating_point():
        t = target.to(p.dtype)
    else:
        target = target.long()
        if logits.shape[1] <= IGNORE and bool((target == IGNORE).any()):
            keep = target != IGNORE
            target = torch.where(keep, target, torch.zeros_like(target))
        t = torch.nn.functional.one_hot(target, logits.shape[1]).movedim(-1, 1).to(p.dtype)
    values = torch.zeros_like(p) + torch.sin((0.7153002432376362 + p + (-1.0 * t) + (-1.0 * torch.cos(t))))
    if keep is None:
        return 489.6731764912054 * values.mean()
    return 489.6731764912054 * torch.where(keep.unsqueeze(1).expand_as(values), values, 0.0).sum() / (keep.sum() * values.shape[1])


class BestLoss(torch.nn.Module):
    """``best_loss`` as a module."""

    def forward(self, logits, target):
        return best_loss(logits, target)
