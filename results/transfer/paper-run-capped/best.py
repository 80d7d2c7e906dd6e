r"""best_loss: a loss function exported by gp-search 0.1.0.

Loss = s × mean over all elements of f(p, t), p = softmax(logits) over dim 1,
t = one-hot target (or the given probabilities), where

    f(p, t) = y_real*sin(cos(1.1081*y_pred + cos(y_pred) + 1.47004782279039))

Scale s = 341.1590534866543: s gives the loss cross-entropy's logit-gradient norm
(median over K in (2, 10, 100) of ||grad CE|| / ||grad f|| on 256 rows of N(0, 1) logits),
so under SGD it takes CE's learning rate; under Adam s changes nothing.

LaTeX: t \sin{\left(\cos{\left(1.1081 p + \cos{\left(p \right)} + 1.47005 \right)} \right)}

Tree: mul(sin(cos(sub(add(mul(sin(0.5927), sin(1)), add(1, cos(y_pred))), mul(-1.1081, y_pred)))), y_real)
Source: gp-search run 20261202-125555-paper-s0, search fitness -0.0032 (n = 2 seeds) on s-synthetic-noisy-mlp, s-digits-half-mlp, s-synthetic100-mlp, s-digits-half-mlp-sgd, s-mnist1d-mod3-cnn, s-mnist1d-cnn, s-digits-cnn-sgd; WARNING: every loss of the hall of fame's top is worse than CE beyond its paired 95 % CI on some held-out task; the least bad is #2, worse on 2 task(s) on the held-out suite 'transfer': mean change vs CE -0.7 points, worst task t-tabular20-mlp (-5.3). Do not use it as a drop-in for CE.
"""

import torch


def best_loss(logits, target):
    """341.1590534866543 × mean over all elements of f(p, t); target: class indices or one-hot."""
    p = torch.softmax(logits, dim=1)
    if target.shape == logits.shape and target.is_floating_point():
        t = target.to(p.dtype)
    else:
        t = torch.nn.functional.one_hot(target.long(), logits.shape[1]).movedim(-1, 1).to(p.dtype)
    return 341.1590534866543 * (torch.zeros_like(p) + (t * torch.sin(torch.cos((1.470047822790387 + torch.cos(p) + (1.1081 * p)))))).mean()


class BestLoss(torch.nn.Module):
    """``best_loss`` as a module."""

    def forward(self, logits, target):
        return best_loss(logits, target)
