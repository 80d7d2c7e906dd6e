"""The SymPy view of a loss tree, bounded: SymPy form, canonical key and infix, or the fallback key.

:func:`algebra_of` is the one place where a tree meets SymPy's automatic simplification. Its
cost is bounded twice over (see :mod:`gp_search.lang.expr` for what a user sees):

* structurally: SymPy never sees a number outside float64's range. mpmath carries exponents of
  any size, and e.g. ``sin`` of such a number reduces it modulo 2π at the precision of its
  exponent (issue 22: ``sin(exp(3.4e38))`` ran for hours). Each node's SymPy value is checked as
  it is built (:func:`fold` names the subtree), and so is every number the final folding
  rebuilds, before its parent sees it;
* by a count: the whole computation runs within :func:`gp_search.lang.budget.within_budget`, on
  a cleared SymPy cache; over it, the tree gets the **fallback key** (:func:`fallback_key`).

:func:`fold` is also how the torch loss is compiled (:mod:`gp_search.lang.expr`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Callable

import sympy
from deap import gp
from sympy.core.cache import clear_cache

from gp_search.lang import primitives as P
from gp_search.lang.budget import OverBudget, within_budget
from gp_search.lang.parsing import ExprError

KEY_DIGITS = 6
"""Significant digits kept for floats in the canonical key (and in ``structure``/``constants``)."""


class Refused(Exception):
    """Raised by a ``node`` function of :func:`fold`: the node's value has no finite meaning;
    :func:`fold` names the subtree."""


def fold(tree: gp.PrimitiveTree, leaf: Callable, node: Callable):
    """Evaluate a prefix tree bottom-up without recursion: ``node(primitive_name, args)``.

    Raises:
        ExprError: ``node`` raised :class:`Refused`; the message names the subtree.
    """
    stack = []
    for i in range(len(tree) - 1, -1, -1):
        n = tree[i]
        if isinstance(n, gp.Primitive):
            args = [stack.pop() for _ in range(n.arity)]
            try:
                stack.append(node(n.name, args))
            except Refused as exc:
                raise ExprError(f"the subtree {subtree_text(tree, i)} {exc}; the loss has no "
                                "finite value") from None
        else:
            stack.append(leaf(n))
    return stack[0]


def subtree_text(tree: gp.PrimitiveTree, i: int, limit: int = 120) -> str:
    """The prefix text of the subtree rooted at node ``i``, cut to ``limit`` characters."""
    text = str(gp.PrimitiveTree(tree[tree.searchSubtree(i)]))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def leaf_value(n) -> str | float:
    """A leaf as a variable name or a float constant."""
    if isinstance(n.value, str) and n.value in P.SYMBOLS:
        return n.value
    return float(n.value)


def sympy_number(v: float) -> sympy.Expr:
    if not math.isfinite(v):
        raise ExprError(f"a constant subexpression evaluates to {v}; the loss has no finite value")
    if v == int(v) and abs(v) < 1e15:
        return sympy.Integer(int(v))
    return sympy.Float(v)


def _check_float(e: sympy.Expr) -> sympy.Expr:
    """``e``, unless it is a SymPy float outside float64's range (mpmath carries exponents of any
    size, and e.g. ``sin`` of such a number reduces it modulo 2π at the precision of its exponent:
    hours): then :class:`Refused`."""
    if e.is_Float and not math.isfinite(float(e)):
        raise Refused(f"evaluates to {sympy.sstr(e, full_prec=False)}, outside float64's range")
    return e


def _sympy_node(name: str, args: list):
    prim = P.BY_NAME[name]
    if all(isinstance(a, float) for a in args):
        return prim.math_fn(*args)
    out = prim.sympy_fn(*(sympy_number(a) if isinstance(a, float) else a for a in args))
    return _check_float(out)


def _fold_number(e: sympy.Expr) -> sympy.Expr:
    if e.is_Number:
        return _check_float(e)
    return sympy_number(float(e.evalf()))


def _sympy_leaf(n):
    v = leaf_value(n)
    return P.SYMBOLS[v] if isinstance(v, str) else v


def tree_to_sympy(tree: gp.PrimitiveTree) -> sympy.Expr:
    """SymPy's automatic canonical form of a tree, constant subtrees folded to floats."""
    out = fold(tree, _sympy_leaf, _sympy_node)
    out = sympy_number(out) if isinstance(out, float) else out
    # SymPy's own arithmetic can leave exact constants such as exp(2); fold those as well. The
    # walk is bottom-up, and every number it rebuilds is checked before its parent sees it.
    try:
        return out.replace(lambda e: e.is_number, _fold_number)
    except Refused as exc:
        raise ExprError(f"a constant subexpression {exc}; the loss has no finite value") from None


def round_floats(expr: sympy.Expr, digits: int = KEY_DIGITS) -> sympy.Expr:
    repl = {}
    for f in expr.atoms(sympy.Float):
        if not math.isfinite(float(f)):  # SymPy's floats outgrow float64 (1e200 * 1e200)
            raise ExprError(f"a constant of the loss is {float(f)} in float64 (SymPy: "
                            f"{f!s}); the loss has no finite value")
        r = float(f"{float(f):.{digits}g}")
        repl[f] = sympy.Integer(int(r)) if r == int(r) and abs(r) < 1e15 else sympy.Float(r)
    return expr.xreplace(repl)


_MEMO: "OrderedDict[str, tuple | ExprError | None]" = OrderedDict()
_MEMO_SIZE = 4096


def algebra_of(tree: gp.PrimitiveTree) -> "tuple[sympy.Expr, str, str] | ExprError | None":
    """SymPy form, key and infix of a tree within the budget (None over it; the ExprError when
    it has no finite value), remembered for the last ``_MEMO_SIZE`` trees of this process.

    SymPy's cache is cleared first, so that the count of a computation does not depend on what
    SymPy computed before in this process (an abandoned computation leaves half its work in the
    cache, which made a retry cheaper); the memo makes a tree seen twice get the same answer.
    """
    text = str(tree)
    if text in _MEMO:
        _MEMO.move_to_end(text)
        return _MEMO[text]

    def views():
        expr = tree_to_sympy(tree)
        return (expr, sympy.sstr(round_floats(expr), full_prec=False, order="lex"),
                sympy.sstr(expr, full_prec=False, order="lex"))

    clear_cache()
    try:
        got = within_budget(views)
    except OverBudget:
        got = None
    except ExprError as exc:
        got = ExprError(str(exc))  # without its traceback: the memo keeps it
    except (ArithmeticError, RecursionError, ValueError, TypeError) as exc:
        # SymPy or mpmath giving up on a hostile form (e.g. an integer too large to build)
        got = ExprError(f"SymPy cannot put this loss in canonical form ({type(exc).__name__}: "
                        f"{str(exc)[:120]})")
    _MEMO[text] = got
    if len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return got


def fallback_key(tree: gp.PrimitiveTree) -> str:
    """The key of a tree whose SymPy form is over the budget: its prefix form with floats rounded
    to ``KEY_DIGITS`` significant digits (a text that the parser reads back)."""
    return fold(tree, _key_leaf, _prefix_node)


def _key_leaf(n) -> str:
    v = leaf_value(n)
    if isinstance(v, str):
        return v
    r = float(f"{v:.{KEY_DIGITS}g}")
    return str(int(r)) if r == int(r) and abs(r) < 1e15 else repr(r)


def _prefix_node(name: str, args: list) -> str:
    return f"{name}({', '.join(args)})"
