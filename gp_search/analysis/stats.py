"""Statistics for comparing losses: mean, CI, paired tests.

Accuracies of one loss over seeds are summarised with a Student-t confidence interval; two losses
trained with the same seeds (common random numbers: same initial weights, same batches) are
compared pair by pair, seed against seed, which removes the seed-to-seed spread that both share.
Non-finite values (failed trainings report ``nan`` accuracy) are left out and ``n`` counts what
remains; callers report the failures separately.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st


def _finite(values) -> np.ndarray:
    a = np.asarray(list(values), dtype=float)
    return a[np.isfinite(a)]


def _t_interval(mean: float, std: float, n: int, confidence: float) -> tuple[float, float]:
    if n < 2:
        return math.nan, math.nan
    half = float(_st.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return mean - half, mean + half


def summarize(values: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean, sample standard deviation and t-interval of the finite ``values``.

    Args:
        values: e.g. one loss's accuracies over seeds; NaN/inf entries are left out.
        confidence: level of the interval.

    Returns:
        ``{"mean", "std", "n", "ci_low", "ci_high"}``; ``std`` (ddof 1) and the interval are NaN
        for ``n < 2``, everything but ``n`` is NaN for ``n == 0``.

    Example:
        >>> s = summarize([0.80, 0.82, 0.84])
        >>> round(s["mean"], 3), s["n"], round(s["ci_low"], 3)
        (0.82, 3, 0.77)
    """
    a = _finite(values)
    n = len(a)
    mean = float(a.mean()) if n else math.nan
    std = float(a.std(ddof=1)) if n > 1 else math.nan
    low, high = _t_interval(mean, std, n, confidence)
    return {"mean": mean, "std": std, "n": n, "ci_low": low, "ci_high": high}


def paired(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Paired t-test of ``a - b`` over the pairs where both are finite (SciPy's ``ttest_rel``
    and its confidence interval, with a rule for differences that are all the same).

    Args:
        a: values of one loss, by seed.
        b: values of the other loss for the same seeds, in the same order.
        confidence: level of the interval for the mean difference.

    Returns:
        ``{"diff", "ci_low", "ci_high", "p_value", "n"}``: mean of ``a - b``, its t-interval,
        the two-sided p-value of the paired t-test (NaN for ``n < 2``; when every difference is
        the same, 1 if that is 0 and 0 otherwise, the limit of the t statistic), and the number
        of pairs.

    Raises:
        ValueError: ``a`` and ``b`` differ in length (they must be paired by seed).

    Example:
        >>> r = paired([0.84, 0.85, 0.83], [0.78, 0.80, 0.77])
        >>> round(r["diff"], 3), r["n"], r["p_value"] < 0.05
        (0.057, 3, True)
    """
    a, b = np.asarray(list(a), dtype=float), np.asarray(list(b), dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length (one per seed), got "
                         f"{len(a)} and {len(b)}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    diff = float((a - b).mean()) if n else math.nan
    if n < 2:
        return {"diff": diff, "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan,
                "n": n}
    if float((a - b).std(ddof=1)) == 0:  # t is 0/0 or ±inf: its limit, and a zero-width interval
        return {"diff": diff, "ci_low": diff, "ci_high": diff,
                "p_value": 1.0 if diff == 0 else 0.0, "n": n}
    with warnings.catch_warnings():  # nearly equal differences: SciPy warns of precision
        warnings.simplefilter("ignore", RuntimeWarning)  # loss; t is what the formula gives
        test = _st.ttest_rel(a, b)
    ci = test.confidence_interval(confidence)
    return {"diff": diff, "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p_value": float(test.pvalue), "n": n}
