"""The loss language: one loss seen as DEAP tree, SymPy expression, canonical key and torch loss.

A loss is an element-wise expression ``f(y_pred, y_real)`` of the softmax probabilities and the
one-hot target; the training loss is its mean over all elements (batch × classes, and the spatial
positions of dense outputs), as in the published NGL code. Target positions holding
:data:`IGNORE_INDEX` (255, Pascal VOC's "void") count nowhere: the mean is then taken over the
kept positions × classes (:func:`prepare_masked`, :func:`masked_mean`).

* :func:`parse` reads the DEAP prefix form or ordinary infix text (see :mod:`gp_search.lang.parsing`:
  the text is parsed, never evaluated).
* :class:`LossExpr` holds the tree and derives the rest: the SymPy form (automatic canonical form,
  constant subtrees folded to floats), the dedup key ``canonical`` (floats rounded to
  ``KEY_DIGITS`` significant digits), the behavioural ``fingerprint``, LaTeX, and the torch loss.

The torch loss is compiled from the tree (the genotype), so NGL's tree computes exactly the
published operations; SymPy's view serves canonical keys and export.

**Every view is bounded** (issue 22). Any tree the parser admits (at most
:data:`~gp_search.lang.parsing.MAX_NODES` nodes, :data:`~gp_search.lang.parsing.MAX_DEPTH`
levels) gets its canonical key, fingerprint and torch loss within about 2 s on one core, or a
clear :class:`ExprError` naming the part refused. :mod:`gp_search.lang.algebra` refuses, named,
a subtree that SymPy would carry as a number outside float64's range (``sin(exp(3.4e38))``
hung for hours), and runs SymPy under a count of call events
(:data:`gp_search.lang.budget.SYMPY_BUDGET`, about 1.4 s on an idle core; a count, so the
outcome does not depend on the machine's load). Over it, a loss gets the **fallback key**: its
prefix form, floats rounded to ``KEY_DIGITS`` digits, which :func:`parse` reads back; ``infix``
is then the prefix form, ``sympy`` raises :class:`ExprError`, and ``depends_on_pred`` /
``depends_on_target`` read the tree's leaves. The fingerprint and the torch loss never touch
SymPy: a fixed number of tensor operations per node.
Keys of every loss that answered before these bounds are unchanged.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import sympy
import torch
from deap import gp

from gp_search.lang import primitives as P
from gp_search.lang import budget
# tree_to_sympy and KEY_DIGITS: public here before gp_search.lang.algebra held them
from gp_search.lang.algebra import (KEY_DIGITS, algebra_of, fallback_key, fold,  # noqa: F401
                                    leaf_value, round_floats, tree_to_sympy)
from gp_search.lang.budget import OverBudget, within_budget
from gp_search.lang.parsing import ExprError, parse_tree

GRAD_FLOOR = 1e-9
"""Probe-gradient norm below which a loss counts as not moving the logits at all."""
FLOAT32_MAX = float(torch.finfo(torch.float32).max)
"""Largest magnitude a constant handed to torch may have: losses train in float32."""
IGNORE_INDEX = 255
"""Target class id that every loss leaves out (dense tasks' unlabelled pixels), wherever the
logits have at most 255 classes, so that 255 cannot be a class of its own."""


def parse(text: str, primitive_set: str = "auto",
          const_range: float = P.DEFAULT_CONST_RANGE) -> "LossExpr":
    """Read a loss from text, without evaluating anything.

    Accepts the DEAP prefix form (``sub(exp(sub(2.4092, mul(y_pred, add(1, y_real)))), ...)``)
    and ordinary infix (``exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))``); ``**`` with
    a whole exponent and ``/`` by a number are rewritten with ``mul``.

    Args:
        text: the expression.
        primitive_set: ``"paper"``, ``"extended"`` or ``"auto"`` (the smallest set that fits).
        const_range: range of the set's ephemeral constants (see :func:`primitives.pset`).

    Returns:
        The :class:`LossExpr`.

    Raises:
        ExprError (a ``ValueError``): naming the offending token.

    Example:
        >>> parse("exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))").size
        13
    """
    return LossExpr(*parse_tree(text, primitive_set, const_range))


def _torch_node(name: str, args: list):
    prim = P.BY_NAME[name]
    if all(isinstance(a, float) for a in args):
        return prim.math_fn(*args)
    fn = prim.torch_fn
    if len(args) == 1:
        (a,) = args
        return lambda p, t: fn(a(p, t))
    a, b = (x if callable(x) else _const_fn(x) for x in args)
    return lambda p, t: fn(a(p, t), b(p, t))


def float32_constant(v: float) -> float:
    """``v`` if a float32 tensor can hold it, else :class:`ExprError` naming it (NaN passes: a
    float32 tensor holds it, and training turns it into status ``nan``).

    Example:
        >>> float32_constant(2.4092)
        2.4092
    """
    if abs(v) > FLOAT32_MAX:
        raise ExprError(f"the constant {v:g} (after folding constant subtrees) is outside "
                        f"float32's range (|c| <= {FLOAT32_MAX:.5g}), in which losses train; "
                        f"use a smaller constant")
    return v


def _const_fn(v: float) -> Callable:
    float32_constant(v)
    # Python floats stay Python floats: torch then computes in the tensor's dtype, as a literal
    # in hand-written code would.
    return lambda p, t: v


def _torch_leaf(n):
    v = leaf_value(n)
    if v == P.PRED:
        return lambda p, t: p
    if v == P.REAL:
        return lambda p, t: t
    return v


def compile_elementwise(tree: gp.PrimitiveTree) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Compile a tree to ``f(p, t) -> tensor``, element-wise, the result broadcast to ``p``'s shape.

    Constant subtrees are folded to Python floats first; nothing is evaluated from text.

    Raises:
        ExprError: a constant handed to torch (a leaf, or a folded constant subtree) lies
            outside float32's range (``inf`` included), so no float32 training could use it.
    """
    out = fold(tree, _torch_leaf, _torch_node)
    if callable(out):
        return lambda p, t: torch.broadcast_to(out(p, t), p.shape)
    value = float32_constant(out)
    return lambda p, t: torch.full_like(p, value)


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
        tests/test_losses.py), or None for probability targets.
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


# --- fingerprint probes --------------------------------------------------------------------------

def probe_batch(k: int = 10, n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed probe set: ``n`` float64 logit rows over ``k`` classes, from near-uniform to
    near-one-hot softmax outputs, with integer targets (every class and both wrong and right
    argmax present)."""
    rng = np.random.default_rng(seed)
    scale = np.geomspace(0.1, 8.0, n)[:, None]
    logits = rng.standard_normal((n, k)) * scale
    target = rng.integers(0, k, n)
    return torch.tensor(logits, dtype=torch.float64), torch.tensor(target)


_PROBES = probe_batch()


@dataclass(frozen=True, eq=False)
class LossExpr:
    """One candidate loss, held as a DEAP tree; every other view is derived and cached.

    Attributes:
        tree: the DEAP ``PrimitiveTree`` (the genotype).
        primitive_set: the name of the set it was built over.
    """

    tree: gp.PrimitiveTree
    primitive_set: str = "paper"

    # -- text views --
    @cached_property
    def prefix(self) -> str:
        """DEAP prefix form, e.g. ``sub(exp(...), cos(...))``; :func:`parse` reads it back."""
        return str(self.tree)

    @cached_property
    def _algebra(self) -> "tuple[sympy.Expr, str, str] | ExprError | None":
        """(SymPy form, canonical key, infix) within the budget; the refusal; None over budget."""
        return algebra_of(self.tree)

    def _views(self) -> "tuple[sympy.Expr, str, str] | None":
        got = self._algebra
        if isinstance(got, ExprError):
            raise ExprError(str(got))
        return got

    @property
    def over_budget(self) -> bool:
        """True when SymPy's form needs more than the budget: the key is then the fallback key
        (see the module docstring); :class:`ExprError` when the loss has no finite value."""
        return self._views() is None

    @property
    def sympy(self) -> sympy.Expr:
        """SymPy automatic canonical form, constant subtrees folded to floats (full precision).

        Raises:
            ExprError: no finite value, or the form needs more than the budget.
        """
        got = self._views()
        if got is None:
            raise ExprError(f"the SymPy form of this loss needs more than {budget.SYMPY_BUDGET:,} call "
                            f"events (the bound of gp_search.lang.budget); its key is the "
                            f"fallback key {self.canonical[:80]!r}")
        return got[0]

    @cached_property
    def canonical(self) -> str:
        """Stable key: the SymPy form printed with floats rounded to ``KEY_DIGITS`` digits (the
        fallback key, the prefix form so rounded, when SymPy's form is over the budget)."""
        got = self._views()
        return got[1] if got is not None else fallback_key(self.tree)

    @cached_property
    def infix(self) -> str:
        """Readable infix text of the SymPy form (full-precision floats); :func:`parse` reads it.
        The prefix form when SymPy's form is over the budget."""
        got = self._views()
        return got[2] if got is not None else self.prefix

    @cached_property
    def latex(self) -> str:
        """LaTeX of the SymPy form (p, t for the variables; constants rounded as in the key); the
        fallback key in typewriter type when SymPy's form is over the budget."""
        got = self._views()
        if got is not None:
            try:
                return within_budget(lambda: sympy.latex(
                    round_floats(got[0]), symbol_names={P.SYM_PRED: "p", P.SYM_REAL: "t"}))
            except OverBudget:
                pass
        return r"\texttt{" + self.canonical.replace("_", r"\_") + "}"

    @cached_property
    def structure(self) -> str:
        """The canonical key with every float constant replaced by ``C``."""
        return _FLOAT_RE.sub("C", self.canonical)

    @cached_property
    def constants(self) -> tuple[float, ...]:
        """The float constants of the canonical key, in print order."""
        return tuple(float(m) for m in _FLOAT_RE.findall(self.canonical))

    # -- shape --
    @property
    def size(self) -> int:
        return len(self.tree)

    @property
    def height(self) -> int:
        return self.tree.height

    @cached_property
    def depends_on_pred(self) -> bool:
        """``y_pred`` is in SymPy's form (in the tree, when that form is over the budget)."""
        return self._depends_on(P.PRED)

    @cached_property
    def depends_on_target(self) -> bool:
        """``y_real`` is in SymPy's form (in the tree, when that form is over the budget)."""
        return self._depends_on(P.REAL)

    def _depends_on(self, name: str) -> bool:
        got = self._views()
        if got is None:
            return any(n.arity == 0 and n.value == name for n in self.tree)
        return P.SYMBOLS[name] in got[0].free_symbols

    # -- compiled --
    @cached_property
    def elementwise(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """``f(p, t)`` on probabilities and float targets, element-wise (compiled on first use;
        :class:`ExprError` for a constant outside float32's range)."""
        return compile_elementwise(self.tree)

    def to_torch(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The training loss ``(logits, target) -> scalar``: softmax over dim 1, ``f``, mean over
        all elements, positions whose target is :data:`IGNORE_INDEX` left out. ``target``: class
        indices, or one-hot/probabilities shaped like logits."""
        f = self.elementwise

        def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            p, t, keep = prepare_masked(logits, target)
            return masked_mean(f(p, t), keep)

        loss.__name__ = "gp_loss"
        loss.__doc__ = f"Mean over all elements of {self.canonical} (p = softmax over dim 1)."
        return loss

    def behaviour(self) -> np.ndarray:
        """Gradient of the loss w.r.t. the logits on the fixed probe set, scaled to unit norm.

        Two losses with the same behaviour train the same way under a scale-invariant optimiser
        such as Adam: adding a constant, or any term that only changes with ``sum(p) = 1``, and
        multiplying by a positive number leave it unchanged. Zero vector: the loss never moves the
        logits (gradient norm under ``GRAD_FLOOR``). NaN entries: the gradient is not finite on the probes.
        """
        logits, target = _PROBES
        logits = logits.clone().requires_grad_(True)
        with torch.enable_grad():
            value = self.to_torch()(logits, target)
            if not value.requires_grad:
                return np.zeros(logits.numel())
            (g,) = torch.autograd.grad(value, logits)
        g = g.detach().numpy().ravel()
        if not np.all(np.isfinite(g)):
            return np.full_like(g, np.nan)
        with np.errstate(over="ignore"):
            norm = np.linalg.norm(g)
        if not np.isfinite(norm):  # squares overflow: a huge but finite gradient; rescale first
            g = g.astype(np.float64) / float(np.abs(g).max())
            norm = np.linalg.norm(g)
        # Below ~1e-9 the gradient is rounding noise (e.g. mean(p), which sum(p) = 1 makes
        # constant) and sits under Adam's eps: nothing would train.
        return g / norm if norm > GRAD_FLOOR else np.zeros_like(g)

    @cached_property
    def fingerprint(self) -> str:
        """Hash of :meth:`behaviour` rounded to 3 decimals of the unit vector: equal fingerprints
        mean the same training signal on the probes (``"nonfinite"`` / ``"constant"`` for the
        two degenerate cases)."""
        b = self.behaviour()
        if np.isnan(b).any():
            return "nonfinite"
        if not b.any():
            return "constant"
        q = np.round(b, 3) + 0.0  # + 0.0 turns -0.0 into 0.0
        return hashlib.sha1(q.astype("<f8").tobytes()).hexdigest()[:16]

    def __str__(self) -> str:
        return self.canonical

    def __repr__(self) -> str:
        return f"LossExpr({self.prefix!r})"


_FLOAT_RE = re.compile(r"(?<![\w.])\d+\.\d*(?:e[+-]?\d+)?|(?<![\w.])\d+e[+-]?\d+")


def from_tree(tree: gp.PrimitiveTree, primitive_set: str = "paper") -> LossExpr:
    """Wrap a DEAP tree (e.g. one the search produced) as a :class:`LossExpr`."""
    return LossExpr(gp.PrimitiveTree(tree), primitive_set)
