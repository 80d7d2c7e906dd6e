"""Fitness from per-task accuracies: the aggregates (mean accuracy, mean delta to CE, soft minimum).

The scorer (:mod:`gp_search.engine.scoring`) trains; this module only combines what the
trainings gave: ``by_proxy[k][s]``, the held-out accuracy on task ``k`` with seed ``s``, and for
the delta aggregates CE's accuracies in the same layout. Why a soft minimum: see
:func:`softmin` and the scoring module's docstring.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from gp_search.core import AGGREGATES, Aggregate

WORST = 0.0
"""Fitness of a failed candidate under ``weighted-mean-accuracy`` (no accuracy is lower)."""
WORST_DELTA = -1.0
"""Fitness of a failed candidate under a delta aggregate (no accuracy delta can be lower)."""

def describe(how: str, where: str) -> str:
    """In words, what fitness ``how`` measures on the ``where`` split (reports, summaries)."""
    return {Aggregate.WEIGHTED_MEAN_ACCURACY: f"mean {where} accuracy",
            Aggregate.MEAN: f"mean {where} accuracy minus CE's",
            Aggregate.SOFTMIN: f"soft minimum over tasks of {where} accuracy minus CE's"}[how]


def per_seed_fitness(by_proxy: list, weights: list) -> np.ndarray:
    """The fitness of one candidate for each training seed: the weighted mean over proxies of
    its accuracies (``by_proxy[k][s]``: proxy ``k``, seed ``s``; ``weights``: normalised, as
    :meth:`SearchConfig.weights`). The search's fitness is the mean over seeds."""
    per_seed = np.zeros(len(by_proxy[0]))
    for weight, accuracies in zip(weights, by_proxy):  # in proxy order: the same rounding always
        per_seed += weight * np.array(accuracies, dtype=float)
    return per_seed


def softmin(values, weights, temperature: float) -> float:
    """``-tau * log(sum_i w_i * exp(-v_i / tau))``: between ``min(values)`` and the weighted
    mean, within ``tau * log(1 / min(w))`` of the minimum (``weights`` normalised)."""
    v = np.asarray(values, dtype=float)
    return float(-temperature * logsumexp(-v / temperature, b=np.asarray(weights, dtype=float)))


def aggregate(by_proxy: list, weights: list, how: str = "weighted-mean-accuracy",
              reference: list | None = None, temperature: float = 0.02) -> tuple[float, float]:
    """One candidate's fitness and its spread over seeds.

    Args:
        by_proxy: accuracies, ``by_proxy[k][s]`` for task ``k`` and seed ``s``.
        weights: normalised task weights (:meth:`SearchConfig.weights`).
        how: one of :data:`AGGREGATES`.
        reference: CE's accuracies in the same layout (needed unless ``how`` is
            ``weighted-mean-accuracy``).
        temperature: ``softmin``'s tau.

    Returns:
        ``(fitness, std)``: std is over seeds of the per-seed fitness (the aggregate of one
        seed's results; 0 with one seed).

    Example:
        >>> aggregate([[0.9], [0.5]], [0.5, 0.5], "mean", [[0.8], [0.6]])
        (0.0, 0.0)
    """
    if how not in AGGREGATES:
        raise ValueError(f"fitness aggregate must be one of {', '.join(AGGREGATES)}, got {how!r}")
    if how == Aggregate.WEIGHTED_MEAN_ACCURACY:
        per_seed = per_seed_fitness(by_proxy, weights)
        fitness = float(per_seed.mean())
    else:
        deltas = np.array(by_proxy, dtype=float) - np.array(reference, dtype=float)
        if how == Aggregate.MEAN:
            per_seed = per_seed_fitness(deltas, weights)
            fitness = float(per_seed.mean())
        else:  # the soft minimum of the tasks' mean deltas (not the mean of per-seed minima)
            per_seed = np.array([softmin(deltas[:, s], weights, temperature)
                                 for s in range(deltas.shape[1])])
            fitness = softmin(deltas.mean(axis=1), weights, temperature)
    std = float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0
    return fitness, std


def softmin_bound(delta: float, weight: float, temperature: float) -> float:
    """The most :func:`softmin` can be, whatever the other tasks give, once one task (weight
    ``weight``, normalised) has mean delta ``delta``: ``delta + tau * log(1 / weight)``
    (the sum inside the logarithm is at least that task's term)."""
    return float(delta - temperature * np.log(weight))


__all__ = ["AGGREGATES", "WORST", "WORST_DELTA", "aggregate", "per_seed_fitness", "softmin",
           "softmin_bound"]
