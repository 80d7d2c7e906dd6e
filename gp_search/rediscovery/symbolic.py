"""Exact symbolic match of two losses: expanded normal form, near-integers snapped, optional factor.

Two loss expressions match *exactly* when SymPy's expansion of both (products over sums,
``exp(a + b) -> exp(a)·exp(b)``, numbers folded to floats) has the same structure with every
float printed as ``C``, and every constant agrees within a relative tolerance; floats within that
tolerance of a non-zero integer are snapped to it first, so ``-0.9996·cos(…)`` reads as
``-cos(…)``. Used by targeted rediscovery to decide *exact* success, and usable to say how far a
searched loss is from NGL symbolically.
"""

from __future__ import annotations

import re
from collections import Counter

import sympy

from gp_search.lang import ExprError, LossExpr
from gp_search.lang import NGL

_FLOAT = re.compile(r"(?<![\w.])\d+\.\d*(?:e[+-]?\d+)?|(?<![\w.])\d+e[+-]?\d+")


def _expanded(x: sympy.Expr) -> sympy.Expr:
    """SymPy's expansion (products over sums, ``exp(a + b) -> exp(a)·exp(b)``), numbers folded
    to floats."""
    x = sympy.expand(x)
    return x.replace(lambda z: z.is_number and not z.is_Number, lambda z: sympy.Float(z.evalf()))


def _normal(x: sympy.Expr, rtol: float) -> tuple[str, str, tuple[float, ...]]:
    snap = {}
    for f in x.atoms(sympy.Float):
        k = round(float(f))
        if k != 0 and abs(float(f) - k) <= rtol * abs(k):
            snap[f] = sympy.Integer(k)
    text = sympy.sstr(x.xreplace(snap), order="lex", full_prec=False)
    shown = sympy.sstr(_round(x.xreplace(snap)), order="lex", full_prec=False)
    return _FLOAT.sub("C", text), shown, tuple(float(m) for m in _FLOAT.findall(text))


def _round(x: sympy.Expr) -> sympy.Expr:
    return x.xreplace({f: sympy.Float(float(f"{float(f):.6g}")) for f in x.atoms(sympy.Float)})


def normal_form(expr: LossExpr, rtol: float = 1e-3) -> tuple[str, tuple[float, ...]]:
    """A structure string and constants that do not depend on how the formula was written.

    SymPy's expansion (products over sums, ``exp(a + b) -> exp(a)·exp(b)``), numbers folded to
    floats, and every float within ``rtol`` (relative) of a non-zero integer snapped to it, so
    ``-0.9996·cos(…)`` reads as ``-cos(…)``. Floats print as ``C`` in the structure.

    Returns:
        ``(structure, constants in print order)``.
    """
    structure, _, constants = _normal(_expanded(expr.sympy), rtol)
    return structure, constants


def exact_form(expr: LossExpr, target: LossExpr = NGL, rtol: float = 1e-3,
               up_to_scale: bool = False) -> str | None:
    """The candidate as it matches the target exactly, or ``None``.

    Exact: the same normal-form structure (:func:`normal_form`) and every constant within
    ``rtol`` relative. Strict about everything else — ``NGL + 0.3·p`` trains like NGL but is not
    exact. With ``up_to_scale`` (for term-weighted individuals, whose overall positive factor
    is not identified by behaviour) the candidate is first divided by the size of one of its
    terms' coefficients, each in turn; ``2·NGL`` then matches, ``NGL + 0.3·p`` still does not.

    Returns:
        The matching form, printed with 6 significant digits, e.g.
        ``-cos(cos(sin(y_pred))) + 11.1251*exp(-y_pred)*exp(-y_pred*y_real)``.
    """
    try:
        x = _expanded(expr.sympy)
        ref, _, ref_c = _normal(_expanded(target.sympy), rtol)
        scales = [sympy.Integer(1)]
        if up_to_scale:
            coeffs = (t.as_coeff_Mul()[0] for t in sympy.Add.make_args(x))
            scales += [abs(c) for c in coeffs if c.is_Number and c != 0 and abs(c) != 1]
        for scale in scales:
            structure, shown, consts = _normal(_expanded(x / scale), rtol)
            if structure == ref and len(consts) == len(ref_c) and all(
                    abs(a - b) <= rtol * abs(b) for a, b in zip(consts, ref_c)):
                return shown
    except (ExprError, ValueError, TypeError, RecursionError, ZeroDivisionError):
        return None
    return None


def is_exact(expr: LossExpr, target: LossExpr = NGL, rtol: float = 1e-3,
             up_to_scale: bool = False) -> bool:
    """Whether :func:`exact_form` finds a match.

    Example:
        >>> from gp_search.lang import parse
        >>> is_exact(parse("exp(2.4092 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))"))
        True
    """
    return exact_form(expr, target, rtol, up_to_scale) is not None


def _structures(x: sympy.Expr) -> Counter:
    """Every sub-expression of an expanded form, printed with its numbers other than ±1 as ``C``
    (numbers on their own left out)."""
    x = x.xreplace({n: sympy.Float(n) for n in x.atoms(sympy.Number) if abs(n) != 1})
    return Counter(_FLOAT.sub("C", sympy.sstr(node, order="lex"))
                   for node in sympy.preorder_traversal(x) if not node.is_Number)


def symbolic_distance(expr: LossExpr, target: LossExpr = NGL) -> float:
    """How much of two losses' expanded forms differs, constants aside: 0 … 1.

    One minus the weighted Jaccard index of the multisets of sub-expressions of both expanded
    forms (as :func:`normal_form` expands them), every number but ±1 printed as ``C``: 0 when
    the structures are equal (constants may differ), 1 when not even a variable is shared. A
    fraction of shared pieces, not an edit count; ``exact_form`` decides equality.

    Example:
        >>> from gp_search.lang import parse
        >>> symbolic_distance(parse("exp(1.5 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))"))
        0.0
    """
    try:
        a, b = _structures(_expanded(expr.sympy)), _structures(_expanded(target.sympy))
    except (ExprError, ValueError, TypeError, RecursionError):
        return 1.0
    shared = sum((a & b).values())
    return 1.0 - shared / max(sum((a | b).values()), 1)
