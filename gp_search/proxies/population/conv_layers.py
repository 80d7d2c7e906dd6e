"""The convolution stack's layer plan and layouts: which CNNs it trains, their channels-last
shapes, the stack's weight layout and the views torch's pooling kernels take.

:func:`plan` reads a model into layers; :func:`stack_weight` and :func:`torch_weight` convert a
weight between torch's layout and the stack's (:mod:`gp_search.proxies.population.conv`);
:func:`to_nchw` and :func:`from_nchw` give an ``(n, B, H, W, C)`` activation to torch's
channels-last max-pooling and back.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gp_search.proxies import models

__all__ = ["from_nchw", "pair", "plan", "stack_weight", "to_nchw", "torch_weight"]


def plan(model: nn.Module) -> list[tuple] | str:
    """The layer plan of a CNN the stack can train, or why it cannot (a sentence).

    Accepted: an ``nn.Sequential`` starting with the models' view to ``(C, L)`` or ``(C, H, W)``,
    then ``Conv1d``/``Conv2d`` (no groups, no dilation, zero padding), ``ReLU``, ``MaxPool2d(2)``,
    ``AdaptiveAvgPool2d(1)``, ``Flatten`` and ``Linear`` layers, ending in logits ``(N, C)``.

    Returns:
        Per layer ``(kind, module, in_shape)``, ``in_shape`` the input of one sample in
        channels-last order ``(H, W, C)`` (or ``(F,)`` once flat); kinds ``conv``, ``relu``,
        ``maxpool``, ``gap``, ``flatten``, ``linear``.
    """
    layers = list(model) if isinstance(model, nn.Sequential) else []
    if not layers or not isinstance(layers[0], models._View) or len(layers[0].shape) not in (2, 3):
        return "not a sequential CNN starting with a view to (C, L) or (C, H, W)"
    shape = layers[0].shape
    hwc = (1, shape[1], shape[0]) if len(shape) == 2 else (shape[1], shape[2], shape[0])
    out: list[tuple] = []
    cur: tuple = hwc
    for m in layers[1:]:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            k, s, p = (pair(m, a) for a in ("kernel_size", "stride", "padding"))
            if len(cur) != 3 or m.groups != 1 or set(pair(m, "dilation")) != {1} or \
                    m.padding_mode != "zeros" or isinstance(m.padding, str) or m.bias is None \
                    or m.in_channels != cur[2]:
                return f"unsupported convolution {m}"
            ho, wo = ((cur[i] + 2 * p[i] - k[i]) // s[i] + 1 for i in range(2))
            out.append(("conv", m, cur))
            cur = (ho, wo, m.out_channels)
        elif isinstance(m, nn.MaxPool2d):
            if len(cur) != 3 or (m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode) \
                    not in ((2, 2, 0, 1, False),) or cur[0] % 2 or cur[1] % 2:
                return f"unsupported pooling {m}"
            out.append(("maxpool", m, cur))
            cur = (cur[0] // 2, cur[1] // 2, cur[2])
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            if len(cur) != 3 or m.output_size not in (1, (1, 1)):
                return f"unsupported pooling {m}"
            out.append(("gap", m, cur))
            cur = (1, 1, cur[2])
        elif isinstance(m, nn.Flatten):
            out.append(("flatten", m, cur))
            cur = (math.prod(cur),)
        elif isinstance(m, nn.ReLU):
            out.append(("relu", m, cur))
        elif isinstance(m, nn.Linear):
            if len(cur) != 1 or m.in_features != cur[0]:
                return f"a linear layer on an unflattened input: {m}"
            out.append(("linear", m, cur))
            cur = (m.out_features,)
        else:
            return f"layer {type(m).__name__} is not in the convolution stack"
    if not out or out[0][0] != "conv" or out[-1][0] != "linear":
        return "the convolution stack needs a convolution first and a linear layer last"
    # ReLU then max-pool = max-pool then ReLU, gradients included (the first maximum of the
    # ReLU outputs is the first maximum of its inputs unless all are <= 0, where both give 0);
    # pooling first makes the ReLU and its backward 4x smaller.
    for i in range(len(out) - 1):
        if out[i][0] == "relu" and out[i + 1][0] == "maxpool":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def pair(m: nn.Module, attr: str) -> tuple[int, int]:
    """``(height, width)`` of a convolution's kernel/stride/padding/dilation (1-D: height 1)."""
    v = getattr(m, attr)
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if isinstance(m, nn.Conv1d):
        return ({"padding": 0}.get(attr, 1), v[0])
    return (v[0], v[-1])


def stack_weight(kind: str, m: nn.Module, in_shape: tuple, flat_from: tuple | None) -> torch.Tensor:
    """Layer weight in the stack's layout: conv ``(kh·kw·C_in, C_out)``, linear ``(in, out)``
    (rows in channels-last order when the input was flattened from ``flat_from = (H, W, C)``)."""
    w = m.weight.detach()
    if kind == "conv":
        w = w.unsqueeze(2) if w.dim() == 3 else w  # (C_out, C_in, kh, kw)
        return w.permute(2, 3, 1, 0).reshape(-1, w.shape[0])
    if flat_from is not None:  # torch flattens (C, H, W); the stack (H, W, C)
        h, wd, c = flat_from
        w = w.view(-1, c, h, wd).permute(0, 2, 3, 1).reshape(w.shape[0], -1)
    return w.t()


def torch_weight(kind: str, m: nn.Module, w: torch.Tensor, flat_from: tuple | None) -> torch.Tensor:
    """The inverse of :func:`stack_weight`: one candidate's weight in torch's shape."""
    if kind == "conv":
        kh, kw = pair(m, "kernel_size")
        w = w.reshape(kh, kw, m.in_channels, -1).permute(3, 2, 0, 1)
        return w.squeeze(2) if isinstance(m, nn.Conv1d) else w
    w = w.t()
    if flat_from is not None:
        h, wd, c = flat_from
        w = w.reshape(-1, h, wd, c).permute(0, 3, 1, 2).reshape(w.shape[0], -1)
    return w


def to_nchw(a: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """An ``(n, B, H, W, C)`` activation as a channels-last NCHW tensor for torch's pooling:
    ``(B, n·C, H, W)`` when it lies ``(B, H, W, n, C)`` in memory (or ``like`` does), else
    ``(n·B, C, H, W)``."""
    n, b, h, w, c = a.shape
    shared = a.permute(1, 2, 3, 0, 4).is_contiguous() if like is None else like.shape[0] == b and \
        like.shape[1] == n * c
    if shared:
        return a.permute(1, 2, 3, 0, 4).reshape(b, h, w, n * c).permute(0, 3, 1, 2)
    return a.reshape(n * b, h, w, c).permute(0, 3, 1, 2)


def from_nchw(t: torch.Tensor, a: torch.Tensor, lead_first: bool | None = None) -> torch.Tensor:
    """The inverse of :func:`to_nchw` for a pooled tensor ``t``, given the activation ``a``."""
    n, b, c = a.shape[0], a.shape[1], a.shape[4]
    h, w = t.shape[2], t.shape[3]
    nhwc = t.permute(0, 2, 3, 1)
    shared = t.shape[0] == b and t.shape[1] == n * c if lead_first is None else not lead_first
    if shared:
        return nhwc.reshape(b, h, w, n, c).permute(3, 0, 1, 2, 4)
    return nhwc.reshape(n, b, h, w, c)
