"""The shipped GP-against-random record (results/strategy/, benchmarks/bench_strategy.py)."""

import json
import math

import pytest

from gp_search.analysis.stats import paired

from conftest import ROOT

RECORD = ROOT / "results" / "strategy" / "strategy.json"


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(RECORD.read_text())


def test_record_has_the_issue_format(record):
    assert {"preset", "command", "runs"} <= set(record)
    assert "bench_strategy.py" in record["command"]
    keys = {"search_seed", "strategy", "trainings", "best_fitness", "curve", "best_canonical",
            "report_mean_change", "holds_floor"}
    for run in record["runs"]:
        assert keys <= set(run), run.keys()
        assert run["strategy"] in ("gp", "random")
    pairs = {(r["search_seed"], r["strategy"]) for r in record["runs"]}
    assert len(pairs) == len(record["runs"])  # one record per (search seed, strategy)
    seeds = {s for s, _ in pairs}
    assert len(seeds) >= 8 and pairs == {(s, k) for s in seeds for k in ("gp", "random")}


def test_both_strategies_stop_at_the_same_training_count(record):
    budget = record["budget_trainings"]
    for run in record["runs"] + record.get("ablations", []):
        curve = run["curve"]
        costs = [c for c, _ in curve]
        bests = [f for _, f in curve]
        assert costs == sorted(costs) and bests == sorted(bests)  # best-so-far never falls
        assert run["trainings"] <= budget + 1e-9
        assert curve[-1][0] >= budget - 1e-9 or run["trainings"] == curve[-1][0]
        at_budget = [f for c, f in curve if c <= budget + 1e-9][-1]
        assert run["best_fitness"] == at_budget


def test_the_shipped_comparison_is_what_the_runs_give(record):
    by = {(r["search_seed"], r["strategy"]): r for r in record["runs"]}
    seeds = sorted({s for s, _ in by})
    d = paired([by[s, "gp"]["best_fitness"] for s in seeds],
               [by[s, "random"]["best_fitness"] for s in seeds])
    shipped = {c["variant"]: c for c in record["comparisons"]}["gp"]
    assert shipped["n"] == len(seeds)
    assert math.isclose(shipped["diff"], d["diff"], abs_tol=1e-12)
    assert math.isclose(shipped["p_value"], d["p_value"], abs_tol=1e-9)
    assert (RECORD.parent / "strategy.png").stat().st_size > 10_000
