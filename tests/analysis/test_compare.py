"""Comparison of losses: ECE by hand, the table's statistics, the replay, the loss list."""

import math

import numpy as np
import pytest

from gp_search import proxies
from gp_search.analysis.compare import (
    DEFAULT_LOSSES,
    LossEntry,
    compare,
    loss_entries,
    replay,
    run_best,
)
from gp_search.proxies import ece, reliability
from gp_search.parallel.evaluate import evaluate
from gp_search.lang.losses import resolve
from gp_search.proxies.train import train_one

SEEDS = 3


@pytest.fixture(scope="module")
def small():
    """CE, NGL, focal and a loss that is rejected (ignores y_pred) on synthetic-mlp, 3 seeds."""
    return compare(["ce", "ngl", "focal", "y_real"], proxies=["synthetic-mlp"], seeds=SEEDS)


# --- ECE -----------------------------------------------------------------------------------------

def test_ece_by_hand():
    # 15 bins: 0.95 falls in (14/15, 1], 0.55 in (8/15, 9/15].
    # Bin 14: 4 samples, accuracy 3/4, confidence 0.95 -> |0.75 - 0.95| * 4/6 = 0.1333…
    # Bin 8: 2 samples, accuracy 1/2, confidence 0.55 -> |0.50 - 0.55| * 2/6 = 0.0166…
    conf = [0.95, 0.95, 0.95, 0.95, 0.55, 0.55]
    correct = [True, True, True, False, True, False]
    assert ece(conf, correct) == pytest.approx(0.2 * 4 / 6 + 0.05 * 2 / 6, abs=1e-12)
    assert ece(conf, correct) == pytest.approx(0.15, abs=1e-12)


def test_ece_calibrated_extremes_and_empty():
    assert ece([1.0, 1.0], [True, True]) == 0.0  # 1.0 is in the last bin, not past it
    assert ece([0.5, 0.5], [True, False]) == pytest.approx(0.0)
    assert ece([0.9], [False]) == pytest.approx(0.9)
    assert math.isnan(ece([], []))


def test_reliability_bins_edges_and_counts():
    rows = reliability([0.4, 0.40001, 1 / 15, 1.0], [True, False, True, True])
    assert len(rows) == 15 and [r["count"] for r in rows].count(0) == 11
    # Bin i holds i/15 < c <= (i+1)/15: 0.4 = 6/15 closes bin 5; 1/15 closes bin 0.
    assert rows[5]["count"] == 1 and rows[6]["count"] == 1 and rows[0]["count"] == 1
    assert rows[14]["accuracy"] == 1.0 and math.isnan(rows[3]["accuracy"])
    with pytest.raises(ValueError, match="same length"):
        reliability([0.5], [True, False])


# --- the table -----------------------------------------------------------------------------------

def _row(cmp, loss):
    return next(r for r in cmp.rows if r["loss"] == loss)


def test_ce_row_has_zero_change(small):
    ce = _row(small, "ce")
    assert ce["diff_vs_ce"] == 0 and ce["diff_ci_low"] == 0 and ce["diff_ci_high"] == 0
    assert ce["p_value"] == 1.0 and ce["n"] == SEEDS and ce["n_pairs"] == SEEDS


def test_rows_statistics_and_n(small):
    assert [r["loss"] for r in small.rows] == ["ce", "ngl", "focal", "y_real"]
    for loss in ("ngl", "focal"):
        r = _row(small, loss)
        assert r["n"] == SEEDS and r["n_pairs"] == SEEDS and r["not_ok"] == ""
        assert 0.0 <= r["p_value"] <= 1.0
        assert r["diff_ci_low"] <= r["diff_vs_ce"] <= r["diff_ci_high"]
        assert r["acc_ci_low"] <= r["acc_mean"] <= r["acc_ci_high"]
        assert r["replay_agree"] == f"{SEEDS}/{SEEDS}"
        assert 0.0 <= r["ece_mean"] <= 1.0 and 0.1 <= r["top_median"] <= 1.0


def test_failed_loss_is_counted_not_crashed(small):
    r = _row(small, "y_real")  # does not depend on y_pred: rejected, never trained
    assert r["n"] == 0 and r["n_pairs"] == 0 and r["not_ok"] == f"rejected x{SEEDS}"
    assert math.isnan(r["acc_mean"]) and math.isnan(r["p_value"]) and r["replay_agree"] == "0/0"
    assert small.calibration[("synthetic-mlp", "y_real")]["top"].size == 0


def test_accuracies_are_the_standard_paths(small):
    direct = evaluate(["ce", "ngl", "focal"], proxy="synthetic-mlp", seeds=SEEDS, device="cpu")
    got = [r.accuracy for loss in ("ce", "ngl", "focal")
           for r in small.results[("synthetic-mlp", loss)]]
    assert got == [r.accuracy for r in direct]
    assert _row(small, "ngl")["acc_mean"] == pytest.approx(np.mean(got[SEEDS:2 * SEEDS]))


def test_calibration_data_shapes(small):
    cal = small.calibration[("synthetic-mlp", "ngl")]
    assert cal["top"].shape == cal["correct"].shape == (SEEDS * 500,)  # 500 test samples
    assert np.all((cal["top"] >= 0.1 - 1e-6) & (cal["top"] <= 1.0 + 1e-6))  # >= 1/K, K = 10
    assert cal["replay_accuracy"] == [r.accuracy for r in small.results[("synthetic-mlp", "ngl")]]


@pytest.mark.parametrize("loss", ["ce_l2", "exp(-y_pred*y_real) + sin(y_pred)"])
def test_replay_equals_train_one(loss):
    spec = proxies.get("synthetic-mlp").spec
    got = replay(spec, resolve(loss), seed=4)
    want = train_one(spec, resolve(loss), seed=4)
    assert want.ok and got["accuracy"] == want.accuracy
    assert got["top"].shape == got["correct"].shape == (500,)


def test_compare_needs_ce_and_unique_labels():
    with pytest.raises(ValueError, match="must include 'ce'"):
        compare(["ngl", "focal"], proxies=["synthetic-mlp"], seeds=2)
    with pytest.raises(ValueError, match="unique"):
        compare(["ce", LossEntry("ce", "ngl")], proxies=["synthetic-mlp"], seeds=2)
    with pytest.raises(ValueError, match="unknown proxy"):
        compare(["ce"], proxies=["no-such-proxy"], seeds=2)


# --- which losses --------------------------------------------------------------------------------

def test_loss_entries_defaults_extras_and_errors(tmp_path):
    entries = loss_entries()
    assert [e.label for e in entries] == list(DEFAULT_LOSSES) and entries[0].label == "ce"
    entries = loss_entries(["ngl", "exp(-y_pred*y_real)"], baselines=["ngl", "ce"])
    assert [e.label for e in entries] == ["ce", "ngl", "exp(-y_pred*y_real)"]
    assert entries[-1].origin == "--loss"
    with pytest.raises(ValueError, match="must include 'ce'"):
        loss_entries(baselines=["ngl"])
    with pytest.raises(ValueError, match="unknown baseline"):
        loss_entries(baselines=["ce", "nope"])
    with pytest.raises(ValueError):
        loss_entries(["exp(y_pred"])  # an ExprError is a ValueError
    with pytest.raises(ValueError, match="not a run directory"):
        run_best(tmp_path / "missing")

