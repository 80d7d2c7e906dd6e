"""The hall of fame: the best distinct losses trained at full budget, one per behaviour (and niche).

What ``hall_of_fame.csv``, the checkpoint, the transfer stage and ``best.py`` read. Admission:
full-budget ``ok`` scores only; one entry per canonical form and per fingerprint (a positively
scaled or shifted copy trains the same); with ``radius`` one entry per niche
(:func:`gp_search.engine.diversity.diverse`); with ``hard_examples`` only losses that pass
:func:`gp_search.engine.screen.hard_examples`.
"""

from __future__ import annotations

import bisect

from gp_search.engine import diversity
from gp_search.engine import screen
from gp_search.engine.score import Score
from gp_search.lang import LossExpr, parse


def _hof_key(entry: dict) -> tuple:
    return (-entry["fitness"], entry["size"], entry["canonical"])


class HallOfFame:
    """The best distinct losses trained at full budget, best first (ties: smaller).

    Keyed by canonical form, and by fingerprint too, so a loss and its positively scaled or
    shifted copy (the same training signal) take one place, the first found.

    Not DEAP's ``tools.HallOfFame``: that keeps individuals, deduplicates by tree equality and
    admits any evaluated one; this keeps JSON-ready records (what ``hall_of_fame.csv`` and the
    checkpoint hold), admits only full-budget ``ok`` scores, deduplicates by behaviour and
    breaks fitness ties by size, then canonical text.
    """

    def __init__(self, size: int, entries: list[dict] | None = None, radius: float = 0.0,
                 hard_examples: bool = False):
        self.size, self.radius = size, radius
        self.hard_examples = hard_examples
        self.entries: list[dict] = list(entries or [])
        self._hard: dict[str, bool] = {}  # canonical -> passes screen.hard_examples (memo)

    def _admissible(self, expr: LossExpr) -> bool:
        """With ``hard_examples``: only losses whose gradient survives on hard examples
        (:func:`gp_search.engine.screen.hard_examples`)."""
        if not self.hard_examples:
            return True
        key = expr.canonical
        if key not in self._hard:
            self._hard[key] = screen.hard_examples(expr).passed
        return self._hard[key]

    @staticmethod
    def _parse(prefix: str) -> LossExpr:
        return parse(prefix, "auto")  # the behaviour does not depend on the set

    def update(self, exprs: list[LossExpr], scores: list[Score]) -> None:
        seen = {e["canonical"] for e in self.entries} | {e.get("fingerprint") for e in self.entries}
        # A candidate strictly worse than the size-th best entry so far can never make the cut
        # (entries only get better): skip it before computing its canonical form and fingerprint
        # (SymPy and torch, several ms), which dominate when scoring is cheap.
        best = sorted((e["fitness"] for e in self.entries), reverse=True)[: self.size]
        for expr, s in zip(exprs, scores):
            if s.status != "ok" or s.fidelity != "full":
                continue
            if len(best) >= self.size and s.fitness < best[-1]:
                continue
            key, fp = expr.canonical, expr.fingerprint
            if key in seen or fp in seen:  # one entry per behaviour: no scaled/shifted copies
                continue
            if not self._admissible(expr):
                continue
            seen.update((key, fp))
            self.entries.append({"fitness": s.fitness, "std": s.std, "n": s.n, "canonical": key,
                                 "infix": expr.infix, "prefix": expr.prefix, "size": expr.size,
                                 "fingerprint": fp})
            if not self.radius:  # with niching, an entry may yet give way to a better neighbour
                bisect.insort(best, s.fitness, key=lambda f: -f)
                del best[self.size:]
        self.entries.sort(key=_hof_key)
        # One entry per niche: a loss within ``radius`` of a better entry is left out
        # (:func:`gp_search.engine.diversity.diverse`); every entry states its distance.
        self.entries = diversity.diverse(self.entries, self.radius, self._parse)
        del self.entries[self.size:]
