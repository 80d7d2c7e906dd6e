"""Your own training loop as the fitness: backends agree, failures are statuses, the cache key
holds the version, ask/tell equals search(objective=…), bad --objective is refused up front,
kill and resume equals unbroken. Every objective is a real (tiny) torch training
(tests/engine/objective_fns.py) in real worker processes."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import objective_fns as fns
import pytest
from conftest import ROOT, run_cli

import gp_search
from gp_search.engine import rundir as store
from gp_search.analysis import TransferStage
from gp_search.engine.config import SearchConfig
from gp_search.engine.objective import ASK_TELL
from gp_search.engine.runner import resume, run_search
from gp_search.proxies.train import one_thread


def small(tmp_path, **kw) -> dict:
    base = dict(population=6, generations=2, proxies=[], objective=fns.path("train"), seeds=1,
                jobs=1, backend="sequential", out=str(tmp_path / "runs"), hall_of_fame=4,
                init_max_depth=3, max_height=6, max_size=20, seed=5, elitism=1,
                seed_individuals=["ngl"])
    base.update(kw)
    return base


def hof(run_dir) -> str:
    return (run_dir / "hall_of_fame.csv").read_text()


def scores(run_dir) -> list[dict]:
    """Every score of the run (the scorer's memory, in the checkpoint)."""
    return list(store.load_run(run_dir).checkpoint["scorer"]["by_key"].values())


def test_sequential_loky_and_dask_give_one_hall_of_fame(tmp_path):
    from gp_search.parallel import dask_cluster

    dask_cluster.client(None, 2)  # the local cluster --backend dask starts (reused by others)
    runs = {backend: run_search(SearchConfig(**small(tmp_path / backend, backend=backend,
                                                      jobs=1 if backend == "sequential" else 2,
                                                      fitness_aggregate="softmin",
                                                      generations=1)), quiet=True)
            for backend in ("sequential", "loky", "dask")}
    first = hof(runs["sequential"])
    assert first.count("\n") >= 3  # a real hall of fame, not an empty one
    assert hof(runs["loky"]) == first and hof(runs["dask"]) == first
    log = store.read_generations(runs["sequential"])
    assert log[0]["short"] > 0  # the objective takes a budget: successive halving ran


def test_raising_nan_and_hanging_objectives_are_statuses_and_the_run_goes_on(tmp_path):
    t0 = time.monotonic()
    run = run_search(SearchConfig(**small(tmp_path, objective=fns.path("flaky"), population=8,
                                          generations=1, train_timeout=6.0,
                                          successive_halving=False)), quiet=True)
    assert time.monotonic() - t0 < 300  # hang guard only: each hang is cut at 6 s
    got = {s["status"]: s["message"] for s in scores(run)}
    assert {"ok", "error", "nan", "timeout"} <= set(got), got
    assert "RuntimeError: the recipe broke" in got["error"]
    assert "time limit of 6 s" in got["timeout"] and "killed" in got["timeout"]
    assert store.load_run(run).finished and store.load_run(run).hall_of_fame


def test_a_dict_of_metrics_needs_the_metric_and_the_version_keys_the_cache(tmp_path):
    cache = str(tmp_path / "shared.sqlite")
    cfg = small(tmp_path, objective=fns.path("metrics"), generations=0, cache=cache,
                population=4)
    run = run_search(SearchConfig(**{**cfg, "objective_metric": "accuracy"}), quiet=True)
    assert store.read_generations(run)[0]["trained"] > 0
    again = run_search(SearchConfig(**{**cfg, "objective_metric": "accuracy"}), quiet=True)
    assert store.read_generations(again)[0]["cached"] > 0 and hof(again) == hof(run)
    changed = run_search(SearchConfig(**{**cfg, "objective_metric": "accuracy",
                                         "objective_version": "v2"}), quiet=True)
    assert store.read_generations(changed)[0]["cached"] == 0  # a new recipe: nothing reused
    unnamed = run_search(SearchConfig(**{**cfg, "cache": ""}), quiet=True)
    called = [s for s in scores(unnamed) if s["status"] != "rejected"]  # screening: no call
    assert called and {s["status"] for s in called} == {"error"}
    assert "set objective_metric" in called[0]["message"]


def test_an_objective_without_budget_is_always_run_in_full(tmp_path):
    run = run_search(SearchConfig(**small(tmp_path, objective=fns.path("full_only"))), quiet=True)
    assert all(g["short"] == 0 for g in store.read_generations(run))
    assert {s["fidelity"] for s in scores(run) if s["status"] == "ok"} == {"full"}


def test_search_takes_a_function_and_refuses_a_lambda(tmp_path):
    with pytest.raises(ValueError, match="lambda, or defined inside a function"):
        gp_search.search(small(tmp_path), objective=lambda loss, seed: 0.5)
    assert not (tmp_path / "runs").exists()
    run = gp_search.search({**small(tmp_path), "generations": 0}, objective=fns.train)
    assert run.config.objective == "objective_fns:train" and run.hall_of_fame


def _ask_tell(cfg: dict, stop_after: int | None = None) -> gp_search.Search:
    """Drive an ask/tell search, scoring with fns.train here; close it after some batches."""
    s = gp_search.Search(cfg)
    batches = 0
    while not s.done:
        cands = s.ask()
        with one_thread():  # as the objective's worker processes call it
            got = [fns.train(c.loss, c.seed, budget=c.budget) for c in cands]
        random.shuffle(list(range(10)))  # your code's draws leave the search's alone
        s.tell(cands[::-1], got[::-1])  # any order
        batches += 1
        if stop_after is not None and batches == stop_after:
            s.close()
            break
    return s


def test_ask_tell_gives_the_hall_of_fame_of_search_with_the_objective(tmp_path):
    cfg = small(tmp_path, fitness_aggregate="softmin", racing=True)  # CE through ask/tell too
    run = gp_search.search(cfg, objective=fns.path("train"))
    s = _ask_tell({k: v for k, v in cfg.items() if k != "objective"})
    assert s.done and s.run.config.objective == ASK_TELL
    assert hof(s.run.path) == hof(run.path) and (s.run.path / "best.py").is_file()


def test_ask_tell_takes_failures_as_statuses_and_refuses_strangers(tmp_path):
    s = gp_search.Search(small(tmp_path, generations=0, successive_halving=False))
    cands = s.ask()
    with pytest.raises(ValueError, match="not in the open batch"):
        s.tell(["c999"], [0.5])
    with pytest.raises(ValueError, match="1 candidates and 2 scores"):
        s.tell(cands[:1], [0.5, 0.5])
    fails = [RuntimeError("out of memory"), "timeout", ("diverged", "lr too high"), float("nan")]
    s.tell(cands[:4], fails)
    assert not s.done and len(s.ask()) == len(cands) - 4  # the rest of the batch
    s.tell(s.ask(), [0.7] * (len(cands) - 4))
    assert s.done
    got = {x["status"]: x["message"] for x in scores(s.run.path)}
    assert got["error"] == "RuntimeError: out of memory" and got["diverged"] == "lr too high"
    assert {"timeout", "nan", "ok"} <= set(got)


def test_ask_tell_closed_and_resumed_ends_as_unbroken(tmp_path):
    cfg = small(tmp_path, generations=3)
    cfg.pop("objective")
    unbroken = _ask_tell(cfg)
    stopped = _ask_tell({**cfg, "out": str(tmp_path / "stopped")}, stop_after=3)
    with pytest.raises(RuntimeError, match="closed before the end"):
        stopped.run
    assert not store.load_run(stopped.path).finished
    again = _ask_tell_resume(stopped.path)
    assert hof(again.run.path) == hof(unbroken.run.path)
    with pytest.raises(ValueError, match="not an ask/tell run"):
        gp_search.Search(resume=gp_search.search({**cfg, "generations": 0, "out": str(
            tmp_path / "plain")}, objective=fns.path("train")).path)
    res = run_cli("resume", stopped.path)
    assert res.returncode == 2 and "gp_search.Search(resume=RUN_DIR)" in res.stderr


def _ask_tell_resume(path) -> gp_search.Search:
    s = gp_search.Search(resume=path)
    while not s.done:
        cands = s.ask()
        with one_thread():
            s.tell(cands, [fns.train(c.loss, c.seed, budget=c.budget) for c in cands])
    return s


@pytest.mark.parametrize("bad, says", [("no_such_module_xyz:fn", "cannot import"),
                                       ("objective_fns:NOT_A_FUNCTION", "not a function"),
                                       ("objective_fns:missing", "has no attribute")])
def test_cli_refuses_a_bad_objective_before_any_run_directory(tmp_path, capsys, bad, says):
    from gp_search.cli.main import main

    out = tmp_path / "runs"
    assert main(["run", "--objective", bad, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_cli_run_killed_then_resumed_equals_unbroken(tmp_path):
    cfg = small(tmp_path, generations=3, backend="loky", jobs=2, objective=fns.path("paced"))
    unbroken = run_search(SearchConfig(**{**cfg, "out": str(tmp_path / "u")}), quiet=True)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg))
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "gp_search", "run", "--config", str(cfg_file),
                             "--out", str(out), "--quiet"],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                            start_new_session=True)
    try:
        end = time.time() + 300  # hang guard for a loaded machine
        while not list(out.glob("*/checkpoint.json")) and time.time() < end:
            time.sleep(0.05)
        time.sleep(0.1)  # into generation 1 (generations 2 and 3 take seconds more)
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker processes
    finally:
        proc.wait(timeout=60)
    run_dir = next(out.iterdir())
    assert not store.load_run(run_dir).finished
    resume(run_dir, quiet=True)
    assert hof(run_dir) == hof(unbroken)
    assert [g["generation"] for g in store.read_generations(run_dir)] == [0, 1, 2, 3]


def _rows(path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_transfer_stage_scores_the_top_and_the_baselines_through_the_objective(tmp_path):
    from gp_search.lang.losses import resolve

    cfg = SearchConfig(**small(tmp_path, generations=0, transfer_suite="transfer-test",
                               transfer_top=2, transfer_seeds=2))
    run_dir = run_search(cfg, quiet=True, finish=TransferStage())
    out = run_dir / "transfer"
    md = (out / "transfer.md").read_text()
    assert "## objective" in md and "## t-tabular2-mlp" in md and fns.path("train") in md
    rows = [r for r in _rows(out / "transfer.csv") if r["task"] == "objective"]
    assert {r["loss"] for r in rows} == {"ce", "ngl", "label_smoothing", "focal", "hof-1", "hof-2"}
    # Fresh seeds: none the search trained with; every score is the objective's own number for
    # that loss and seed (one machine: the same training in a worker as here).
    taken = store.read_checkpoint(run_dir)["train_seeds"]
    trained = [r for r in _rows(out / "transfer_seeds.csv") if r["task"] == "objective"]
    seeds = sorted({int(r["seed"]) for r in trained})
    assert len(seeds) == 2 and not set(seeds) & set(taken)
    specs = {e["label"]: e["text"] for e in _losses(md)}
    acc = {}
    for r in trained:
        assert r["status"] == "ok", r
        acc[(r["loss"], int(r["seed"]))] = float(r["accuracy"])
    for label, seed in [("ngl", seeds[0]), ("hof-1", seeds[1])]:
        with one_thread():
            assert acc[(label, seed)] == pytest.approx(fns.train(resolve(specs[label]), seed),
                                                       abs=1e-6)
    # Each loss's figure in the table is its change against CE, paired by seed.
    for r in rows:
        paired = sum(acc[(r["loss"], s)] - acc[("ce", s)] for s in seeds) / len(seeds)
        assert float(r["diff_vs_ce"]) == pytest.approx(paired)
        assert float(r["acc_mean"]) == pytest.approx(sum(acc[(r["loss"], s)] for s in seeds) / 2)


def test_a_nested_stage_reports_the_objective_and_picks_without_it(tmp_path):
    cfg = SearchConfig(**small(tmp_path, generations=0, transfer_suite="transfer-test",
                               report_suite="transfer-test-report", transfer_top=2,
                               transfer_seeds=2))
    run_dir = run_search(cfg, quiet=True, finish=TransferStage())
    assert "## objective" not in (run_dir / "transfer" / "transfer.md").read_text()
    report = _rows(run_dir / "transfer" / "report" / "transfer.csv")
    assert {r["loss"] for r in report if r["task"] == "objective"} >= {"ce", "ngl", "hof-1"}


def _losses(md: str) -> list[dict]:
    """The ``## Losses`` table of a transfer.md: label and text."""
    table = md.split("## Losses", 1)[1].splitlines()
    cells = [[c.strip().strip("`") for c in line.strip("|").split("|")]
             for line in table if line.startswith("|")][2:]
    return [{"label": c[0], "text": c[1]} for c in cells]
