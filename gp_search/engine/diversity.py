"""Behavioural distance between losses, and the two rules built on it: clearing and a diverse hall of fame.

The distance between two losses is the Euclidean distance between their behaviours
(:meth:`gp_search.lang.expr.LossExpr.behaviour`: the logit gradient on the fixed probe set,
scaled to unit norm), so it lies in ``[0, 2]``: 0 for the same training signal (a loss and its
positively scaled or shifted copy), ``sqrt(2)`` for orthogonal signals, 2 for opposite ones. A
loss whose gradient vanishes or is not finite on the probes has no direction: it is at distance
2 from everything (never a neighbour).

What the distances look like (``tests/engine/test_diversity.py`` checks them): the quick preset's old
top 5, ``exp(-c*y_pred*y_real*cos(y_real))`` for c = 4.9 ... 13.4, lie within 0.3 of each
other; CE, NGL, label smoothing and focal loss lie 0.3 or more apart.

* **clearing** (Pétrowski 1996, capacity 1): going through the population best first, an
  individual within ``radius`` of a better one that kept its fitness is *cleared*: selection sees
  it at the worst fitness, so tournaments pick among niche winners instead of among constant
  variants of one loss.
* **hall of fame**: the same rule on the hall of fame (:func:`diverse`): an entry within
  ``radius`` of a better entry is left out, so its top entries are alternatives, not one loss
  with several constants.

Behaviours are computed once per tree (prefix text) and memoised (a few ms each).
"""

from __future__ import annotations

import numpy as np

from gp_search.lang import ExprError, LossExpr

FAR = 2.0
"""The distance of a loss without a direction (vanishing or non-finite gradient) to any other."""

_BEHAVIOUR: dict[tuple[str, str], np.ndarray | None] = {}  # (set, prefix) -> behaviour


def behaviour(expr: LossExpr) -> np.ndarray | None:
    """The unit-norm logit gradient on the probes, or None when it has no direction."""
    key = (expr.primitive_set, expr.prefix)
    if key not in _BEHAVIOUR:
        try:
            b = expr.behaviour()
        except (ExprError, RuntimeError, ValueError, OverflowError, ZeroDivisionError):
            b = None
        _BEHAVIOUR[key] = None if b is None or np.isnan(b).any() or not b.any() else b
    return _BEHAVIOUR[key]


def distance(a: LossExpr, b: LossExpr) -> float:
    """Behavioural distance in ``[0, 2]`` (module docstring)."""
    u, v = behaviour(a), behaviour(b)
    if u is None or v is None:
        return FAR
    return float(np.linalg.norm(u - v))


def clearing(exprs: list[LossExpr], fitness: list[float], radius: float) -> list[bool]:
    """Which individuals are cleared: within ``radius`` of a better one that was not cleared.

    Args:
        exprs: the population's losses.
        fitness: their (penalised) fitness, higher better; ties keep population order.
        radius: the niche radius (0: nobody is cleared).

    Returns:
        One flag per individual, True where selection should see the worst fitness.
    """
    cleared = [False] * len(exprs)
    if radius <= 0:
        return cleared
    winners: list[int] = []
    for i in sorted(range(len(exprs)), key=lambda i: -fitness[i]):
        if any(distance(exprs[i], exprs[w]) < radius for w in winners):
            cleared[i] = True
        else:
            winners.append(i)
    return cleared


def diverse(entries: list[dict], radius: float, parse) -> list[dict]:
    """The hall of fame's entries (best first) less each one within ``radius`` of a better kept
    one; each kept entry gets ``nearest``, its distance to the nearest better kept entry (2 for
    the first). ``parse(prefix)`` rebuilds an entry's loss."""
    kept: list[tuple[dict, LossExpr]] = []
    for e in entries:
        expr = parse(e["prefix"])
        d = min((distance(expr, k) for _, k in kept), default=FAR)
        if radius > 0 and d < radius:
            continue
        kept.append(({**e, "nearest": round(d, 4)}, expr))
    return [e for e, _ in kept]


def nearest(entries: list[dict], parse) -> list[float]:
    """For each entry, its distance to the nearest better entry (2 for the first)."""
    exprs = [parse(e["prefix"]) for e in entries]
    return [min((distance(x, y) for y in exprs[:i]), default=FAR) for i, x in enumerate(exprs)]
