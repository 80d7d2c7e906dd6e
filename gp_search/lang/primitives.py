"""The primitive table: every operator a loss can use, with its torch, SymPy and source forms.

One row per primitive (PySR/gplearn style). Everything else is a view of this table: the DEAP
primitive set (:func:`pset`), the SymPy builder used by :mod:`gp_search.lang.expr`, the torch
functions used to compile trees, the source templates the exporters print, the forward and gradient
kernels of the batched loss programs (:mod:`gp_search.proxies.population.programs`), and the
derivatives (:mod:`gp_search.lang.derivatives`: the gradient column applied, and the NumPy
derivatives of the rediscovery's behavioural distance, SymPy's derivative of the row's SymPy form).
Adding a primitive means adding one row here; ``tests/lang/test_primitives.py`` checks every row's torch
≡ SymPy ≡ math, and its gradient against torch autograd and SymPy.

Primitive sets, selectable by name:

* ``paper`` — the operators of the NGL paper: ``add, sub, mul, exp, cos, sin``; terminals
  ``y_pred``, ``y_real``, the constant ``1`` and ephemeral random constants.
* ``extended`` — ``paper`` plus ``neg, square, tanh, abs, min, max`` and the *protected*
  operators ``plog, pdiv, psqrt`` (named so, because they are not ``log``, ``/`` and ``sqrt``):

  - ``plog(x)  = log(|x| + 1e-7)``
  - ``pdiv(a, b) = a * b / (b**2 + 1e-7)`` — smooth, finite, equal to ``a / b`` away from 0
  - ``psqrt(x) = sqrt(|x| + 1e-7)``

Ephemeral random constants (our choice; the paper did not publish one): uniform on
``[-const_range, const_range]`` (default 3, so NGL's 2.4092 is reachable), rounded to 4 decimals
like the published constant.
"""

from __future__ import annotations

import functools
import math
import operator
import random
from dataclasses import dataclass
from typing import Callable

import sympy
import torch
from deap import gp

EPS = 1e-7
"""Guard added inside the protected operators (plog, pdiv, psqrt)."""

PRED, REAL = "y_pred", "y_real"
SYM_PRED = sympy.Symbol(PRED, positive=True)
SYM_REAL = sympy.Symbol(REAL, nonnegative=True)
SYMBOLS = {PRED: SYM_PRED, REAL: SYM_REAL}

CONST_DECIMALS = 4
DEFAULT_CONST_RANGE = 3.0


# --- SymPy functions for the protected operators (no SymPy equivalent keeps them finite) --------

class _Protected(sympy.Function):
    """Base of the protected SymPy functions: folds numeric arguments to a Float."""

    _math: Callable = None

    @classmethod
    def eval(cls, *args):
        if all(a.is_Number for a in args):
            return sympy.Float(cls._math(*(float(a) for a in args)))
        return None


class plog(_Protected):  # noqa: N801 - SymPy function names print as written
    nargs = 1
    _math = staticmethod(lambda x: math.log(abs(x) + EPS))

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sympy.sign(x) / (sympy.Abs(x) + EPS)


class pdiv(_Protected):  # noqa: N801
    nargs = 2
    _math = staticmethod(lambda a, b: a * b / (b * b + EPS))

    def fdiff(self, argindex=1):
        a, b = self.args
        w = b**2 + EPS
        return b / w if argindex == 1 else a * (EPS - b**2) / w**2


class psqrt(_Protected):  # noqa: N801
    nargs = 1
    _math = staticmethod(lambda x: math.sqrt(abs(x) + EPS))

    def fdiff(self, argindex=1):
        x = self.args[0]
        return sympy.sign(x) / (2 * psqrt(x))


def _safe(fn: Callable) -> Callable:
    """Wrap a math function so overflow and domain errors give inf/nan, as torch would."""

    def wrapped(*args):
        try:
            return float(fn(*args))
        except OverflowError:
            return math.inf
        except (ValueError, ZeroDivisionError):
            return math.nan

    return wrapped


SET_NAMES = ("paper", "extended")
"""The primitive sets, smallest first: a primitive is in every set unless its row says less."""


@dataclass(frozen=True)
class Primitive:
    """One row of the table.

    Attributes:
        name: name in DEAP trees and in parsed text (``add``, ``exp``, …).
        arity: number of arguments.
        torch_fn: element-wise torch implementation on tensors.
        math_fn: float implementation, used to fold constant subtrees.
        sympy_fn: builds the SymPy expression from SymPy arguments.
        sympy_head: the SymPy function class this primitive prints as, when it prints as a call
            (``sympy.exp``); ``None`` for algebra that SymPy absorbs into Add/Mul/Pow.
        source: per export target, a ``str.format`` template over the argument sources.
        torch_out: ``torch_out(*args, out=...)`` computes what ``torch_fn`` computes, op for op,
            into the tensor ``out`` (the batched loss programs write into buffers kept across
            steps).
        torch_grad: ``torch_grad(g, *args, y, need, into)`` -> one gradient per argument, given
            the gradient ``g`` of the value ``y``; written as PyTorch's autograd formula for the
            same operations (``derivatives.yaml``), so it equals autograd of ``torch_fn`` to
            rounding (e.g. ``minimum`` splits ``g`` in half on ties). ``need[j]`` False: argument
            j needs no gradient (``None`` is returned); ``into[j]``, when not ``None``, is a tensor
            the gradient may be written into (saving a copy). :func:`gradients` calls it plainly.
        sets: the primitive sets that contain it.
    """

    name: str
    arity: int
    torch_fn: Callable
    math_fn: Callable
    sympy_fn: Callable
    sympy_head: type | None
    source: dict
    torch_out: Callable
    torch_grad: Callable
    sets: tuple = SET_NAMES


def _tensors(a, b) -> tuple[torch.Tensor, torch.Tensor]:
    """Both operands as tensors (one may be a folded Python float constant)."""
    ref = a if isinstance(a, torch.Tensor) else b
    return (torch.as_tensor(a, dtype=ref.dtype, device=ref.device),
            torch.as_tensor(b, dtype=ref.dtype, device=ref.device))


def _call(fn: str) -> dict:
    """Source templates for a plain one-argument function available in torch, numpy and jax."""
    return {"torch": f"torch.{fn}({{0}})", "numpy": f"np.{fn}({{0}})", "jax": f"jnp.{fn}({{0}})"}


def _infix(op: str) -> dict:
    """Source templates for an infix operator, the same in torch, numpy and jax."""
    return {t: f"({{0}} {op} {{1}})" for t in ("torch", "numpy", "jax")}


# --- gradient kernels (the torch_grad column) --------------------------------------------------

def _mul(a, b, o):
    """``a * b``, into ``o`` when given."""
    return torch.mul(a, b, out=o) if o is not None else a * b


def _neg(g, o):
    return torch.neg(g, out=o) if o is not None else -g


def _grad_min_max(self_loses):
    """minimum / maximum: ``where(a == b, g/2, g)``, masked where that argument did not win."""
    def grad(g, a, b, y, need, into):
        half = torch.where(a == b, g / 2, g)
        return (half.masked_fill(self_loses(a, b), 0) if need[0] else None,
                half.masked_fill(self_loses(b, a), 0) if need[1] else None)
    return grad


def _grad_pdiv(g, a, b, y, need, into):
    """``(a*b) / w`` with ``w = b*b + EPS``: div's formulas, then mul's (b*b counts twice)."""
    w = (b * b).add_(EPS)
    du = g / w
    ga = _mul(du, b, into[0]) if need[0] else None
    gb = None
    if need[1]:
        dw = -g * (((a * b) / w) / w)  # div's "other" derivative: -grad * (self / other) / other
        gb = torch.add(du * a, dw * b + dw * b, out=into[1])
    return ga, gb


def _grad_sgn_scaled(denom):
    """``(g / denom) * sgn(x)``: the chain through ``abs`` of plog and psqrt."""
    return lambda g, a, y, need, into: (_mul(g / denom(a, y), torch.sgn(a), into[0]),)


_E = "extended",

TABLE: tuple[Primitive, ...] = (
    Primitive("add", 2, operator.add, _safe(lambda a, b: a + b), lambda a, b: a + b, None,
              _infix("+"), lambda a, b, out: torch.add(a, b, out=out),
              lambda g, a, b, y, need, into: (g if need[0] else None, g if need[1] else None)),
    Primitive("sub", 2, operator.sub, _safe(lambda a, b: a - b), lambda a, b: a - b, None,
              _infix("-"), lambda a, b, out: torch.sub(a, b, out=out),
              lambda g, a, b, y, need, into: (g if need[0] else None,
                                              _neg(g, into[1]) if need[1] else None)),
    Primitive("mul", 2, operator.mul, _safe(lambda a, b: a * b), lambda a, b: a * b, None,
              _infix("*"), lambda a, b, out: torch.mul(a, b, out=out),
              lambda g, a, b, y, need, into: (_mul(g, b, into[0]) if need[0] else None,
                                              _mul(g, a, into[1]) if need[1] else None)),
    Primitive("exp", 1, torch.exp, _safe(math.exp), sympy.exp, sympy.exp, _call("exp"),
              lambda a, out: torch.exp(a, out=out),
              lambda g, a, y, need, into: (_mul(g, y, into[0]),)),
    Primitive("cos", 1, torch.cos, _safe(math.cos), sympy.cos, sympy.cos, _call("cos"),
              lambda a, out: torch.cos(a, out=out),
              lambda g, a, y, need, into: (_mul(g, torch.sin(a).neg_(), into[0]),)),
    Primitive("sin", 1, torch.sin, _safe(math.sin), sympy.sin, sympy.sin, _call("sin"),
              lambda a, out: torch.sin(a, out=out),
              lambda g, a, y, need, into: (_mul(g, torch.cos(a), into[0]),)),
    Primitive("neg", 1, operator.neg, _safe(lambda a: -a), lambda a: -a, None,
              {"torch": "(-{0})", "numpy": "(-{0})", "jax": "(-{0})"},
              lambda a, out: torch.neg(a, out=out),
              lambda g, a, y, need, into: (_neg(g, into[0]),), _E),
    Primitive("square", 1, torch.square, _safe(lambda a: a * a), lambda a: a**2, None,
              {"torch": "({0} ** 2)", "numpy": "({0} ** 2)", "jax": "({0} ** 2)"},
              lambda a, out: torch.square(a, out=out),
              lambda g, a, y, need, into: (_mul(g, a * 2, into[0]),), _E),
    Primitive("tanh", 1, torch.tanh, _safe(math.tanh), sympy.tanh, sympy.tanh, _call("tanh"),
              lambda a, out: torch.tanh(a, out=out),
              lambda g, a, y, need, into: (torch.ops.aten.tanh_backward(g, y),), _E),
    Primitive("abs", 1, torch.abs, _safe(abs), sympy.Abs, sympy.Abs, _call("abs"),
              lambda a, out: torch.abs(a, out=out),
              lambda g, a, y, need, into: (_mul(g, torch.sgn(a), into[0]),), _E),
    Primitive("min", 2, lambda a, b: torch.minimum(*_tensors(a, b)), _safe(min), sympy.Min, sympy.Min,
              {"torch": "torch.minimum(torch.as_tensor({0}), torch.as_tensor({1}))", "numpy": "np.minimum({0}, {1})",
               "jax": "jnp.minimum({0}, {1})"},
              lambda a, b, out: torch.minimum(a, b, out=out), _grad_min_max(torch.gt), _E),
    Primitive("max", 2, lambda a, b: torch.maximum(*_tensors(a, b)), _safe(max), sympy.Max, sympy.Max,
              {"torch": "torch.maximum(torch.as_tensor({0}), torch.as_tensor({1}))", "numpy": "np.maximum({0}, {1})",
               "jax": "jnp.maximum({0}, {1})"},
              lambda a, b, out: torch.maximum(a, b, out=out), _grad_min_max(torch.lt), _E),
    Primitive("plog", 1, lambda x: torch.log(torch.abs(x) + EPS), _safe(plog._math), plog, plog,
              {"torch": f"torch.log(torch.abs({{0}}) + {EPS!r})",
               "numpy": f"np.log(np.abs({{0}}) + {EPS!r})",
               "jax": f"jnp.log(jnp.abs({{0}}) + {EPS!r})"},
              lambda a, out: torch.log(torch.abs(a).add_(EPS), out=out),
              _grad_sgn_scaled(lambda a, y: torch.abs(a).add_(EPS)), _E),
    Primitive("pdiv", 2, lambda a, b: a * b / (b * b + EPS), _safe(pdiv._math), pdiv, pdiv,
              {t: f"({{0}} * {{1}} / ({{1}} ** 2 + {EPS!r}))" for t in ("torch", "numpy", "jax")},
              lambda a, b, out: torch.div(a * b, (b * b).add_(EPS), out=out), _grad_pdiv, _E),
    Primitive("psqrt", 1, lambda x: torch.sqrt(torch.abs(x) + EPS), _safe(psqrt._math), psqrt,
              psqrt,
              {"torch": f"torch.sqrt(torch.abs({{0}}) + {EPS!r})",
               "numpy": f"np.sqrt(np.abs({{0}}) + {EPS!r})",
               "jax": f"jnp.sqrt(jnp.abs({{0}}) + {EPS!r})"},
              lambda a, out: torch.sqrt(torch.abs(a).add_(EPS), out=out),
              _grad_sgn_scaled(lambda a, y: 2 * y), _E),
)

BY_NAME: dict[str, Primitive] = {p.name: p for p in TABLE}
BY_SYMPY_HEAD: dict[type, Primitive] = {p.sympy_head: p for p in TABLE if p.sympy_head}


def names(set_name: str = "paper") -> tuple[str, ...]:
    """Names of the primitives in a primitive set.

    Raises:
        ValueError: for an unknown set name.
    """
    _check_set(set_name)
    return tuple(p.name for p in TABLE if set_name in p.sets)


def _check_set(set_name: str) -> None:
    if set_name not in SET_NAMES:
        raise ValueError(f"unknown primitive set {set_name!r}; choose one of {list(SET_NAMES)}")


def row(name: str) -> Primitive:
    """The table's row for primitive ``name`` (ValueError naming the known ones otherwise)."""
    if name not in BY_NAME:
        raise ValueError(f"unknown primitive {name!r}; choose one of {sorted(BY_NAME)}")
    return BY_NAME[name]


# --- DEAP view -----------------------------------------------------------------------------------
# DEAP keeps ephemeral classes as module-global state; each (set, range) pair is made once here.
_PSETS: dict[tuple[str, float], gp.PrimitiveSet] = {}


def _ephemeral_name(const_range: float) -> str:
    return "erc_" + f"{const_range:g}".replace(".", "p").replace("-", "m")


def pset(set_name: str = "paper", const_range: float = DEFAULT_CONST_RANGE) -> gp.PrimitiveSet:
    """The DEAP primitive set for a named set of primitives, built once and cached.

    Args:
        set_name: ``"paper"`` or ``"extended"``.
        const_range: ephemeral constants are drawn uniformly from ``[-const_range, const_range]``
            (Python's ``random`` module, which the search seeds), rounded to 4 decimals.

    Returns:
        A ``deap.gp.PrimitiveSet`` whose two arguments are named ``y_pred`` and ``y_real``.
    """
    _check_set(set_name)
    if not (math.isfinite(const_range) and const_range > 0):
        raise ValueError(f"const_range must be a positive finite number, got {const_range!r}")
    key = (set_name, float(const_range))
    if key not in _PSETS:
        ps = gp.PrimitiveSet(f"LOSS_{set_name}", 2)
        ps.renameArguments(ARG0=PRED, ARG1=REAL)
        for prim in TABLE:
            if set_name in prim.sets:
                ps.addPrimitive(prim.torch_fn, prim.arity, name=prim.name)
        ps.addTerminal(1, name="1")
        ps.addEphemeralConstant(_ephemeral_name(const_range),
                                functools.partial(draw_constant, float(const_range)))
        _PSETS[key] = ps
    return _PSETS[key]


def draw_constant(const_range: float) -> float:
    """One ephemeral constant: uniform on ``[-const_range, const_range]``, 4 decimals."""
    return round(random.uniform(-const_range, const_range), CONST_DECIMALS)


def constant_terminal(value: float, ps: gp.PrimitiveSet) -> gp.Terminal:
    """A constant leaf holding ``float(value)``, of the set's ephemeral type (so mutations see it).

    Prints as ``repr(float)``, so ``str(tree)`` parses back to the same nodes.
    """
    eph_cls = next(t for t in ps.terminals[ps.ret] if isinstance(t, type))
    node = eph_cls.__new__(eph_cls)  # skip __init__, which would draw a random value
    node.value = float(value)
    return node
