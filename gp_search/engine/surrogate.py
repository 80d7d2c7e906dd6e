"""The surrogate: a new tree's fitness predicted from the scored trees nearest in behaviour, before any training.

With ``SearchConfig.surrogate = s > 1``, GP breeds ``s`` times the offspring it needs each
generation and trains only the ``1/s`` whose predicted fitness is highest (the immigrants are
not filtered: they stay exploration). The prediction is a k-nearest-neighbour regression on the
behaviour every loss already has (:func:`gp_search.engine.diversity.behaviour`: the unit-norm
logit gradient on the fixed probes, which the fitness cache's fingerprints are made of): the
inverse-distance weighted mean fitness of the :data:`K` scored trees nearest to it, every
trained score counted (short-budget ones included, failures at the scorer's worst). A tree at
distance 0 from a scored one (the same training signal) is predicted at that one's fitness; a
tree without a direction (vanishing or non-finite gradient) ranks last.

No randomness and no training: the choice depends only on the trees and what was scored
before, so it is the same for any number of workers, and the scored list is checkpointed
(prefix and fitness), so a resumed run chooses as an unbroken one would.
"""

from __future__ import annotations

import numpy as np

from gp_search.engine.diversity import behaviour
from gp_search.lang import LossExpr

K = 5
"""Neighbours a prediction averages."""
EPS = 1e-9
"""Distances below this count as the same behaviour."""


class Surrogate:
    """The scored trees' behaviours and fitnesses, and predictions from them."""

    def __init__(self, k: int = K):
        self.k = k
        self.seen: list[tuple[str, str, float]] = []  # (primitive set, prefix, fitness)
        self._rows: list[np.ndarray] = []
        self._fitness: list[float] = []

    def add(self, expr: LossExpr, fitness: float) -> None:
        """Remember a scored tree (one without a direction is left out: it predicts nothing)."""
        b = behaviour(expr)
        if b is None or not np.isfinite(fitness):
            return
        self.seen.append((expr.primitive_set, expr.prefix, float(fitness)))
        self._rows.append(b.ravel())
        self._fitness.append(float(fitness))

    def predict(self, exprs: list[LossExpr]) -> np.ndarray:
        """Predicted fitness per tree (``-inf`` without a direction; 0 before anything scored)."""
        out = np.full(len(exprs), -np.inf)
        if not self._rows:
            out[:] = 0.0
            return out
        table, fit = np.stack(self._rows), np.asarray(self._fitness)
        for i, expr in enumerate(exprs):
            b = behaviour(expr)
            if b is None:
                continue
            d = np.linalg.norm(table - b.ravel(), axis=1)
            near = np.argsort(d, kind="stable")[: self.k]
            if d[near[0]] < EPS:
                out[i] = fit[near[0]]
                continue
            w = 1.0 / d[near]
            out[i] = float(w @ fit[near] / w.sum())
        return out

    def choose(self, exprs: list[LossExpr], n: int) -> list[int]:
        """Indices of the ``n`` trees predicted best, in their original order (ties: earlier)."""
        pred = self.predict(exprs)
        best = sorted(range(len(exprs)), key=lambda i: (-pred[i], i))[:n]
        return sorted(best)

    def state(self) -> list[list]:
        return [list(s) for s in self.seen]

    @classmethod
    def restore(cls, seen: list[list], parse) -> "Surrogate":
        """Rebuild from :meth:`state`; ``parse(prefix, primitive_set)`` makes the tree."""
        s = cls()
        for pset, prefix, fitness in seen:
            s.add(parse(prefix, pset), fitness)
        return s
