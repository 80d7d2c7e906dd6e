r"""best_loss: a loss function exported by gp-search 0.2.0.

Loss = s × mean over all elements of f(p, t), p = softmax(logits) over dim 1,
t = one-hot target (or the given probabilities); positions whose target is
255 count nowhere when there are at most 255 classes; where

    f(p, t) = 5.37843082178504*exp(-3*y_pred + y_real + exp(y_real) - sin(y_real) + cos(y_pred + 1))

Scale s = 0.3078751394877902: s gives the loss cross-entropy's logit-gradient norm
(median over K in (2, 10, 100) of ||grad CE|| / ||grad f|| on 256 rows of N(0, 1) logits),
so under SGD it takes CE's learning rate; under Adam s changes nothing.

LaTeX: 5.37843 e^{- 3 p + t + e^{t} - \sin{\left(t \right)} + \cos{\left(p + 1 \right)}}

Tree: exp(add(sub(cos(add(1, y_pred)), add(sin(y_real), sub(y_pred, 1))), add(exp(y_real), add(sub(cos(add(1, 1.9623)), add(mul(1, 1), sub(y_pred, 1))), add(cos(sin(1)), sub(y_real, sub(y_pred, 1)))))))
Source: gp-search run 20261206-103907-paper-s0, search fitness -0.0096 (n = 2 seeds) on
s-synthetic-noisy-mlp, s-digits-half-mlp, s-synthetic100-mlp, s-digits-half-mlp-sgd,
s-mnist1d-mod3-cnn, s-mnist1d-cnn, s-digits-cnn-sgd; WARNING: hall of fame #4, picked on the
selection suite 'transfer-select'; on the report suite 'transfer-report' (used for no
choice): mean change vs CE +0.7 points, worst task t-tabular20-mlp (-0.8), below CE on 1
task(s); transfer rate: 1 of the top 5 are below CE on no report task. Do not use it as a
drop-in for CE.; calibration on 'transfer-report' (mean over tasks): ECE 0.337 against CE's
0.062; the model it trains is under-confident (fitted temperature T = 0.354); dividing the
logits by T (temperature scaling, fitted by NLL on a validation split) brings the ECE to
0.027 (CE's: 0.031) without changing any prediction
"""

import torch

IGNORE = 255  # target id that counts nowhere (e.g. Pascal VOC's void)


def best_loss(logits, target):
    """0.3078751394877902 × mean of f(p, t) over all elements; target: class indices (positions
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
    values = torch.zeros_like(p) + (5.37843082178504 * torch.exp((t + torch.exp(t) + (-3.0 * p) + (-1.0 * torch.sin(t)) + torch.cos((1.0 + p)))))
    if keep is None:
        return 0.3078751394877902 * values.mean()
    return 0.3078751394877902 * torch.where(keep.unsqueeze(1).expand_as(values), values, 0.0).sum() / (keep.sum() * values.shape[1])


class BestLoss(torch.nn.Module):
    """``best_loss`` as a module."""

    def forward(self, logits, target):
        return best_loss(logits, target)
