"""The hand-written population path for MLPs: P candidates' MLPs in one flat stacked buffer.

:func:`gp_search.proxies.population.choose.train_population` uses it for ``mlp`` models trained with Adam.
For one seed, P copies of the proxy's MLP (same initial weights, same batch order as the
sequential :func:`gp_search.proxies.train.train_one`) are trained together, each with its own loss:

* **Stacked parameters** in ONE flat buffer (layer by layer, candidate-major), viewed as
  ``W_l: (P, out, in)`` and ``b_l: (P, out)``. Activations are kept transposed, ``(P, features,
  batch)``, so every product is a plain contiguous GEMM: the first layer's input is shared by all
  candidates, so its forward is ONE ``mm`` ``(P·hidden, in) × (in, B)`` and its weight gradient
  one ``mm`` (its input gradient is never needed); the other layers are ``bmm``. Forward and
  backward are written by hand (no autograd graph), into buffers kept across steps.
* **Losses**: candidates with an expression go through one :class:`~gp_search.proxies.population.programs.
  LossProgram` (softmax and one-hot targets once for the whole ``(P, C, B)`` stack, one tensor
  operation per (tree level, operator)); reference losses without one (``ce``, ``focal``, …) are
  called per candidate on their slice with autograd. ``loss.l2`` adds ``λ/2·Σ‖W‖²`` per candidate.
* **One fused Adam step** over the flat buffer: ``torch._fused_adam_``, the kernel behind
  ``torch.optim.Adam(fused=True)`` (same math as the default ``Adam``: bias corrections, ``eps``
  outside the square root; equal to it to 1 ulp, ``tests/proxies/population/test_batched.py``), one pass over memory
  instead of the seven of a step written with tensor operations: 0.40 ms against 5.8 ms per step
  for the 1.23 M parameters of 128 ``digits-mlp`` candidates (one thread, best of 50). Every
  torch this project supports (the pin is 2.13) has the kernel on CPU and CUDA.
* **Isolation**: no operation mixes candidates, so a NaN stays in its own slice; the checks,
  time limit and results are :func:`gp_search.proxies.population.loop.run`'s.
* **Scores**: ``spec.metric`` from one confusion matrix per candidate (:mod:`~gp_search.proxies.
  metrics`), as ``train.held_out_score``.

Why by hand, not ``torch.func``: the library way to train a population,
``torch.func.stack_module_state`` + ``vmap(functional_call)`` with autograd and
``torch.optim.Adam(fused=True)`` on the stacked tensors, fed by the same loss program
(``benchmarks/bench_mlp_paths.py`` path (f)), was slower on ``digits-mlp``, one thread, same
candidates, steps and seed, rounds alternating, under a load average of 6-11: this path ran
2.00x its speed at P = 32 (per-round median, range 1.96-2.04, n = 2 rounds; best 10.5 against
5.4 cand/s) and 1.61x at P = 128 (range 1.18-3.19, n = 4 rounds; best 29.3 against 12.9 cand/s),
with test accuracies equal to one test image (``--paths c,f --threads 1 --candidates 32
--repeat 2``, then ``--candidates 128 --repeat 4``; at load 10-11, P = 128: 1.36x, 0.67-2.05).

Results equal ``train_one``'s to rounding (parameters and losses within 1e-5 after 5 steps,
``tests/proxies/population/test_batched.py``). The general path
(:mod:`gp_search.proxies.population.func`) covers every other model and SGD.

Against one-at-a-time training, measured on this 2-core CPU (AMD EPYC, AVX-512, torch 2.13)
with one torch thread (as ``Proxy.evaluate_many`` trains), candidates per second over 100 steps,
best of 3 runs of 4 sequential / P batched candidates (NGL + random ``paper`` trees), while other
jobs kept the load average at 5-7 — ratios matter more than rates::

    MLP (batch)                  sequential  P = 2        P = 8         P = 32
    digits 64-128-10 (64)          16.8      57.1 (3.4x)  96.3 (5.7x)  128.7 (7.6x)
    synthetic 32-64-10 (64)        19.3      67.3 (3.5x) 162.7 (8.4x)  246.9 (12.8x)
    mnist1d 40-128-10 (128)        16.5      38.5 (2.3x)  75.6 (4.6x)   72.3 (4.4x)
    digits 64-256-256-10 (64)       7.0      14.2 (2.0x)  18.0 (2.6x)   19.4 (2.8x)
    digits 64-512-512-10 (64)    2.3-3.2     0.9-1.7x     0.9-1.3x      1.1-1.7x   (two runs)

Two candidates already pay for small MLPs; at ~300k parameters per candidate each candidate's
own products are large enough that stacking gains nothing beyond noise (the rule is
:func:`gp_search.proxies.population.choose.pays_off`'s). Larger CPU populations are split into chunks of at
most :data:`CPU_MAX_STACK` stacked parameters (cache).
"""

from __future__ import annotations

import itertools
import math

import torch

from gp_search.proxies import metrics, models, train
from gp_search.proxies.spec import ProxySpec, TrainPath
from gp_search.proxies.population.programs import split
from gp_search.proxies.population.loop import begin, fn_grad

CPU_MAX_STACK = 1 << 20
"""Stacked parameters per chunk on CPU (1 Mi floats: 16 MiB with the gradient and Adam's moments,
half the 32 MiB L3 cache): larger populations train in balanced chunks, with the same results.
128 ``digits-mlp`` candidates (one thread, best of 3, under a load average of ~9.5) ran at
26.8 cand/s in one stack, 30.1 in chunks of 64, 31.0 in chunks of 32, 29.4 in chunks of 16."""


FLAT_ALIGN = 64
"""The flat buffers' length is padded (with zeros) to a multiple of this many floats: the fused
Adam kernel on CPU updates a buffer's last ``length mod vector width`` floats by a scalar loop whose
rounding differs from its vector loop's, so without the padding which of a candidate's parameters
fell in that tail, and so its result, depended on how many candidates shared the stack
(``tests/proxies/population/test_neighbours.py``). 64 covers every SIMD width and the kernel's cache-line work units."""


def flat(parts: list[torch.Tensor]) -> torch.Tensor:
    """The 1-D concatenation of ``parts``, zero-padded to a multiple of :data:`FLAT_ALIGN`."""
    out = torch.cat([t.reshape(-1) for t in parts])
    return torch.nn.functional.pad(out, (0, -len(out) % FLAT_ALIGN))


def layer_shapes(spec: ProxySpec, ds) -> list[tuple[int, int]]:
    """(in, out) of each linear layer of the proxy's MLP."""
    hidden = tuple(dict(spec.model_kw).get("hidden", (128,)))
    widths = [math.prod(ds.input_shape), *hidden, ds.num_classes]
    return list(itertools.pairwise(widths))


def params(spec: ProxySpec) -> int:
    """Parameters of one candidate's MLP (weights and biases)."""
    return sum(o * (i + 1) for i, o in layer_shapes(spec, train.dataset_for(spec)))


def adam_step(theta, grad, m, v, step_t: torch.Tensor, lr: float) -> None:
    """One ``torch.optim.Adam`` step (defaults: betas 0.9, 0.999, eps 1e-8) over flat tensors, in
    place, by the fused kernel; ``step_t`` is the step count after this step (a 0-d tensor)."""
    torch._fused_adam_([theta], [grad], [m], [v], [], [step_t], lr=lr, beta1=0.9, beta2=0.999,
                       weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)


class FlatStack:
    """What the hand-written stacks share: parameters, gradients and optimiser moments in flat
    buffers viewed per layer (``_views``, with the candidates along dimension 0 of every view but
    the first weight's, which lies along :attr:`first_weight_dim`), slots dropped by ``keep``, and
    the live slots' losses split between the program and ``loss.fn`` (``_compile``)."""

    first_weight_dim = 0

    def _set_state(self, theta, m, v):
        self.theta, self.m, self.v = theta, m, v
        self.grad = torch.zeros_like(theta)  # the padding's gradient stays 0 (so does its Adam)
        self.n = len(self.alive)
        self.W, self.b = self._views(theta, self.n)
        self.gW, self.gb = self._views(self.grad, self.n)

    def keep(self, keep: torch.Tensor) -> None:
        """Drop every slot not in ``keep`` (slot indices) from the stacked state."""
        idx = keep.to(self.dev)
        parts = []
        for buf in (self.theta, self.m, self.v):
            ws, bs = self._views(buf, self.n)
            views = [t for pair in zip(ws, bs) for t in pair]  # W_0, b_0, W_1, b_1, …
            parts.append(flat([t.index_select(self.first_weight_dim if k == 0 else 0, idx)
                               for k, t in enumerate(views)]))
        self.alive = self.alive[keep]
        self.lam, self.scale = self.lam.index_select(0, idx), self.scale.index_select(0, idx)
        self._set_state(*parts)
        self._compile()

    def _l2(self, value: torch.Tensor) -> torch.Tensor:
        """``value`` plus ``λ/2·Σ‖W‖²`` for the slots whose loss asks (``loss.l2``), whose
        weight gradients get ``λ·W`` (biases are not penalised, as in ``train_one``)."""
        if not len(self.l2_slots):
            return value
        value, lam = value.clone(), self.lam.index_select(0, self.l2_slots)
        for k, (w, gw) in enumerate(zip(self.W, self.gW)):
            dim = self.first_weight_dim if k == 0 else 0
            ws = w.index_select(dim, self.l2_slots)
            per = lam.view([-1 if d == dim else 1 for d in range(ws.dim())])
            value.index_add_(0, self.l2_slots, lam / 2 * ws.square().sum(
                [d for d in range(ws.dim()) if d != dim]))
            gw.index_add_(dim, self.l2_slots, ws * per)
        return value

    def _update(self) -> None:
        """One optimiser step over the flat buffers: fused Adam, or SGD with momentum
        ``train.SGD_MOMENTUM`` (``torch.optim.SGD``'s update, element-wise)."""
        if self.spec.optimizer == "sgd":
            self.m.mul_(train.SGD_MOMENTUM).add_(self.grad)
            self.theta.sub_(self.m, alpha=self.spec.lr)
        else:
            self.step_t += 1
            adam_step(self.theta, self.grad, self.m, self.v, self.step_t, self.spec.lr)

    def _compile(self) -> None:
        """Split the live slots into the expression program and per-candidate reference fns."""
        self.program, self.expr_idx, self.fn_slots = split(
            [self.losses[int(c)] for c in self.alive], self.dev)
        self.l2_slots = torch.nonzero(self.lam > 0).flatten()
        self.scaled = bool((self.scale != 1).any())
        self.hist_cols = self.alive.to(self.dev)


class MlpPopulation(FlatStack):
    """The stacked state of one batched training: flat parameters, Adam moments, histories."""

    path = TrainPath.MLP_STACK

    def __init__(self, spec, losses, seed, budget, dev, bf16):
        begin(self, spec, losses, seed, budget, dev)
        self.bf16, ds = bf16, self.ds
        self.shapes = layer_shapes(spec, ds)
        model = models.build(spec.model, ds.input_shape, ds.num_classes, seed,
                             **dict(spec.model_kw))
        linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        if [(m.in_features, m.out_features) for m in linear] != self.shapes:
            raise ValueError(f"expected an MLP with layers {self.shapes}, got {model}")
        n = len(losses)
        init = flat([t.detach().reshape(1, -1).expand(n, -1)
                     for m in linear for t in (m.weight, m.bias)]).to(dev)
        self._set_state(init, torch.zeros_like(init), torch.zeros_like(init))
        self.step_t = torch.zeros((), dtype=torch.float32, device=dev)
        self.x = ds.x_train.reshape(ds.n_train, -1)
        # One-hot targets of every step, made once, transposed like the logits: (steps, C, B).
        self.t = torch.nn.functional.one_hot(self.y, ds.num_classes).transpose(1, 2).float()
        self._bufs: dict = {}
        self._compile()

    # -- state -----------------------------------------------------------------------------------
    def _views(self, buf: torch.Tensor, n: int) -> tuple[list, list]:
        """``W_l (n, out, in)`` and ``b_l (n, out)`` views of a flat buffer laid out layer by layer."""
        ws, bs, off = [], [], 0
        for fan_in, fan_out in self.shapes:
            ws.append(buf[off:off + n * fan_out * fan_in].view(n, fan_out, fan_in))
            off += n * fan_out * fan_in
            bs.append(buf[off:off + n * fan_out].view(n, fan_out))
            off += n * fan_out
        return ws, bs

    # -- one step ----------------------------------------------------------------------------------
    def _mm(self, fn, *args, out=None, **kw):
        """A matrix product, in bfloat16 when asked (inputs cast, the result back to float32)."""
        if not self.bf16:
            return fn(*args, out=out, **kw) if out is not None else fn(*args, **kw)
        res = fn(*(a.bfloat16() for a in args), **kw).float()
        return out.copy_(res) if out is not None else res

    def _forward(self, x: torch.Tensor, train_step: bool = False):
        """Logits ``(n, C, B)`` and the hidden activations (transposed) for input ``x (B, in)``.

        In training steps the activations go to buffers kept across steps: fresh multi-MB
        tensors each step cost page faults that were a third of the step time on CPU.
        """
        n, (fan_in, h0) = self.n, self.shapes[0]
        bufs = self._buffers("act", x.shape[0]) if train_step else [None] * len(self.shapes)
        z = self._mm(torch.mm, self.W[0].view(n * h0, fan_in), x.t(),
                     out=None if bufs[0] is None else bufs[0].view(n * h0, -1))
        z = z.view(n, h0, -1).add_(self.b[0].unsqueeze(-1))
        acts = []
        for layer in range(1, len(self.shapes)):
            acts.append(z.relu_())
            z = self._mm(torch.bmm, self.W[layer], acts[-1], out=bufs[layer])
            z.add_(self.b[layer].unsqueeze(-1))
        return z, acts

    def _buffers(self, kind: str, batch: int) -> list[torch.Tensor]:
        """Per-layer ``(n, out, batch)`` buffers."""
        return [self._buf(f"{kind}{i}", (self.n, o, batch)) for i, (_, o) in enumerate(self.shapes)]

    def _buf(self, name: str, shape: tuple) -> torch.Tensor:
        """A buffer kept across steps (fresh multi-100-KB tensors each step cost page faults)."""
        if name not in self._bufs or self._bufs[name].shape != shape:
            self._bufs[name] = torch.empty(shape, device=self.dev)
        return self._bufs[name]

    def _loss_grad(self, logits: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-candidate loss ``(n,)`` and its gradient w.r.t. the logits ``(n, C, B)``."""
        y, t = self.y[step], self.t[step]
        p = torch.softmax(logits, dim=1, out=self._buf("p", logits.shape))
        dlogits = self._buf("dlogits", logits.shape)
        if self.program is not None and self.expr_idx is None:  # the usual case: all expressions
            value = self.program.losses(p, t)
            torch.ops.aten._softmax_backward_data.out(self.program.backward(), p, 1, p.dtype,
                                                      grad_input=dlogits)
            return value, dlogits
        value = torch.empty(self.n, dtype=p.dtype, device=p.device)
        if self.program is not None:
            pe = p.index_select(0, self.expr_idx)
            value.index_copy_(0, self.expr_idx, self.program.losses(pe, t))
            dlogits.index_copy_(0, self.expr_idx, torch._softmax_backward_data(
                self.program.backward(), pe, 1, p.dtype))
        for s in self.fn_slots:
            got = fn_grad(self.losses[int(self.alive[s])], logits[s].t(), y)
            value[s], dlogits[s] = (math.nan, 0.0) if got is None else (got[0], got[1].t())
        return value, dlogits

    @torch.no_grad()
    def step(self, step: int) -> None:
        """One Adam step of every live candidate (no host sync).

        Stays (GPU review 11, 12): launch-bound at small P on CUDA (a CUDA graph needs the
        Python-int indexing by ``step`` gone), and the stack is built on the CPU then copied.
        """
        n, (fan_in, h0) = self.n, self.shapes[0]
        x = self.x.index_select(0, self.batches[step])
        logits, acts = self._forward(x, train_step=True)
        dbufs = self._buffers("grad", x.shape[0])
        value, g = self._loss_grad(logits, step)
        # Non-finite logit gradients make this sum non-finite (checked every CHECK_EVERY steps).
        self.grad_hist[step].index_copy_(0, self.hist_cols, g.sum((1, 2)))
        for layer in range(len(self.shapes) - 1, 0, -1):
            a = acts[layer - 1]
            self._mm(torch.bmm, g, a.transpose(1, 2), out=self.gW[layer])
            torch.sum(g, dim=2, out=self.gb[layer])
            d = self._mm(torch.bmm, self.W[layer].transpose(1, 2), g, out=dbufs[layer - 1])
            # ReLU's backward in place (0.0, not 0: an int threshold takes a slower kernel).
            g = torch.ops.aten.threshold_backward.grad_input(d, a, 0.0, grad_input=d)
        self._mm(torch.mm, g.view(n * h0, -1), x, out=self.gW[0].view(n * h0, fan_in))
        torch.sum(g, dim=2, out=self.gb[0])
        # No host sync: the checks read these histories every CHECK_EVERY steps.
        self.loss_hist[step].index_copy_(0, self.hist_cols, self._l2(value))
        self._update()

    # -- checks, evaluation ------------------------------------------------------------------------
    def param_max(self) -> torch.Tensor:
        """Largest parameter magnitude of each live slot, ``(n,)``."""
        return torch.stack([t.reshape(self.n, -1).abs().amax(1) for t in (*self.W, *self.b)]).amax(0)

    @torch.no_grad()
    def scores(self) -> list[tuple[float, dict]]:
        """``spec.metric`` of each live slot on the held-out split (one confusion matrix each)
        and its calibration figures (``train.calibrates``; else none)."""
        x, y, classes = self.ds.x_test.reshape(self.ds.n_test, -1), self.ds.y_test, self.ds.num_classes
        # Chunk so one chunk's first-layer activations stay near 2**24 floats (memory only).
        chunk = max(1, min(self.spec.eval_batch, (1 << 24) // max(1, self.n * self.shapes[0][1])))
        kept = [] if train.calibrates(self.spec, self.ds) else None
        # The stack's logits are (n, C, B); the scorer takes (n, B, C): a transposed view.
        cms = metrics.chunked_confusion(lambda xb: self._forward(xb)[0].transpose(1, 2), x, y,
                                        classes, chunk, population=self.n, kept=kept)
        return train.slot_scores(self.spec, cms, kept, y)

    def parameters(self, slot: int) -> list[torch.Tensor]:
        """Slot ``slot``'s parameters in ``model.parameters()`` order (for tests and inspection)."""
        return [t[slot] for pair in zip(self.W, self.b) for t in pair]
