"""The words results are written in: evaluation statuses, scoring fidelities and scoring routes.

Each is a ``str`` enum (Optuna's ``TrialState`` habit, as a ``str`` mixin so a member *is* its
plain string): ``Status.OK == "ok"``, ``json.dumps(Status.OK) == '"ok"'`` and ``f"{Status.OK}"``
is ``ok``, so every JSON, CSV and SQLite file stays byte-identical to the files written with
plain strings. Defined here, in :mod:`gp_search.lang` (which imports nothing else of the package),
so that every sub-package, the proxies included, can use them.

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


__all__ = ["Fidelity", "Route", "Status"]
