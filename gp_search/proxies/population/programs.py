"""Batched evaluation of many loss trees over one stacked batch: one program for a population.

A population of P losses ``f_k(p, t)`` (DEAP trees of :mod:`gp_search.lang.primitives`) is compiled
into one :class:`LossProgram` over a value buffer ``V: (N, *E)`` (``E`` = the per-candidate
shape, e.g. classes × batch) whose rows are the leaves and nodes of all trees (layout in the
class docstring). Operator nodes are grouped by (height, operator, depends on ``y_pred``); each
group is a contiguous block of rows computed by ONE tensor operation, its arguments gathered by
row index (or taken as a slice when contiguous, as in chains like ``cos(cos(sin(p)))``).

So a forward pass costs one operation per (level, operator) pair, whatever P is: the number of
tensor operations grows with tree depth and the number of distinct operators, not with P × tree
size (128 random depth-≤4 ``paper`` trees: 496 nodes, 41 groups). Subtrees free of ``y_pred``
(``add(1, y_real)``) are computed once for the whole population; constant subtrees are folded
beforehand with the same ``math_fn`` as :func:`gp_search.lang.expr.compile_elementwise`, so values
agree with ``LossExpr.elementwise``.

The gradient with respect to ``p`` is computed by hand in reverse level order
(:meth:`LossProgram.backward`) with each operator's ``torch_grad`` from the primitive table
(PyTorch's autograd formula for it), so results match the autograd of the per-candidate loss to
rounding. No autograd graph is
built: on a CPU the bookkeeping of a few hundred small operations per step costs as much as the
arithmetic.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from deap import gp

from gp_search.lang import primitives as P
from gp_search.lang import LossExpr, float32_constant

# The kernels are the table's: torch_out writes a primitive's value into a block of rows, op for
# op as its torch_fn; torch_grad is PyTorch's autograd formula for it, so the rounding matches the
# autograd of the sequential path. add and sub are not called from here: they share one block per
# level, ``a + s*b`` with s = ±1 per row (``addcmul``), bit for bit ``a + b`` / ``a - b``
# (multiplying by ±1 is exact).
FORWARD: dict[str, Callable] = {p.name: p.torch_out for p in P.TABLE}
BACKWARD: dict[str, Callable] = {p.name: p.torch_grad for p in P.TABLE}


@dataclass
class _Group:
    """One block of rows computed by one tensor operation."""

    name: str  # primitive name, or "addsub" (add and sub together, see ``sign``)
    start: int
    stop: int
    args: list  # per argument: a slice of V rows, or of F rows when ``gathered``
    gathered: list  # per argument: copied from scattered V rows into F (True) or a slice of V
    gather: torch.Tensor | None  # V rows copied into F[f_rows] by one index_select
    f_rows: slice  # this block's rows of the gather buffers F (forward) and S (backward)
    need: tuple  # per argument: does some member's argument lead to y_pred (need a gradient)?
    grad: bool  # do the members depend on y_pred (is the block differentiated)?
    sign: torch.Tensor | None  # addsub: +1 for add, -1 for sub, per row


class _Node:
    """One operator node while compiling: its arguments, height and y_pred dependence."""

    __slots__ = ("args", "height", "name", "need", "row")

    def __init__(self, name, args):
        self.name, self.args, self.row = name, args, -1
        self.height = 1 + max(a.height if isinstance(a, _Node) else 0 for a in args)
        self.need = any(a.need if isinstance(a, _Node) else a == _PRED for a in args)


_PRED, _REAL = ("p",), ("t",)


def _fold(tree: gp.PrimitiveTree, shared: dict):
    """One prefix tree as nested nodes, bottom-up. Constant subtrees are folded to floats (as
    ``compile_elementwise`` does); subtrees free of y_pred are interned in ``shared`` (one node
    for the whole population); every other node is this tree's own. Leaves: ``_PRED``,
    ``_REAL`` or a float."""
    stack: list = []
    for node in reversed(tree):
        if isinstance(node, gp.Primitive):
            args = tuple(stack.pop() for _ in range(node.arity))
            if all(isinstance(a, float) for a in args):
                stack.append(P.BY_NAME[node.name].math_fn(*args))
                continue
            new = _Node(node.name, args)
            if not new.need:
                key = (node.name, tuple(id(a) if isinstance(a, _Node) else
                                        (struct.pack("<d", a) if isinstance(a, float) else a)
                                        for a in args))
                new = shared.setdefault(key, new)
            stack.append(new)
        elif isinstance(node.value, str) and node.value == P.PRED:
            stack.append(_PRED)
        elif isinstance(node.value, str) and node.value == P.REAL:
            stack.append(_REAL)
        else:
            stack.append(float(node.value))
    return stack[0]


class LossProgram:
    """P loss trees compiled into one level-by-level program over a shared value buffer.

    Rows of the value buffer ``V: (N, *E)``, in order: one row per *use* of ``y_pred`` (filled
    from ``p`` by one ``index_select``), per use of ``y_real`` (one copy of ``t``), per use of a
    constant (filled once), then the operator nodes, group after group. Every row that needs a
    gradient has exactly one parent (leaves are per use, y_pred-dependent nodes are never
    shared), so the backward pass writes gradients instead of accumulating them, and needs no
    zeroed buffer; one ``index_add_`` at the end sums the uses of ``y_pred`` per candidate.

    Args:
        losses: DEAP trees or :class:`LossExpr` objects, one per candidate.
        device: where the index tensors live (the buffers follow the input's device).

    Raises:
        ExprError: a constant lies outside float32's range (as ``LossExpr.elementwise``).

    Example:
        >>> from gp_search.lang.losses import NGL, MSE
        >>> prog = LossProgram([NGL, MSE])
        >>> p = torch.softmax(torch.randn(2, 4, 10), dim=1); t = torch.eye(10)[:4]
        >>> prog.losses(p, t).shape
        torch.Size([2])
    """

    def __init__(self, losses: Sequence[gp.PrimitiveTree | LossExpr], device="cpu"):
        trees = [x.tree if isinstance(x, LossExpr) else x for x in losses]
        self.n = n = len(trees)
        shared: dict = {}
        roots = [_fold(tree, shared) for tree in trees]
        self.depends_on_pred = [r.need if isinstance(r, _Node) else r == _PRED for r in roots]
        self.shared_nodes = len(shared)

        # Collect operator nodes (each once) and count leaf uses, to size the three leaf regions.
        nodes, seen, uses = [], set(), {"p": 0, "t": 0, "c": 0}

        def leaf_kind(a):
            return "c" if isinstance(a, float) else a[0]

        todo = [(r, k) for k, r in enumerate(roots)]
        owner = {}
        while todo:
            node, k = todo.pop()
            if not isinstance(node, _Node):
                if isinstance(node, float):
                    float32_constant(node)  # ExprError, as LossExpr.elementwise would raise
                uses[leaf_kind(node)] += 1
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            nodes.append(node)
            owner[id(node)] = k
            todo.extend((a, k) for a in node.args)
        base = {"p": 0, "t": uses["p"], "c": uses["p"] + uses["t"]}
        nxt = dict(base)
        p_owner: list[int] = []
        const_rows: list[tuple[int, float]] = []

        def use_row(a, k):
            """A fresh row for one use of a leaf by candidate ``k``."""
            kind = leaf_kind(a)
            r = nxt[kind]
            nxt[kind] += 1
            if kind == "p":
                p_owner.append(k)
            elif kind == "c":
                const_rows.append((r, a))
            return r

        next_row, f_next = base["c"] + uses["c"], 0
        blocks: dict[tuple, list] = {}
        for node in nodes:
            kind = "addsub" if node.name in ("add", "sub") else node.name
            blocks.setdefault((node.height, kind, node.need), []).append(node)
        groups = []
        for (_, name, grad), members in sorted(blocks.items()):
            # Sorting by argument rows makes chains land on contiguous rows (slices, no gather).
            members.sort(key=lambda m: [a.row if isinstance(a, _Node) else -1 for a in m.args])
            start = next_row
            for m in members:
                m.row = next_row
                next_row += 1
            arity = len(members[0].args)
            arg_rows = [[m.args[j].row if isinstance(m.args[j], _Node) else None for m in members]
                        for j in range(arity)]
            for j in range(arity):  # leaf uses get consecutive rows per argument position
                for i, m in enumerate(members):
                    if arg_rows[j][i] is None:
                        arg_rows[j][i] = use_row(m.args[j], owner[id(m)])
            args, gathered, gather = [], [], []
            for rows in arg_rows:  # scattered rows: one index_select for all of them, into F
                if all(b == a + 1 for a, b in itertools.pairwise(rows)):
                    args.append(slice(rows[0], rows[-1] + 1))
                    gathered.append(False)
                else:
                    args.append(slice(f_next + len(gather), f_next + len(gather) + len(rows)))
                    gathered.append(True)
                    gather += rows
            need = tuple(any(a.need if isinstance(a, _Node) else a == _PRED
                             for a in (m.args[j] for m in members)) for j in range(arity))
            sign = torch.tensor([1.0 if m.name == "add" else -1.0 for m in members],
                                device=device) if name == "addsub" else None
            groups.append(_Group(name, start, next_row, args, gathered,
                                 torch.tensor(gather, dtype=torch.long, device=device)
                                 if gather else None, slice(f_next, f_next + len(gather)),
                                 need, grad, sign))
            f_next += len(gather)
        self.f_rows = f_next
        self.root_rows = [r.row if isinstance(r, _Node) else use_row(r, k)
                          for k, r in enumerate(roots)]
        self.groups = groups
        self.rows = next_row
        self._n_p, self._t_rows = uses["p"], slice(base["t"], base["c"])
        self.const_rows = const_rows
        self._p_owner = torch.tensor(p_owner, dtype=torch.long, device=device)
        self._roots = torch.tensor(self.root_rows, dtype=torch.long, device=device)
        grad_k = [k for k in range(n) if self.depends_on_pred[k]]
        self._grad_k = torch.tensor(grad_k, dtype=torch.long, device=device)
        self._grad_roots = torch.tensor([self.root_rows[k] for k in grad_k], dtype=torch.long,
                                        device=device)
        self._buffers: tuple | None = None
        self._plan: list = []
        self._ready = False

    @property
    def num_ops(self) -> int:
        """Operator blocks per forward pass (one tensor op each): grows with depth, not with P."""
        return len(self.groups)

    def _buffer(self, p: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Values V, gradients G, gathered arguments F and their gradients S, root values and
        ``dp``, kept across calls (fresh multi-100-KB tensors every step cost page faults that
        showed up as a large share of a CPU step), and every view the passes use, made once:
        slicing in the loop cost about 1 µs per view, a third of the loss on a CPU."""
        shape = (self.rows, *p.shape[1:])
        if self._buffers is None or self._buffers[0].shape != shape or \
                self._buffers[0].dtype != p.dtype or self._buffers[0].device != p.device:
            V = torch.empty(shape, dtype=p.dtype, device=p.device)
            for r, v in self.const_rows:
                V[r].fill_(v)
            F = torch.empty((self.f_rows, *p.shape[1:]), dtype=p.dtype, device=p.device)
            G, S = torch.empty_like(V), torch.empty_like(F)
            self._buffers = (V, G, F, S, torch.empty_like(p), torch.empty_like(p))
            per_row = (-1,) + (1,) * (V.dim() - 1)
            self._plan = [(
                g,
                [F[a] if f else V[a] for a, f in zip(g.args, g.gathered)],  # arguments
                V[g.start:g.stop], G[g.start:g.stop],  # values and gradients of the block
                F[g.f_rows], S[g.f_rows],  # gathered arguments and their gradients
                [(S[a] if f else G[a]) if need else None  # where argument gradients go
                 for a, f, need in zip(g.args, g.gathered, g.need)],
                None if g.sign is None else g.sign.view(per_row),
                g.gather is not None and any(n for n, f in zip(g.need, g.gathered) if f),
            ) for g in self.groups]
        return self._buffers

    def forward(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Evaluate every node; keeps what :meth:`backward` needs.

        Args:
            p: ``(P, *E)`` probabilities, one slice per candidate.
            t: ``E``-shaped float target, shared by all candidates.

        Returns:
            The value buffer ``(N, *E)`` (valid until the next call).
        """
        if p.shape[0] != self.n or tuple(t.shape) != tuple(p.shape[1:]):
            raise ValueError(f"expected p of shape ({self.n}, *E) and t of shape E; got "
                             f"{tuple(p.shape)} and {tuple(t.shape)}")
        V = self._buffer(p)[0]
        if self._n_p:
            torch.index_select(p, 0, self._p_owner, out=V[:self._n_p])
        V[self._t_rows].copy_(t.expand(V[self._t_rows].shape))
        for g, args, out, _, f_block, _, _, sign, _ in self._plan:
            if g.gather is not None:
                torch.index_select(V, 0, g.gather, out=f_block)
            if sign is not None:
                torch.addcmul(args[0], sign, args[1], out=out)
            else:
                FORWARD[g.name](*args, out=out)
        self._ready = True
        return V

    def values(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Element-wise values ``f_k(p_k, t)`` stacked: ``(P, *E)`` (valid until the next call)."""
        V = self.forward(p, t)
        return torch.index_select(V, 0, self._roots, out=self._buffers[4])

    def losses(self, p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Per-candidate loss, the mean of ``f_k`` over all elements: ``(P,)``."""
        vals = self.values(p, t)
        return vals.mean(dim=tuple(range(1, vals.dim())))

    def backward(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Gradient of ``Σ_k w_k · mean(f_k)`` with respect to ``p``, after :meth:`forward`.

        Args:
            weights: ``(P,)`` per-candidate weights (default 1).

        Returns:
            ``(P, *E)``; zero for candidates whose loss does not depend on ``y_pred``.
        """
        if not self._ready:
            raise RuntimeError("call forward() (or losses()) before backward()")
        V, G, _, _, _, dp = self._buffers
        numel = V[0].numel()
        if len(self._grad_roots):  # d mean / d element = 1 / numel, as autograd's mean gives
            if weights is None:
                G.index_fill_(0, self._grad_roots, 1.0 / numel)
            else:
                shape = (len(self._grad_roots),) + (1,) * (V.dim() - 1)
                seed = (weights.to(V.dtype).index_select(0, self._grad_k) / numel).view(shape)
                G.index_copy_(0, self._grad_roots, seed.expand(-1, *V.shape[1:]).contiguous())
        for g, args, out, block, _, s_block, outs, sign, scatter in reversed(self._plan):
            if not g.grad:
                continue
            # Gradients go straight to their rows: G for slices, S for gathered arguments.
            if sign is not None:
                grads = (block if g.need[0] else None,
                         torch.mul(block, sign, out=outs[1]) if g.need[1] else None)
            else:
                grads = BACKWARD[g.name](block, *args, out, g.need, outs)
            for o, grad in zip(outs, grads):
                if grad is not None and grad is not o:
                    o.copy_(grad)
            if scatter:
                # Each row has one parent: write, not add. Rows of arguments that need no
                # gradient receive stale values; nothing reads them.
                G.index_copy_(0, g.gather, s_block)
        self._ready = False
        # Stays (GPU review 4): on CUDA index_add_ with repeated owners adds atomically, in no
        # fixed order; CUDA results are promised to rounding, not bit for bit (README).
        return dp.zero_().index_add_(0, self._p_owner, G[:self._n_p])


def split(cands: Sequence, device, exprs: bool = True) -> tuple[LossProgram | None,
                                                                  torch.Tensor | None, list[int]]:
    """A population's live candidates (``Loss`` objects, by slot) split into one program for
    those with an expression and per-slot ``loss.fn`` calls for the rest.

    Args:
        cands: the live candidates, by stack slot.
        device: where the program runs.
        exprs: False puts every slot on ``loss.fn`` (targets the program cannot take).

    Returns:
        ``(program or None, expression slots as an int64 tensor or None when every slot has
        one, slots that call loss.fn)``.
    """
    expr = [s for s, c in enumerate(cands) if c.expr is not None] if exprs else []
    fn_slots = [s for s in range(len(cands)) if s not in set(expr)]
    program = LossProgram([cands[s].expr for s in expr], device) if expr else None
    expr_idx = None if len(expr) == len(cands) else torch.tensor(expr, dtype=torch.long,
                                                                  device=device)
    return program, expr_idx, fn_slots
