"""The bounded cost of SymPy work: a count of Python calls that no canonical form may exceed.

SymPy's automatic simplification is fast for nearly every loss, but its cost is not bounded by
the size of the tree, and a thread cannot be stopped from outside. :func:`within_budget` runs a
computation with a profile hook (``sys.setprofile``, which is per thread) that counts the
interpreter's call events; once ``SYMPY_BUDGET`` of them have passed it raises
:class:`OverBudget` at the next call of a plain (non-generator) function, in the computation's
own thread: the computation stops where it is, in whichever thread runs it (the main thread, a
loky or Dask worker), and nothing keeps running afterwards. Neither a second thread nor a
signal is used. :class:`OverBudget` is a ``BaseException``, which SymPy's ``except Exception``
clauses let through; code that caught it anyway would run on unbounded (Python unsets a profile
hook that raised), and none of SymPy's paths that the loss language reaches does.

Why a count, not a clock: a count does not depend on the machine's speed or load, so whether a
loss gets its SymPy form or the fallback key is the same on a laptop and on a loaded cluster,
and a search's dedup and cache keys stay reproducible. What the count costs in seconds is
measured, not assumed (see ``SYMPY_BUDGET``). SymPy's own caches can make a repeated
computation cheaper, so a loss whose count lies within a few percent of the budget could land
on either side in two processes with different histories; no loss a search or a user has
produced lies near it (the costliest of the fuzz's inputs use a fraction of it).

The hook sees Python calls only: a single long C call (a huge integer power, an mpmath
operation on an enormous exponent) would run to its end. :mod:`gp_search.lang.expr` therefore
refuses such operands structurally before SymPy sees them (numbers outside float64's range), and
the parser caps the size of what it admits (:data:`gp_search.lang.parsing.MAX_NODES`).

Under a profiler (cProfile sets the same hook) the budget is not enforced: the profiler keeps
its hook and the computation runs unbounded, as it does under a debugger.
"""

from __future__ import annotations

import inspect
import sys
import threading
from typing import Callable, TypeVar

T = TypeVar("T")

SYMPY_BUDGET = 2_000_000
"""Python call events (calls and returns, C calls included) one SymPy computation may take:
about 1.4 s on one core of the 2-core VM the project is tested on (1.5 million events per
second under the hook, measured on the fuzz's inputs). A canonical form that needs more gets
the fallback key (:mod:`gp_search.lang.expr`)."""


class OverBudget(BaseException):
    """Raised inside a computation that exceeded its budget.

    A ``BaseException``, so that SymPy's ``except Exception`` clauses cannot swallow it and carry
    on unbounded.
    """


_local = threading.local()
_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


def within_budget(fn: Callable[[], T], events: int | None = None) -> T:
    """Run ``fn()``; :class:`OverBudget` when it takes more than ``events`` call events.

    Nested calls share the outermost budget. With a profiler already installed in this thread,
    ``fn`` runs unbounded (the profiler keeps its hook).

    Args:
        fn: the computation, without arguments.
        events: the budget (default :data:`SYMPY_BUDGET`).

    Returns:
        ``fn()``'s value.

    Raises:
        OverBudget: the budget ran out; ``fn``'s work is abandoned where it stood.

    Example:
        >>> within_budget(lambda: sum(range(10)))
        45
    """
    if getattr(_local, "active", False) or sys.getprofile() is not None:
        return fn()
    left = [SYMPY_BUDGET if events is None else events]

    def count(frame, event, arg):
        left[0] -= 1
        # Raised only where it propagates: at the call of a plain function. In a generator's
        # frame it could be raised while the generator is being finalised, where Python ignores
        # it; and a profile function that raises is unset, so it would not come again.
        if left[0] < 0 and event == "call" and not frame.f_code.co_flags & _GENERATOR_FLAGS:
            raise OverBudget(f"more than {events or SYMPY_BUDGET} call events")

    _local.active = True
    sys.setprofile(count)
    try:
        return fn()
    finally:
        sys.setprofile(None)
        _local.active = False
