"""The primitive table's derivative views: each row's gradient column applied, and NumPy
derivatives derived from each row's SymPy column.

:func:`gradients` is what the population trainings' gradient kernels compute, callable one
primitive at a time (``tests/lang/test_primitives.py`` checks it against torch autograd);
:func:`numpy_derivatives` serves the rediscovery's behavioural distance
(:mod:`gp_search.rediscovery.behaviour`). No derivative is written by hand twice: the gradient
column is the table's, the NumPy forms come from ``sympy.diff``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import sympy
import torch

from gp_search.lang.primitives import row


def gradients(name: str, g: torch.Tensor, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gradients of a primitive's arguments by its ``torch_grad`` column.

    Args:
        name: the primitive.
        g: the gradient of its value (broadcastable to the value's shape).
        args: its arguments, as tensors.

    Returns:
        One gradient per argument; equal to torch autograd of ``torch_fn`` to rounding.

    Example:
        >>> x = torch.tensor([0.0, 1.0])
        >>> gradients("sin", torch.ones(2), x)[0]
        tensor([1.0000, 0.5403])
    """
    prim = row(name)
    y = prim.torch_fn(*args)
    return prim.torch_grad(g, *args, y, (True,) * prim.arity, (None,) * prim.arity)


_X = sympy.Symbol("x", real=True)
"""The table's own variable for the derivatives lambdified from the SymPy column."""


@functools.cache
def numpy_derivatives(name: str, order: int = 2) -> tuple[Callable, ...]:
    """A one-argument primitive and its derivatives as NumPy functions, from its SymPy form.

    Derived once per (name, order) by ``sympy.diff`` and ``sympy.lambdify`` of the table's own
    SymPy column (never of user text), so no derivative is written twice.

    Args:
        name: a one-argument primitive whose SymPy derivatives have NumPy forms (``exp``, ``sin``,
            ``cos``, ``tanh``, ``neg``, ``square``; ``abs`` to order 1).
        order: highest derivative.

    Returns:
        ``(f, f', …, f^(order))``, each mapping a float64 array to an array (a constant
        derivative returns a scalar, which broadcasts).

    Raises:
        ValueError: an unknown or two-argument primitive, or a derivative with no NumPy form.

    Example:
        >>> import math
        >>> f, d1, d2 = numpy_derivatives("cos")
        >>> float(d1(0.5)) == -math.sin(0.5)
        True
    """
    prim = row(name)
    if prim.arity != 1:
        raise ValueError(f"numpy_derivatives takes a one-argument primitive; {name!r} has "
                         f"{prim.arity} arguments")
    expr, out = prim.sympy_fn(_X), []
    for k in range(order + 1):
        fn = sympy.lambdify(_X, expr, modules="numpy")
        try:
            fn(np.array([0.5, -0.5]))
        except (NameError, TypeError) as exc:  # e.g. plog, or DiracDelta in abs''
            what = f"derivative {k} of {name!r} ({expr})" if k else f"{name!r}"
            raise ValueError(f"{what} has no NumPy form" + (f"; use order < {k}" if k else ""))\
                from exc
        out.append(fn)
        expr = sympy.diff(expr, _X)
    return tuple(out)


__all__ = ["gradients", "numpy_derivatives"]
