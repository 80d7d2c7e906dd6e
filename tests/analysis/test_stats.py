"""Statistics for comparing losses: summaries with t-intervals and paired tests, against SciPy."""

import math

import numpy as np
import pytest
from scipy import stats

from gp_search.analysis.stats import paired, summarize


def test_summarize_matches_the_textbook_interval():
    x = [0.744, 0.731, 0.758, 0.749, 0.738]
    s = summarize(x)
    assert s["n"] == 5 and math.isclose(s["mean"], np.mean(x))
    assert math.isclose(s["std"], np.std(x, ddof=1))
    half = stats.t.ppf(0.975, 4) * np.std(x, ddof=1) / math.sqrt(5)
    assert math.isclose(s["ci_low"], np.mean(x) - half)
    assert math.isclose(s["ci_high"], np.mean(x) + half)
    wider = summarize(x, confidence=0.99)
    assert wider["ci_low"] < s["ci_low"] and wider["ci_high"] > s["ci_high"]


def test_summarize_leaves_out_failed_runs_and_handles_tiny_samples():
    s = summarize([0.8, float("nan"), 0.9, float("inf")])
    assert s["n"] == 2 and math.isclose(s["mean"], 0.85)
    one = summarize([0.7])
    assert one["n"] == 1 and one["mean"] == 0.7
    assert math.isnan(one["std"]) and math.isnan(one["ci_low"]) and math.isnan(one["ci_high"])
    none = summarize([])
    assert none["n"] == 0 and math.isnan(none["mean"])


def test_paired_matches_scipy_ttest_rel():
    a = [0.84, 0.85, 0.83, 0.80, 0.86]
    b = [0.78, 0.80, 0.77, 0.79, 0.79]
    r = paired(a, b)
    ref = stats.ttest_rel(a, b)
    assert r["n"] == 5 and math.isclose(r["p_value"], ref.pvalue)
    assert math.isclose(r["diff"], np.mean(np.subtract(a, b)))
    assert r["ci_low"] < r["diff"] < r["ci_high"] and r["ci_low"] > 0  # significant: CI excludes 0
    swapped = paired(b, a)
    assert math.isclose(swapped["diff"], -r["diff"])
    assert math.isclose(swapped["p_value"], r["p_value"])


def test_paired_drops_incomplete_pairs_and_edge_cases():
    r = paired([0.9, float("nan"), 0.8, 0.7], [0.8, 0.5, float("nan"), 0.6])
    assert r["n"] == 2 and math.isclose(r["diff"], 0.1)
    assert paired([0.5, 0.6], [0.5, 0.6])["p_value"] == 1.0  # identical: no difference at all
    assert paired([0.75, 0.5], [0.5, 0.25])["p_value"] == 0.0  # the same gap on every seed
    assert math.isnan(paired([0.6], [0.5])["p_value"])
    with pytest.raises(ValueError, match="same length"):
        paired([0.1, 0.2], [0.1])
