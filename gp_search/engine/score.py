"""The scorer seam: what a scorer returns (:class:`Score`), what it is given (:class:`ProxyRef`,
an :data:`Evaluator`) and what it must offer the search (:class:`ScorerProtocol`).

:class:`gp_search.engine.scoring.Scorer` (proxy trainings) and
``gp_search.rediscovery.scorer.BehaviourScorer`` (behavioural distance to a target) implement it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Protocol, runtime_checkable

from gp_search.core import Fidelity, Status
from gp_search.lang import LossExpr
from gp_search.proxies import EvalResult

Evaluator = Callable[[list[str], str, list[int], int], list[EvalResult]]
"""``(loss_texts, proxy_name, seeds, steps) -> results`` in loss-major order."""


@dataclass(frozen=True)
class Score:
    """The fitness of one canonical form.

    Attributes:
        fitness: raw fitness (as :func:`aggregate` makes it), the scorer's worst (``WORST``
            or ``WORST_DELTA``) for any failure.
        std: standard deviation over seeds of the per-seed fitness.
        n: seeds per proxy.
        status: ``ok`` or the first failure status (``rejected``, ``nan``, …).
        fidelity: ``full`` or ``short`` (stopped by successive halving) or ``none`` (untrained).
        message: why, when not ok.
    """

    fitness: float
    std: float = 0.0
    n: int = 0
    status: str = Status.OK
    fidelity: str = Fidelity.FULL
    message: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProxyRef:
    """A proxy as the scorer needs it: name, cache key, full budget, weight."""

    name: str
    key: str
    steps: int
    weight: float


@runtime_checkable
class ScorerProtocol(Protocol):
    """What :class:`gp_search.engine.evolve.Search` needs of a scorer, and all it calls.

    Two implementations: :class:`gp_search.engine.scoring.Scorer` (proxy trainings, the
    search's) and
    ``gp_search.rediscovery.scorer.BehaviourScorer`` (behavioural distance to a target). Each
    defines every method below itself, with the same signature (structural typing: they do not
    inherit these stubs, so ``isinstance(x, ScorerProtocol)`` fails for one that lacks a method;
    a test checks both, signatures included).

    Contract:

    * :meth:`score` — one :class:`Score` per candidate, in order, and the counts by route
      (``rejected``, ``duplicate``, ``cached``, ``trained``, ``short``; ``seconds_training``
      optional). A bad candidate is a status in its Score, never an exception. ``halving=False``
      asks for every new candidate at the full budget (constant tuning); a scorer without
      budgets ignores it.
    * :meth:`accept` — would this tree be worth scoring? The search redraws initial trees and
      re-mutates offspring until it says yes (or the tries run out). Cheap; no training.
    * :meth:`rewrite` — called right after :meth:`score` on the same batch: for each candidate,
      the tree (node list) its score belongs to, or ``None`` when it is the candidate's own.
      A scorer that fits constants or simplifies trees returns them here, and the individual
      takes them over (Lamarckian); one that does not returns ``None`` for each.
    * :meth:`state` / :meth:`restore` — the scorer's memory as JSON-ready data for the
      checkpoint, and back; ``restore({})`` is a fresh scorer.
    """

    def score(self, exprs: list[LossExpr], halving: bool = True) -> tuple[list[Score], dict]:
        """Score a batch of candidates; see the class contract."""
        ...

    def accept(self, expr: LossExpr) -> bool:
        """Whether a tree is usable (initial trees, repaired offspring)."""
        ...

    def rewrite(self, exprs: list[LossExpr]) -> list[list | None]:
        """The tree each score of the last :meth:`score` belongs to (``None``: unchanged)."""
        ...

    def state(self) -> dict:
        """The scorer's memory for the checkpoint (JSON-ready)."""
        ...

    def restore(self, state: dict) -> None:
        """Take back what :meth:`state` gave."""
        ...


__all__ = ["Evaluator", "ProxyRef", "Score", "ScorerProtocol"]
