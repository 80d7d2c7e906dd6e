"""Proxy confirmation of a behavioural rediscovery: train it with NGL and test NGL's 95 % CI.

A behavioural find (gradient error ≤ tolerance on the probes) also counts only when, trained on
:data:`CONFIRM_PROXY` with seeds ``0 … CONFIRM_SEEDS − 1``, its mean accuracy lies within NGL's
95 % t-interval over the same seeds (the behavioural level of issue 5).
"""

from __future__ import annotations

import math

from gp_search.lang import NGL
from gp_search.analysis import summarize

CONFIRM_PROXY, CONFIRM_SEEDS = "mnist1d-cnn", 5


def within_ci(candidate: list[float], reference: list[float]) -> tuple[bool, dict, dict]:
    """Whether the candidate's mean accuracy lies within the reference's 95 % t-interval.

    Returns:
        ``(passed, candidate summary, reference summary)`` (:func:`gp_search.analysis.stats.summarize`).
    """
    cand, ref = summarize(candidate), summarize(reference)
    passed = ref["n"] >= 2 and cand["n"] == len(candidate) and \
        ref["ci_low"] <= cand["mean"] <= ref["ci_high"]
    return bool(passed), cand, ref


def confirm(outcomes: list, jobs: int = 2, proxy: str = CONFIRM_PROXY,
            seeds: int = CONFIRM_SEEDS) -> dict | None:
    """Train NGL and the loss of every outcome (:class:`gp_search.rediscovery.targeted.Outcome`) that
    reached the behavioural level on ``proxy`` with seeds ``0 … seeds−1`` (one batch of
    trainings), and set each outcome's ``confirmed``, ``accuracy`` and ``confirmation``: passed
    when its mean accuracy lies within NGL's 95 % t-interval. A behavioural (not exact) outcome
    that fails drops to level ``none``.

    Returns:
        NGL's accuracy summary, or ``None`` when no outcome needed confirming.
    """
    from gp_search.parallel import evaluate

    todo = [o for o in outcomes if o.behavioural_generation is not None and o.loss]
    if not todo:
        return None
    texts = [NGL.prefix] + sorted({o.loss for o in todo})
    results = evaluate(texts, proxy=proxy, seeds=seeds, jobs=jobs)
    acc = {t: [r.accuracy if r.status == "ok" else math.nan
               for r in results[i * seeds:(i + 1) * seeds]] for i, t in enumerate(texts)}
    for o in todo:
        passed, cand, ref = within_ci(acc[o.loss], acc[NGL.prefix])
        o.confirmed, o.accuracy = passed, cand["mean"]
        o.confirmation = (f"{proxy}: {cand['mean']:.4f} vs NGL {ref['mean']:.4f} "
                          f"[{ref['ci_low']:.4f}, {ref['ci_high']:.4f}] (95 % CI, n = {seeds} "
                          f"seeds): {'within' if passed else 'outside'}")
        if not passed and o.level == "behavioural":
            o.level, o.generation, o.seconds = "none", None, None
    return summarize(acc[NGL.prefix])
