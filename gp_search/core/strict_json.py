"""Strict JSON out: what a run or results file may hold (no NaN or infinity, no tuples).

JSON has no NaN or infinity; Python's ``json`` writes them as bare ``NaN``/``Infinity`` that
other readers refuse (and that gp-search's own readers refuse too). A number nothing measured
is written as ``null`` instead.

Example:
    >>> json_safe({"mean": float("nan"), "ci": (0.5, float("inf")), "n": 3})
    {'mean': None, 'ci': [0.5, None], 'n': 3}
"""

from __future__ import annotations

import math


def json_safe(value):
    """``value`` with every non-finite float as None and tuples as lists, at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = ["json_safe"]
