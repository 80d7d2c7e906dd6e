"""Golden test: regenerate part of the shipped NGL-vs-baselines results and check the numbers.

What is regenerated: every default loss (CE, SCE, focal, CE+L2, PolyLoss-1, label smoothing,
NGL) on ``digits-mlp`` with seeds 0 and 1, through :func:`gp_search.analysis.compare.compare` exactly as
``results/ngl/regenerate.sh`` runs it (same losses, so the same population-batched path), and
compared with ``results/ngl/compare_seeds.csv``.

Tolerance: a training is deterministic per seed on CPU with one torch thread, so on the machine
that produced the files (``results/ngl/env.json``'s fingerprint equals this one's) every number
must be equal. Another CPU (or no fingerprint recorded) may use other SIMD kernels, whose float
rounding can flip a borderline test prediction; we allow
:func:`gp_search.core.environment.cross_cpu_tolerance` for an MLP: one test image (1/360 of
accuracy, 0.28 percentage points) per training, and 0.01 on ECE and on the mean top probability
(one flipped image moves ECE by at most about 2/360). A real change to a proxy, the training or
a loss moves several images in at least one of the 14 trainings.
"""

import csv
import math

import pytest
from conftest import ROOT

from gp_search.analysis.compare import DEFAULT_LOSSES, compare
from gp_search.core.environment import cross_cpu_tolerance, read_fingerprint, same_machine

SHIPPED = ROOT / "results" / "ngl"
PROXY, SEEDS, N_TEST = "digits-mlp", (0, 1), 360
SAME_MACHINE = same_machine(read_fingerprint(SHIPPED))
TOL_ACCURACY = 0.0 if SAME_MACHINE else cross_cpu_tolerance("mlp", N_TEST) + 1e-9
TOL_CALIBRATION = 0.0 if SAME_MACHINE else 0.01


def _shipped_rows() -> list[dict]:
    path = SHIPPED / "compare_seeds.csv"
    assert path.exists(), f"{path} is missing: run results/ngl/regenerate.sh"
    return list(csv.DictReader(path.open()))


def _close(a: str, b: float, tol: float) -> bool:
    if a == "":
        return math.isnan(b)
    return abs(float(a) - b) <= tol


def test_golden_digits_mlp_matches_shipped():
    shipped = {(r["loss"], int(r["seed"])): r for r in _shipped_rows() if r["proxy"] == PROXY}
    assert {loss for loss, _ in shipped} == set(DEFAULT_LOSSES)
    cmp = compare(list(DEFAULT_LOSSES), proxies=[PROXY], seeds=list(SEEDS), jobs=1, device="cpu")
    bad, exact = [], 0
    for loss in DEFAULT_LOSSES:
        cal = cmp.calibration[(PROXY, loss)]
        for j, res in enumerate(cmp.results[(PROXY, loss)]):
            want = shipped[(loss, res.seed)]
            exact += want["accuracy"] == repr(res.accuracy)
            now = {"status": res.status, "accuracy": res.accuracy, "ece": cal["ece"][j],
                   "mean_top": cal["mean_top"][j]}
            ok = {"status": want["status"] == res.status,
                  "accuracy": _close(want["accuracy"], res.accuracy, TOL_ACCURACY),
                  "ece": _close(want["ece"], now["ece"], TOL_CALIBRATION),
                  "mean_top": _close(want["mean_top"], now["mean_top"], TOL_CALIBRATION)}
            bad += [f"{loss} seed {res.seed}: {k} shipped {want[k]}, now {now[k]}"
                    for k in ok if not ok[k]]
    assert not bad, (f"differs from results/ngl beyond the stated tolerance ({exact} of "
                     f"{2 * len(DEFAULT_LOSSES)} accuracies exact):\n" + "\n".join(bad))


def test_shipped_summary_agrees_with_shipped_seeds():
    """compare.csv's means are the means of compare_seeds.csv (the two files stay in step)."""
    seeds = _shipped_rows()
    rows = list(csv.DictReader((SHIPPED / "compare.csv").open()))
    assert {r["proxy"] for r in rows} >= {"digits-mlp", "digits-cnn", "mnist1d-cnn"}
    for r in rows:
        accs = [float(s["accuracy"]) for s in seeds
                if s["proxy"] == r["proxy"] and s["loss"] == r["loss"] and s["accuracy"]]
        assert int(r["n"]) == len(accs) >= 5
        assert float(r["acc_mean"]) == pytest.approx(sum(accs) / len(accs), abs=1e-9)
