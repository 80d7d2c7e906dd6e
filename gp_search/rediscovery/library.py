"""The term library of the targeted rediscovery: small constant-free trees as extra additive terms.

With term weights, adding a library tree to a candidate is one more least-squares column, so the
best term of the whole library is found by one matrix product (forward stepwise regression).
"""

from __future__ import annotations

import math

import numpy as np

from gp_search.lang import primitives as P
from gp_search.rediscovery.behaviour import BINARY, UNARY, Fit, Target

def enumerate_trees(max_size: int) -> list[list]:
    """Every tree over the paper primitives and the leaves ``y_pred``, ``y_real``, ``1`` (no
    free constants) with at most ``max_size`` nodes, smallest first (390 trees for 4 nodes)."""
    ps = P.pset("paper")
    leaves = [[ps.mapping[n]] for n in (P.PRED, P.REAL, "1")]
    unary = [ps.mapping[n] for n in UNARY]
    binary = [ps.mapping[n] for n in BINARY]
    by_size = {1: leaves}
    for size in range(2, max_size + 1):
        out = [[u] + t for u in unary for t in by_size[size - 1]]
        for left in range(1, size - 1):
            out += [[b] + a + c for b in binary for a in by_size[left]
                    for c in by_size[size - 1 - left]]
        by_size[size] = out
    return [t for size in range(1, max_size + 1) for t in by_size[size]]


class Library:
    """Small constant-free trees as candidate extra terms, their columns precomputed.

    With term weights, adding a term to a tree is one more least-squares column, so the best
    term of the whole library is found by one matrix product (forward stepwise regression).
    Trees whose columns are equal up to scale (``sub(p, p)``/``mul(1, p)``…) or that only add
    what the distance ignores (``p``, ``t``, constants) are dropped, the smallest kept.

    Args:
        target: the :class:`Target` (its probes and projections).
        max_size: largest library tree, in nodes.
    """

    def __init__(self, target: Target, max_size: int = 3):
        self.target = target
        trees, cols, seen = [], [], set()
        for nodes in enumerate_trees(max_size):
            got = target._columns([(nodes, 0)], None)
            if got is None:
                continue
            col = target._perp(got[0][0])
            norm = float(np.linalg.norm(col))
            if norm < 1e-8:
                continue
            unit = col / norm
            unit = unit * np.sign(unit[np.argmax(np.abs(unit) > 1e-6)])
            key = np.round(unit, 8).tobytes()
            if key in seen:
                continue
            seen.add(key)
            trees.append(nodes)
            cols.append(col)
        self.trees = trees
        self.cols = np.array(cols)

    def best_extension(self, tree, fit: Fit) -> tuple[list, float] | None:
        """The library tree whose addition as a new term lowers the residual most.

        Args:
            tree: a candidate (term weights on) measured with its constants ``fit.theta``.
            fit: its :class:`Fit`.

        Returns:
            ``(library tree nodes, distance with it added, weights refitted)``, or ``None``.
        """
        t = self.target
        got = t._columns(t._parts(tree), np.array(fit.theta) if fit.theta else None)
        if got is None:
            return None
        xp = t._perp(got[0])
        w, rss = t._solve(xp)
        basis = np.linalg.qr(xp.T)[0]
        lib = self.cols - (self.cols @ basis) @ basis.T
        den = np.einsum("ij,ij->i", lib, lib)
        gain = np.where(den > 1e-12 * t.rss0, (lib @ (t.y_perp - w @ xp)) ** 2
                        / np.maximum(den, 1e-300), 0.0)
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            return None
        # The residual itself, not rss − gain, which cancels to ~1e-19 for an exact fit.
        resid = t.y_perp - w @ xp
        resid = resid - (lib[j] @ resid) / den[j] * lib[j]
        return self.trees[j], math.sqrt(float(resid @ resid) / t.rss0)
