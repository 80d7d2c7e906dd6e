"""The hand-written population path for small CNNs: P candidates' convolutions as batched GEMMs.

:func:`gp_search.proxies.population.choose.train_population` uses it on the CPU for the ``cnn1d``
and ``cnn2d`` models (and any ``nn.Sequential`` made of the same layers: the layer plan and the
layouts are :mod:`gp_search.proxies.population.conv_layers`'s). For one
seed, P copies of the proxy's CNN (same initial weights and batch order as the sequential
:func:`gp_search.proxies.train.train_one`) train together, each with its own loss:

* **Channels last, im2col, GEMM.** A 1-D convolution is a 2-D one of height 1. The first
  convolution's input is the batch every candidate shares: its columns are gathered once and its
  forward is ONE ``mm`` ``(B·H·W, k·k·C_in) × (k·k·C_in, P·C_out)`` (the P kernels side by side),
  its weight gradient one ``mm`` the other way (its input gradient is never needed). Every later
  convolution gathers its candidate's columns from a zero-padded channels-last buffer (one strided
  copy) and is one ``bmm`` over the P candidates; its input gradient is one ``bmm`` and ``k·k``
  strided adds (col2im). Max-pooling is torch's channels-last kernel (with its indices, so ties
  break as in ``train_one``); global average pooling and the linear head are written out. Forward
  and backward are by hand, into buffers kept across steps (no autograd graph).
* **Losses, optimiser, checks** as the MLP stack (:mod:`gp_search.proxies.population.mlp`): one
  :class:`~gp_search.proxies.population.programs.LossProgram` for the expressions, ``loss.fn`` per
  candidate for the references, ``loss.l2`` on the weights; Adam by the fused kernel over one flat
  buffer, or SGD with momentum ``train.SGD_MOMENTUM`` and each expression loss times its scale,
  as ``train_one``. No operation mixes candidates.

Why by hand: on this 2-core CPU (one thread) ``train_one`` spends ~80 % of a ``mnist1d-cnn`` step
in oneDNN's convolution and its backward (1.2 ms per backward call for a 30k multiply-add layer),
and the ``torch.func`` stack turns P convolutions into one grouped convolution whose backward is
slower still (1.00-1.32x one at a time through ``gp-search evaluate``, issue 21). The speed table
is in ``benchmarks/README.md`` (``benchmarks/bench_conv_paths.py``).

Results equal ``train_one``'s to rounding (``tests/proxies/population/test_conv.py``: parameters
within 1e-5 after a few steps, Adam and SGD, 1-D and 2-D); a candidate's result does not depend
on the others in its stack (``tests/proxies/population/test_neighbours.py``).
"""

from __future__ import annotations

import math

import torch

from gp_search.proxies import metrics, train
from gp_search.proxies.spec import TrainPath
from gp_search.proxies.population.conv_layers import (from_nchw, pair, plan, stack_weight, to_nchw,
                                                      torch_weight)
from gp_search.proxies.population.loop import begin, fn_grad
from gp_search.proxies.population.mlp import FlatStack, flat

class ConvPopulation(FlatStack):
    """The stacked state of one convolution-stack training: flat parameters, optimiser state,
    histories, buffers. Args as :class:`~gp_search.proxies.population.func.FuncPopulation`."""

    path = TrainPath.CONV_STACK
    first_weight_dim = 1  # the first layer's kernels lie side by side: (K, n, C_out)

    def __init__(self, spec, losses, seed, budget, dev, model, scales=None):
        begin(self, spec, losses, seed, budget, dev, scales)
        layers = plan(model)
        if isinstance(layers, str):
            raise ValueError(layers)
        self.layers = layers
        n = len(losses)
        self.view = model[0].shape
        parts, self.wshapes, flat_from = [], [], None
        for i, (kind, m, shape) in enumerate(layers):
            if kind == "flatten" and len(shape) == 3 and shape[:2] != (1, 1):
                flat_from = shape
            if kind not in ("conv", "linear"):
                continue
            w = stack_weight(kind, m, shape, flat_from if kind == "linear" else None).to(dev)
            b = m.bias.detach().to(dev)
            flat_from = None
            # The first layer's kernels lie side by side, (K, P, C_out): one wide GEMM.
            parts.append(w.unsqueeze(1).expand(-1, n, -1) if i == 0 else w.expand(n, -1, -1))
            parts.append(b.expand(n, -1))
            self.wshapes.append(tuple(w.shape))
        init = flat(parts)
        self._set_state(init, torch.zeros_like(init), torch.zeros_like(init))
        self.step_t = torch.zeros((), dtype=torch.float32, device=dev)
        self.t = torch.nn.functional.one_hot(self.y, self.ds.num_classes).float()  # (steps, B, C)
        self._bufs: dict = {}
        self._compile()

    # -- state -----------------------------------------------------------------------------------
    def _views(self, buf: torch.Tensor, n: int) -> tuple[list, list]:
        """Weight and bias views of a flat buffer: first ``(K, n, C_out)``, then ``(n, K, out)``;
        biases ``(n, out)``."""
        ws, bs, off = [], [], 0
        for i, (k, o) in enumerate(self.wshapes):
            ws.append(buf[off:off + n * k * o].view((k, n, o) if i == 0 else (n, k, o)))
            off += n * k * o
            bs.append(buf[off:off + n * o].view(n, o))
            off += n * o
        return ws, bs

    def _buf(self, name: str, shape: tuple, keep: bool) -> torch.Tensor:
        """A buffer kept across training steps (``keep``), else a fresh one; padding buffers are
        zeroed once and only their interior is ever written."""
        if not keep:
            return torch.zeros(shape, device=self.dev)
        if name not in self._bufs or self._bufs[name].shape != shape:
            self._bufs[name] = torch.zeros(shape, device=self.dev)
        return self._bufs[name]

    # -- forward and backward ------------------------------------------------------------------
    def _images(self, x: torch.Tensor) -> torch.Tensor:
        """Samples as channels-last images ``(B, H, W, C)``."""
        shape = self.view
        x = x.reshape(x.shape[0], *shape)
        return x.unsqueeze(2).permute(0, 2, 3, 1) if len(shape) == 2 else x.permute(0, 2, 3, 1)

    def _forward(self, x: torch.Tensor, keep: bool = False):
        """Logits ``(n, B, classes)`` for input ``x`` and, per layer, what the backward needs.

        Activations are ``(n, B, H, W, C)`` views (the first convolution's output lies
        ``(B, H, W, n, C)`` in memory), then ``(n, B, F)``.
        """
        n, a, saved, li = self.n, self._images(x), [], 0
        for i, (kind, m, shape) in enumerate(self.layers):
            if kind == "conv":
                a, ctx = self._conv(i, li, m, shape, a, keep)
                li += 1
            elif kind == "relu":
                a = a.relu_()
                ctx = a
            elif kind == "maxpool":
                nchw = to_nchw(a)
                out, idx = torch.ops.aten.max_pool2d_with_indices(nchw, [2, 2], [2, 2], [0, 0],
                                                                  [1, 1], False)
                ctx, a = (nchw, idx), from_nchw(out, a)
            elif kind == "gap":
                ctx, a = shape, a.mean((2, 3))
            elif kind == "flatten":
                ctx, a = shape, a.reshape(n, a.shape[1], -1) if a.dim() == 5 else a
            else:  # linear
                ctx = a
                a = torch.baddbmm(self.b[li].unsqueeze(1), a, self.W[li])
                li += 1
            saved.append(ctx)
        return a, saved

    def _conv(self, i, li, m, shape, a, keep):
        """One convolution's forward: ``(output, columns)``."""
        (kh, kw), (sh, sw), (ph, pw) = (pair(m, x) for x in ("kernel_size", "stride", "padding"))
        h, w, c = shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        bsz, n, o = a.shape[0] if i == 0 else a.shape[1], self.n, m.out_channels
        lead = (bsz,) if i == 0 else (n, bsz)
        pad = self._buf(f"pad{i}", (*lead, h + 2 * ph, w + 2 * pw, c), keep)
        pad[..., ph:ph + h, pw:pw + w, :].copy_(a)
        st = pad.stride()
        src = pad.as_strided((*lead, ho, wo, kh, kw, c),
                             (*st[:-3], sh * st[-3], sw * st[-2], st[-3], st[-2], 1))
        cols = self._buf(f"cols{i}", (*lead, ho * wo, kh * kw * c), keep)
        cols.view(*lead, ho, wo, kh, kw, c).copy_(src)
        if i == 0:  # shared input: one GEMM with the n kernels side by side
            cols = cols.view(bsz * ho * wo, -1)
            z = torch.addmm(self.b[li].reshape(1, -1), cols, self.W[li].reshape(cols.shape[1], -1))
            return z.view(bsz, ho, wo, n, o).permute(3, 0, 1, 2, 4), cols
        cols = cols.view(n, bsz * ho * wo, -1)
        z = torch.baddbmm(self.b[li].unsqueeze(1), cols, self.W[li])
        return z.view(n, bsz, ho, wo, o), cols

    def _backward(self, g: torch.Tensor, saved: list) -> None:
        """Every gradient into ``self.grad`` from the logit gradient ``g (n, B, classes)``."""
        li = len(self.wshapes)
        for i in range(len(self.layers) - 1, -1, -1):
            kind, m, shape = self.layers[i]
            ctx = saved[i]
            if kind == "linear":
                li -= 1
                torch.bmm(ctx.transpose(1, 2), g, out=self.gW[li])
                torch.sum(g, 1, out=self.gb[li])
                g = torch.bmm(g, self.W[li].transpose(1, 2))
            elif kind == "flatten":
                g = g.view(*g.shape[:2], *ctx) if len(ctx) == 3 else g
            elif kind == "gap":
                h, w, c = ctx
                g = (g / (h * w)).view(*g.shape[:2], 1, 1, c).expand(*g.shape[:2], h, w, c)
            elif kind == "relu":
                g = torch.ops.aten.threshold_backward(g, ctx, 0.0)
            elif kind == "maxpool":
                nchw, idx = ctx
                out = torch.ops.aten.max_pool2d_with_indices_backward(
                    to_nchw(g, like=nchw), nchw, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)
                g = from_nchw(out, g, lead_first=nchw.shape[0] != g.shape[1])
            else:  # conv
                li -= 1
                g = self._conv_backward(i, li, m, shape, ctx, g)

    def _conv_backward(self, i, li, m, shape, cols, g):
        """Weight and bias gradients of a convolution, and (not the first) its input gradient."""
        n, o = self.n, m.out_channels
        if i == 0:
            d = g.permute(1, 2, 3, 0, 4).reshape(-1, n * o)  # (B·H·W, n·C_out), as the output
            torch.mm(cols.t(), d, out=self.gW[li].view(cols.shape[1], n * o))
            torch.sum(d.view(-1, n, o), 0, out=self.gb[li])
            return None
        (kh, kw), (sh, sw), (ph, pw) = (pair(m, x) for x in ("kernel_size", "stride", "padding"))
        h, w, c = shape
        bsz = g.shape[1]
        ho, wo = g.shape[2], g.shape[3]
        d = g.reshape(n, -1, o)
        torch.bmm(cols.transpose(1, 2), d, out=self.gW[li])
        torch.sum(d, 1, out=self.gb[li])
        qh, qw = kh - 1 - ph, kw - 1 - pw
        if (sh, sw) == (1, 1) and qh >= 0 and qw >= 0:
            # Stride 1: the input gradient is the convolution of the padded output gradient
            # with the flipped kernels, one im2col and one bmm (no strided adds: 20 % faster on
            # digits-cnn's second layer).
            dp = self._buf(f"dpad{i}", (n, bsz, ho + 2 * qh, wo + 2 * qw, o), True)
            dp[:, :, qh:qh + ho, qw:qw + wo].copy_(g)
            st = dp.stride()
            dcols = self._buf(f"dcols{i}", (n, bsz * h * w, kh * kw * o), True)
            dcols.view(n, bsz, h, w, kh, kw, o).copy_(dp.as_strided(
                (n, bsz, h, w, kh, kw, o), (st[0], st[1], st[2], st[3], st[2], st[3], 1)))
            flipped = self.W[li].view(n, kh, kw, c, o).flip(1, 2).permute(0, 1, 2, 4, 3)
            return torch.bmm(dcols, flipped.reshape(n, -1, c)).view(n, bsz, h, w, c)
        dcols = torch.bmm(d, self.W[li].transpose(1, 2), out=self._buf(
            f"dcols{i}", tuple(cols.shape), True)).view(n, bsz, ho, wo, kh, kw, c)
        dpad = self._buf(f"dpad{i}", (n, bsz, h + 2 * ph, w + 2 * pw, c), True).zero_()
        for r in range(kh):
            for s in range(kw):
                dpad[:, :, r:r + sh * (ho - 1) + 1:sh, s:s + sw * (wo - 1) + 1:sw].add_(
                    dcols[:, :, :, :, r, s])
        return dpad[:, :, ph:ph + h, pw:pw + w]

    def _loss_grad(self, logits: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-candidate loss ``(n,)`` and its gradient w.r.t. the logits ``(n, B, classes)``."""
        y, t = self.y[step], self.t[step]
        p = torch.softmax(logits, dim=2)
        if self.program is not None and self.expr_idx is None:
            value = self.program.losses(p, t)
            return value, torch._softmax_backward_data(self.program.backward(), p, 2, p.dtype)
        value = torch.empty(self.n, dtype=p.dtype, device=p.device)
        dlogits = torch.empty_like(logits)
        if self.program is not None:
            pe = p.index_select(0, self.expr_idx)
            value.index_copy_(0, self.expr_idx, self.program.losses(pe, t))
            dlogits.index_copy_(0, self.expr_idx, torch._softmax_backward_data(
                self.program.backward(), pe, 2, p.dtype))
        for s in self.fn_slots:
            got = fn_grad(self.losses[int(self.alive[s])], logits[s], y)
            value[s], dlogits[s] = (math.nan, 0.0) if got is None else got
        return value, dlogits

    @torch.no_grad()
    def step(self, step: int) -> None:
        """One optimiser step of every live candidate (no host sync)."""
        x = self.ds.x_train.index_select(0, self.batches[step])
        logits, saved = self._forward(x, keep=True)
        value, g = self._loss_grad(logits, step)
        if self.scaled:  # SGD: the loss times its scale, as train_one
            value, g = value * self.scale, g * self.scale.view(-1, 1, 1)
        self.grad_hist[step].index_copy_(0, self.hist_cols, g.sum((1, 2)))
        self._backward(g, saved)
        self.loss_hist[step].index_copy_(0, self.hist_cols, self._l2(value))
        self._update()

    # -- checks, evaluation ------------------------------------------------------------------------
    def param_max(self) -> torch.Tensor:
        """Largest parameter magnitude of each live slot, ``(n,)``."""
        maxes = [self.W[0].abs().amax((0, 2))]
        maxes += [t.reshape(self.n, -1).abs().amax(1) for t in (*self.W[1:], *self.b)]
        return torch.stack(maxes).amax(0)

    @torch.no_grad()
    def scores(self) -> list[tuple[float, dict]]:
        """``spec.metric`` of each live slot on the held-out split (one confusion matrix each)
        and its calibration figures (``train.calibrates``; else none)."""
        x, y, classes = self.ds.x_test, self.ds.y_test, self.ds.num_classes
        chunk = max(1, min(self.spec.eval_batch, self.spec.batch_size))
        kept = [] if train.calibrates(self.spec, self.ds) else None
        cms = metrics.chunked_confusion(lambda xb: self._forward(xb)[0], x, y, classes, chunk,
                                        population=self.n, kept=kept)
        return train.slot_scores(self.spec, cms, kept, y)

    def parameters(self, slot: int, grad: bool = False) -> list[torch.Tensor]:
        """Slot ``slot``'s parameters (``grad``: their gradients of the last step) in
        ``model.parameters()`` order and shapes (for tests and inspection)."""
        ws, bs = (self.gW, self.gb) if grad else (self.W, self.b)
        out, li, flat_from = [], 0, None
        for i, (kind, m, shape) in enumerate(self.layers):
            if kind == "flatten" and len(shape) == 3 and shape[:2] != (1, 1):
                flat_from = shape
            if kind not in ("conv", "linear"):
                continue
            w = ws[li][:, slot] if li == 0 else ws[li][slot]
            out.append(torch_weight(kind, m, w, flat_from))
            flat_from = None
            out.append(bs[li][slot])
            li += 1
        return out
