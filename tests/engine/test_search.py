"""The search end to end with real trainings: determinism, workers, cache, halving, resume, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gp_search.engine.cache import Cache
from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig
from gp_search.core.environment import cpu_fingerprint
from gp_search.engine.runner import resume, run_search

from conftest import ROOT, run_cli


def small(tmp_path, **kw) -> SearchConfig:
    base = dict(population=8, generations=2, proxies=("synthetic-mlp",), steps=30, seeds=1,
                jobs=1, backend="sequential", out=str(tmp_path / "runs"), hall_of_fame=5,
                init_max_depth=3, max_height=6, max_size=20, seed=11, elitism=1,
                seed_individuals=("ngl",))
    base.update(kw)
    return SearchConfig(**base)


def hof_text(run_dir: Path) -> str:
    return (run_dir / "hall_of_fame.csv").read_text()


def test_run_writes_the_run_directory_contract(tmp_path):
    run = run_search(small(tmp_path), quiet=True)
    for name in ("config.json", "env.json", "generations.jsonl", "hall_of_fame.csv",
                 "checkpoint.json", "cache.sqlite", "best.py"):
        assert (run / name).exists(), name
    env = json.loads((run / "env.json").read_text())
    assert env["command"] and env["fingerprint"] == cpu_fingerprint()  # the machine, recorded
    assert {"vendor", "model", "torch_cpu_capability", "mkl", "onednn", "torch_threads"} <= \
        set(env["fingerprint"])
    loaded = store.load_run(run)
    assert loaded.finished and loaded.config == small(tmp_path)
    assert [g["generation"] for g in loaded.generations] == [0, 1, 2]
    assert loaded.best["fitness"] > 0.3  # synthetic: chance is 0.1
    gen0 = loaded.generations[0]
    assert gen0["trained"] + gen0["short"] + gen0["cached"] + gen0["duplicate"] + gen0["rejected"] >= 1
    assert "def best_loss(logits, target)" in (run / "best.py").read_text()
    # one "best" per run: each line logs the hall of fame's (full budget) beside the
    # population's raw best, and the last one is the hall of fame's first entry
    hof = [g["hof_best"] for g in loaded.generations]
    assert hof == sorted(hof) and hof[-1] == loaded.best["fitness"]
    assert loaded.generations[-1]["best_canonical"] == loaded.best["canonical"]
    assert all({"best", "median"} <= set(g) for g in loaded.generations)  # old keys kept


def test_the_progress_line_labels_which_best_it_shows():
    from gp_search.engine.runner import _summary

    rec = {"generation": 3, "best": 0.0049, "median": -0.2, "best_canonical": "y_pred*y_real",
           "hof_best": -0.001, "trained": 4, "short": 2, "cached": 0, "duplicate": 1,
           "rejected": 3, "seconds": 12.0}
    line = _summary(SearchConfig(generations=8), rec)
    assert "hall-of-fame best -0.0010 (full budget)" in line
    assert "population best 0.0049 median -0.2000 (any budget)" in line
    assert "hall-of-fame best - (full budget)" in _summary(
        SearchConfig(generations=8), {**rec, "hof_best": None, "best_canonical": None})


def test_same_seed_same_hall_of_fame_and_seed_matters(tmp_path):
    a = run_search(small(tmp_path / "a"), quiet=True)
    b = run_search(small(tmp_path / "b"), quiet=True)
    assert hof_text(a) == hof_text(b)
    c = run_search(small(tmp_path / "c", seed=12), quiet=True)
    assert hof_text(c) != hof_text(a)


def test_worker_count_does_not_change_the_result(tmp_path):
    one = run_search(small(tmp_path / "one", backend="loky", jobs=1), quiet=True)
    two = run_search(small(tmp_path / "two", backend="loky", jobs=2), quiet=True)
    assert hof_text(one) == hof_text(two)


def test_shared_cache_means_a_repeated_run_trains_nothing(tmp_path):
    shared = tmp_path / "shared.sqlite"
    first = run_search(small(tmp_path / "1", cache=str(shared)), quiet=True)
    again = run_search(small(tmp_path / "2", cache=str(shared)), quiet=True)
    gens = store.load_run(again).generations
    assert sum(g["trained"] + g["short"] for g in gens) == 0
    assert sum(g["cached"] for g in gens) > 0
    assert hof_text(first) == hof_text(again)


def test_successive_halving_saves_full_trainings(tmp_path):
    cfg = small(tmp_path, population=12, generations=1, successive_halving=True, halving_eta=3)
    with_sh = store.load_run(run_search(cfg, quiet=True))
    without = store.load_run(run_search(small(tmp_path / "n", population=12, generations=1,
                                              successive_halving=False), quiet=True))
    full_sh = sum(g["trained"] for g in with_sh.generations)
    full_no = sum(g["trained"] for g in without.generations)
    assert sum(g["short"] for g in with_sh.generations) > 0
    assert full_sh < full_no


def _wait_for(path: Path, timeout: float) -> None:
    end = time.time() + timeout
    while not path.exists():
        if time.time() > end:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def test_sigkill_then_resume_equals_unbroken_run(tmp_path):
    cfg = small(tmp_path, generations=4)
    unbroken = run_search(small(tmp_path / "u", generations=4), quiet=True)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(cfg.to_json())
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "gp_search", "run", "--config", str(cfg_file),
                             "--out", str(out), "--quiet"], env=env, cwd=ROOT)
    try:
        _wait_for(out, 60)
        run_dir = next(out.iterdir())
        _wait_for(run_dir / "checkpoint.json", 120)
        time.sleep(0.3)  # somewhere inside generation 1 or 2
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resume(run_dir, quiet=True)
    assert hof_text(run_dir) == hof_text(unbroken)
    assert [g["generation"] for g in store.read_generations(run_dir)] == [0, 1, 2, 3, 4]


def test_corrupt_checkpoint_stops_resume(tmp_path):
    run = run_search(small(tmp_path, generations=0), quiet=True)
    (run / "checkpoint.json").write_text('{"format": "gp-search-checkpoint/1", "generation": ')
    before = hof_text(run)
    res = run_cli("resume", run)
    assert res.returncode == 2 and "checkpoint.json" in res.stderr and "Traceback" not in res.stderr
    assert hof_text(run) == before


def test_cli_run_end_to_end(tmp_path):
    res = run_cli("run", "--population", "6", "--generations", "1", "--proxy", "synthetic-mlp",
                  "--steps", "30", "--jobs", "1", "--backend", "sequential", "--out", tmp_path,
                  "--seed-individual", "ngl", "--transfer-suite", "transfer-test",
                  "--transfer-top", "2", "--transfer-seeds", "2")
    assert res.returncode == 0, res.stderr
    assert "run directory:" in res.stdout and "top " in res.stdout and "best.py" in res.stdout
    assert "hall-of-fame best" in res.stdout and "(full budget)" in res.stdout
    run_dir = Path(res.stdout.split("run directory:")[1].split()[0])
    assert json.loads((run_dir / "config.json").read_text())["population"] == 6
    # The transfer stage ran on the held-out suite and its verdict is printed and in best.py.
    assert "transfer stage:" in res.stdout and (run_dir / "transfer" / "transfer.md").exists()
    verdict = "best on transfer" if "best on transfer" in res.stdout else "WARNING"
    assert verdict in res.stdout and "held-out suite 'transfer-test'" in " ".join(
        (run_dir / "best.py").read_text().split())


def test_cli_run_rejects_bad_flags_and_unwritable_out(tmp_path):
    res = run_cli("run", "--population", "1", "--out", tmp_path)
    assert res.returncode == 2 and "'population' must be in 2..100000" in res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = run_cli("run", "--out", blocker / "runs", "--proxy", "synthetic-mlp")
    assert res.returncode == 2 and "cannot write run directory" in res.stderr


def _start(args: list, inherit: str, sig: int) -> subprocess.Popen:
    """``gp-search ARGS`` in a child whose disposition of ``sig`` is ``inherit`` ("default" or
    "ignored"; a background job of a non-interactive shell inherits SIGINT ignored), so the
    test does not depend on how pytest itself was started."""
    disposition = {"default": signal.SIG_DFL, "ignored": signal.SIG_IGN}[inherit]
    return subprocess.Popen([sys.executable, "-m", "gp_search", *map(str, args)],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(sig, disposition))


def _first_checkpoint(out: Path) -> Path:
    _wait_for(out, 120)
    run_dir = next(out.iterdir())
    _wait_for(run_dir / "checkpoint.json", 300)
    return run_dir


def _stop_after_first_checkpoint(proc, out: Path, sig) -> tuple[Path, str]:
    """Send ``sig`` once the run has checkpointed; (its run directory, its stderr)."""
    try:
        run_dir = _first_checkpoint(out)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    return run_dir, err


@pytest.mark.parametrize("inherit", ["default", "ignored"])
def test_ctrl_c_checkpoints_and_stops_cleanly(tmp_path, inherit):
    out = tmp_path / "runs"
    proc = _start(["run", "--population", "8", "--generations", "50", "--proxy", "synthetic-mlp",
                   "--steps", "30", "--backend", "sequential", "--out", out, "--quiet"],
                  inherit, signal.SIGINT)
    run_dir, err = _stop_after_first_checkpoint(proc, out, signal.SIGINT)
    assert proc.returncode == 130, err
    assert f"gp-search resume {run_dir}" in err and "Traceback" not in err
    assert store.read_checkpoint(run_dir)["generation"] >= 0


def test_sigterm_checkpoints_stops_with_143_and_resumes_to_the_unbroken_result(tmp_path):
    # SIGTERM inherited ignored (as under some job schedulers): the search still stops on it.
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(small(tmp_path, generations=4).to_json())
    out = tmp_path / "termed"
    proc = _start(["run", "--config", cfg_file, "--out", out, "--quiet"], "ignored",
                  signal.SIGTERM)
    run_dir, err = _stop_after_first_checkpoint(proc, out, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in err and f"gp-search resume {run_dir}" in err
    assert "Traceback" not in err
    stopped_at = store.read_checkpoint(run_dir)["generation"]
    assert 0 <= stopped_at < 4  # stopped before the end, with a readable checkpoint
    res = run_cli("resume", run_dir, "--quiet")
    assert res.returncode == 0, res.stderr
    unbroken = run_search(small(tmp_path / "u", generations=4), quiet=True)
    assert hof_text(run_dir) == hof_text(unbroken)


def test_signal_handlers_are_put_back_after_a_search(tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    run_search(small(tmp_path, generations=0), quiet=True)
    assert {s: signal.getsignal(s) for s in before} == before


# --- the seams: the scorer protocol, DEAP's own operators -----------------------------------------

def test_both_scorers_implement_the_whole_scorer_protocol(tmp_path):
    import inspect

    from gp_search.rediscovery.scorer import BehaviourScorer
    from gp_search.rediscovery.targeted import ngl_target
    from gp_search.engine import Scorer, ScorerProtocol

    methods = ("score", "accept", "rewrite", "state", "restore")
    assert {m for m in methods if callable(getattr(ScorerProtocol, m, None))} == set(methods)
    cache = Cache(tmp_path / "c.sqlite")
    try:
        scorers = [Scorer([], [0], cache, evaluator=None), BehaviourScorer(ngl_target(False))]
        for scorer in scorers:
            assert isinstance(scorer, ScorerProtocol)
            assert ScorerProtocol not in type(scorer).__mro__  # structural, not inherited stubs
            for m in methods:  # same parameters, defaults and annotations as the contract
                assert inspect.signature(getattr(type(scorer), m)) == \
                    inspect.signature(getattr(ScorerProtocol, m)), (type(scorer).__name__, m)
    finally:
        cache.close()

    class NoRewrite:  # what evolve once looked for with getattr: now a scorer must have it
        def score(self, exprs, halving=True): ...
        def accept(self, expr): ...
        def state(self): ...
        def restore(self, state): ...

    assert not isinstance(NoRewrite(), ScorerProtocol)


def test_the_loop_calls_only_the_scorer_protocol_and_discovers_nothing():
    import ast
    import inspect

    from gp_search.engine import evolve
    from gp_search.engine import ScorerProtocol

    tree = ast.parse(inspect.getsource(evolve))
    called = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Attribute) and node.value.attr == "scorer"}
    assert called and called <= {"score", "accept", "rewrite", "state", "restore"}
    assert all(callable(getattr(ScorerProtocol, m)) for m in called)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"getattr", "hasattr"}


def _population(n: int, seed: int):
    import random

    from gp_search.engine import variation as ops

    cfg = SearchConfig(population=n, seed=seed)
    tb = ops.toolbox(cfg)
    random.seed(seed)
    pop = [tb.init() for _ in range(n)]
    for i, ind in enumerate(pop):
        ind.fitness.values = (float(i % 3),)  # many ties
    return cfg, tb, pop


def test_varand_draws_exactly_as_the_hand_written_loop_it_replaced():
    import random

    from deap import algorithms

    def hand_written(parents, tb, cx_prob, mut_prob):  # gp_search 0.x's operators.vary
        offspring = [tb.clone(ind) for ind in parents]
        for i in range(1, len(offspring), 2):
            if random.random() < cx_prob:
                offspring[i - 1], offspring[i] = tb.mate(offspring[i - 1], offspring[i])
                del offspring[i - 1].fitness.values, offspring[i].fitness.values
        for i, ind in enumerate(offspring):
            if random.random() < mut_prob:
                (offspring[i],) = tb.mutate(ind)
                del offspring[i].fitness.values
        return offspring

    cfg, tb, pop = _population(40, 3)
    random.seed(5)
    a = hand_written(pop, tb, cfg.crossover_prob, cfg.mutation_prob)
    after_a = random.random()
    random.seed(5)
    b = algorithms.varAnd(pop, tb, cfg.crossover_prob, cfg.mutation_prob)
    after_b = random.random()
    assert [str(i) for i in a] == [str(i) for i in b] and after_a == after_b
    assert [i.fitness.valid for i in a] == [i.fitness.valid for i in b]
    assert [str(i) for i in a] != [str(i) for i in pop]  # something was varied


def test_selbest_keeps_ties_in_population_order_as_the_sort_it_replaced():
    from deap import tools

    _, _, pop = _population(30, 4)
    by_hand = sorted(pop, key=lambda i: -i.fitness.values[0])[:10]
    assert [id(i) for i in tools.selBest(pop, 10)] == [id(i) for i in by_hand]


# --- strategy "random": the random-search baseline in the same machinery ---------------------------

def _heights(run_dir: Path) -> list[int]:
    from gp_search.lang.expr import parse

    cfg = store.load_run(run_dir).config
    return [parse(p["prefix"], cfg.primitive_set, cfg.const_range).tree.height
            for p in store.read_checkpoint(run_dir)["population"]]


def test_random_strategy_draws_fresh_trees_and_same_seed_same_hall_of_fame(tmp_path):
    kw = dict(strategy="random", generations=3, seed_individuals=())
    a = run_search(small(tmp_path / "a", **kw), quiet=True)
    b = run_search(small(tmp_path / "b", **kw), quiet=True)
    assert hof_text(a) == hof_text(b)
    gp = run_search(small(tmp_path / "gp", generations=3, seed_individuals=()), quiet=True)
    assert hof_text(gp) != hof_text(a)
    # Newcomers come from the initialiser (height <= init_max_depth = 3), never from variation,
    # which grows trees up to max_height = 6: all but the elite of the last generation are fresh.
    assert sum(h <= 3 for h in _heights(a)) >= 8 - 1
    assert max(_heights(gp)) > 3  # the contrast: GP's last generation holds grown trees
    gens = store.load_run(a).generations
    assert [g["generation"] for g in gens] == [0, 1, 2, 3]
    assert all(g["trained"] + g["short"] + g["cached"] + g["duplicate"] >= 1 for g in gens[1:])


def test_random_strategy_keeps_the_best_seen_and_is_worker_count_invariant(tmp_path):
    kw = dict(strategy="random", generations=2)
    one = run_search(small(tmp_path / "one", backend="loky", jobs=1, **kw), quiet=True)
    two = run_search(small(tmp_path / "two", backend="loky", jobs=2, **kw), quiet=True)
    assert hof_text(one) == hof_text(two)
    run = store.load_run(one)
    best_seen = max(g["best"] for g in run.generations)
    assert run.best["fitness"] >= best_seen - 1e-12  # the hall of fame is the record of the best
    bests = [g["best"] for g in run.generations]
    assert bests == sorted(bests)  # elitism: a generation's best never falls below the last's


def test_random_strategy_resumes_to_the_unbroken_result(tmp_path):
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(small(tmp_path, generations=4, strategy="random").to_json())
    out = tmp_path / "termed"
    proc = _start(["run", "--config", cfg_file, "--out", out, "--quiet"], "default",
                  signal.SIGTERM)
    run_dir, err = _stop_after_first_checkpoint(proc, out, signal.SIGTERM)
    assert proc.returncode == 143, err
    assert 0 <= store.read_checkpoint(run_dir)["generation"] < 4
    res = run_cli("resume", run_dir, "--quiet")
    assert res.returncode == 0, res.stderr
    unbroken = run_search(small(tmp_path / "u", generations=4, strategy="random"), quiet=True)
    assert hof_text(run_dir) == hof_text(unbroken)
    assert [g["generation"] for g in store.read_generations(run_dir)] == [0, 1, 2, 3, 4]


def test_cli_strategy_flag_and_bad_strategy(tmp_path):
    res = run_cli("run", "--population", "6", "--generations", "1", "--proxy", "synthetic-mlp",
                  "--steps", "30", "--backend", "sequential", "--out", tmp_path, "--quiet",
                  "--strategy", "random")
    assert res.returncode == 0, res.stderr
    run_dir = next((tmp_path).iterdir())
    assert json.loads((run_dir / "config.json").read_text())["strategy"] == "random"
    res = run_cli("run", "--strategy", "evolution", "--out", tmp_path / "x")
    assert res.returncode == 2 and "strategy" in res.stderr and "'random'" in res.stderr


def test_screen_hard_examples_trains_and_breeds_only_losses_that_pass_the_check(tmp_path):
    """With screen_hard_examples every trained candidate passes the hard-examples check, and
    the ones that fail it are rejected before training (status rejected, no training)."""
    from gp_search.engine.screen import hard_examples
    from gp_search.lang.expr import parse

    run_dir = run_search(small(tmp_path, generations=2, screen_hard_examples=True,
                               seed_individuals=("ngl", "exp(-8.24*y_pred*y_real*cos(y_real))")),
                         quiet=True)
    state = store.read_checkpoint(run_dir)
    cfg = store.load_run(run_dir).config
    scores = state["scorer"]["by_key"]
    trained = [k for k, s in scores.items() if s["status"] != "rejected"]
    assert trained and any(s["status"] == "rejected" and s["message"].startswith("hard-examples")
                           for s in scores.values())
    for item, score in zip(state["population"], state["scores"]):
        if score["status"] == "ok":
            assert hard_examples(parse(item["prefix"], cfg.primitive_set, cfg.const_range)).passed


def test_a_stop_signal_whose_exception_was_swallowed_still_stops():
    """The handler's Interrupted can be swallowed when the signal lands in a finaliser ("Exception
    ignored in …", seen once inside SymPy's generators: the run then finished with status 0); the
    flag it leaves stops the block on its way out, and no flag outlives the block."""
    from gp_search.engine import runner
    with pytest.raises(runner.Interrupted) as got:
        with runner.stop_on_signals():
            try:
                signal.raise_signal(signal.SIGTERM)
            except runner.Interrupted:
                pass  # swallowed, as a finaliser would
    assert got.value.exit_status == 143
    with runner.stop_on_signals():
        runner.raise_if_stopped()  # nothing pending: the flag was cleared on the way out
