"""Calibration: the ECE by hand, temperature scaling on a fixture, the figures of a training."""

import math

import pytest
import torch

from gp_search import proxies
from gp_search.proxies import calibration as C


def test_ece_equals_a_hand_computed_value():
    # Bins of width 1/15, bin i holding i/15 < c <= (i+1)/15: 0.95 in bin 14, 0.9 in bin 13,
    # and 0.6 (= 9/15, on an edge) and 0.55 (8.25/15) both in bin 8.
    conf = [0.95, 0.9, 0.6, 0.55]
    correct = [True, False, True, False]
    # Bin 14: |1 - 0.95| = 0.05, weight 1/4; bin 13: |0 - 0.9| = 0.9, weight 1/4;
    # bin 8: confidence 0.575, accuracy 0.5 -> 0.075, weight 2/4.
    want = 0.25 * 0.05 + 0.25 * 0.9 + 0.5 * 0.075
    assert C.ece(conf, correct) == pytest.approx(want, abs=1e-12)
    assert math.isnan(C.ece([], []))
    with pytest.raises(ValueError, match="same length"):
        C.ece([0.5], [True, False])


def _fixture(scale: float):
    """Logits whose argmax is right 70 % of the time, sharpened by ``scale`` (> 1: too sure)."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (400,), generator=g)
    logits = torch.randn(400, 5, generator=g)
    right = torch.rand(400, generator=g) < 0.7
    logits[right, labels[right]] += 2.0
    return scale * logits, labels


def test_temperature_scaling_lowers_nll_and_undoes_over_confidence():
    logits, labels = _fixture(6.0)  # far too confident
    t = C.fit_temperature(logits, labels)
    assert t > 2  # it divides the over-confident logits down
    assert C.nll(logits, labels, t) < C.nll(logits, labels) - 0.1
    assert C.logits_ece(logits, labels, t) < C.logits_ece(logits, labels) / 2
    figures = C.measure(logits, labels)
    assert figures["ece_scaled"] < figures["ece"] / 2 and figures["temperature"] > 2
    # Temperature scaling never changes a prediction.
    assert torch.equal((logits / t).argmax(1), logits.argmax(1))
    under = C.measure(*_fixture(0.2))  # capped confidence: T below 1 undoes it
    assert under["temperature"] < 1 and under["ece_scaled"] < under["ece"]


def test_measure_is_nan_where_there_is_nothing_to_measure():
    logits, labels = _fixture(1.0)
    bad = logits.clone()
    bad[0, 0] = float("nan")
    assert all(math.isnan(v) for v in C.measure(bad, labels).values())
    assert all(math.isnan(v) for v in C.measure(torch.randn(2, 3, 4, 4), labels[:2]).values())


def test_a_test_split_training_reports_its_calibration_and_a_search_training_does_not():
    test = proxies.get("synthetic-mlp", steps=30).evaluate("ngl", seed=0)
    assert 0 <= test.ece <= 1 and 0 <= test.ece_scaled <= 1 and test.temperature > 0
    val = proxies.get("synthetic-mlp", steps=30, split="val").evaluate("ngl", seed=0)
    assert math.isnan(val.ece) and math.isnan(val.temperature)
    # The population path measures the same figures (rounded: equal across paths).
    many = proxies.get("synthetic-mlp", steps=30).evaluate_many(["ngl", "ce"], 0, batched=True)
    assert many[0].ece == pytest.approx(test.ece, abs=1e-4)
    assert many[0].temperature == pytest.approx(test.temperature, rel=1e-3)
