"""The closed vocabularies: statuses, fidelities, routes, fitness aggregates, splits.

Each is a ``str`` enum (Optuna's ``TrialState`` habit, as a ``str`` mixin so a member *is* its
plain string): ``Status.OK == "ok"``, ``json.dumps(Status.OK) == '"ok"'`` and ``f"{Status.OK}"``
is ``ok``, so every JSON, CSV and SQLite file stays byte-identical to the files written with
plain strings. Defined here, in :mod:`gp_search.core` (which imports nothing else of the package),
so that every sub-package, the proxies included, can use them. A field's ``choices`` take the
plain tuples (:data:`AGGREGATES`, :data:`SPLITS`), so that messages quote ``'val'``, not the member.

Example:
    >>> Status("rejected") is Status.REJECTED and Status.REJECTED == "rejected"
    True
    >>> [str(f) for f in Fidelity]
    ['full', 'short', 'none']
"""

from __future__ import annotations

from enum import Enum


class _Word(str, Enum):
    """A ``str`` enum that prints and formats as its value (as ``enum.StrEnum`` does)."""

    __str__ = str.__str__
    __format__ = str.__format__


class Status(_Word):
    """What became of one evaluation (:class:`gp_search.proxies.spec.EvalResult`)."""

    OK = "ok"
    """Trained for the whole budget; the accuracy is meaningful."""
    REJECTED = "rejected"
    """Not trained: the loss cannot teach anything or failed screening."""
    NAN = "nan"
    """The loss or its gradient became non-finite."""
    DIVERGED = "diverged"
    """A parameter became non-finite or exploded."""
    TIMEOUT = "timeout"
    """The training passed its time limit."""
    ERROR = "error"
    """Anything else; the message says what."""


class Fidelity(_Word):
    """The budget a search score was measured with (:class:`gp_search.engine.scoring.Score`)."""

    FULL = "full"
    """The proxy's whole step budget."""
    SHORT = "short"
    """The short budget of successive halving (not promoted)."""
    NONE = "none"
    """Not trained (rejected before any training)."""


class Route(_Word):
    """How a candidate got its score in one generation (counted in ``generations.jsonl``)."""

    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    CACHED = "cached"
    TRAINED = "trained"
    SHORT = "short"


class Aggregate(_Word):
    """How per-task results make one fitness (:mod:`gp_search.engine.fitness`)."""

    WEIGHTED_MEAN_ACCURACY = "weighted-mean-accuracy"
    """The weighted mean of the tasks' accuracies."""
    MEAN = "mean"
    """The mean of each task's accuracy minus CE's on the same seeds."""
    SOFTMIN = "softmin"
    """A soft minimum over tasks of accuracy minus CE's."""


class Split(_Word):
    """What a proxy's score is measured on."""

    VAL = "val"
    """A fixed, stratified fifth of the training split, held out and not trained on."""
    TEST = "test"
    """The dataset's test split."""


AGGREGATES = tuple(a.value for a in Aggregate)
SPLITS = tuple(s.value for s in Split)

__all__ = ["AGGREGATES", "SPLITS", "Aggregate", "Fidelity", "Route", "Split", "Status"]
