"""Run lifecycle: create or reopen a run directory, wire the hooks, run, tune constants, finish.

``run_search(cfg)`` starts a new run; ``resume(run_dir)`` continues a killed or interrupted one
from its checkpoint (the SQLite cache means nothing finished is trained again).

While a search runs, SIGINT (Ctrl-C) and SIGTERM (``kill``, a job scheduler, ``docker stop``)
are this module's, whatever disposition the process inherited (a background job of a
non-interactive shell inherits SIGINT *ignored*; ``nohup`` ignores SIGHUP only): either stops
the search with :class:`Interrupted` after the last checkpoint, and the command exits
``128 + signal`` (130, 143) after printing the resume command. The previous handlers are put
back when the search returns.

What a run does after its search (and constant tuning) is a :class:`Finish` passed in from
above: by default :class:`SearchFitnessBest`, which writes ``best.py`` from the best search
fitness; :func:`gp_search.api.search` and ``gp-search run`` pass the transfer stage
(:class:`gp_search.analysis.TransferStage`), so this engine imports no analysis module.
"""

from __future__ import annotations

import contextlib
import random
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from gp_search.engine.cache import Cache
from gp_search.engine import rundir as store
from gp_search.engine import fitness
from gp_search.engine import objective
from gp_search.engine import user_tasks
from gp_search.engine.config import SearchConfig
from gp_search.engine.finish import Finish, finish_for
from gp_search.engine.tune_constants import tune_constants
from gp_search.core import Split, write_env
from gp_search.engine.evolve import Search, seed_expr
from gp_search.engine.score import Evaluator, ProxyRef
from gp_search.engine.scoring import Scorer


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop a search cleanly (checkpointed; exit status 128 + the signal's number)."""


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived during a search; ``signum`` says which (``exit_status`` is the
    shell's ``128 + signum``). A ``KeyboardInterrupt``, so every cleanup path for Ctrl-C runs."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


_PENDING: list[int] = []
"""Stop signals received inside :func:`stop_on_signals`. The handler's exception can be swallowed
when the signal lands in a finaliser ("Exception ignored in …", seen inside SymPy's generators),
so the flag is read again after every checkpoint (:func:`raise_if_stopped`)."""


def _raise_interrupted(signum: int, frame) -> None:
    _PENDING.append(int(signum))
    raise Interrupted(signum)


def raise_if_stopped() -> None:
    """Raise :class:`Interrupted` for a stop signal received in the block whose exception was
    swallowed on its way up."""
    if _PENDING:
        raise Interrupted(_PENDING[0])


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`Interrupted` inside the block, whatever the inherited
    disposition (ignored included); the previous handlers are restored on the way out. Outside
    the main thread (where Python cannot set handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    _PENDING.clear()
    try:
        yield
        raise_if_stopped()  # a signal whose exception was swallowed still stops the command
    finally:
        _PENDING.clear()
        for s, handler in previous.items():
            signal.signal(s, handler)


def draw_training_seeds(cfg: SearchConfig) -> list[int]:
    """Seed the master RNG and draw the run's training seeds, before anything is dispatched."""
    random.seed(cfg.seed)
    return [random.randrange(2**31) for _ in range(cfg.seeds)]


def proxy_refs(cfg: SearchConfig, tasks: dict | None = None) -> list[ProxyRef]:
    """The proxies, then the tasks (``tasks``: :func:`user_tasks.task_proxies`, built when
    None), then the objective, each with its cache key, full budget and weight."""
    from gp_search import proxies

    tasks = user_tasks.task_proxies(cfg) if tasks is None else tasks
    handles = [proxies.get(name, **_proxy_overrides(cfg)) for name in cfg.proxies]
    handles += [proxy for proxy, _ in tasks.values()]
    device = proxies.resolve_device(cfg.device)  # the key says path, device kind and TF32
    refs = [ProxyRef(p.name, proxies.result_key(p.spec, device), p.spec.steps, weight)
            for p, weight in zip(handles, cfg.weights())]
    return refs + ([objective.ref(cfg, cfg.weights()[-1])] if cfg.objective else [])


def _proxy_overrides(cfg: SearchConfig) -> dict:
    over = {"time_limit": cfg.train_timeout, "split": cfg.fitness_split}
    if cfg.steps:
        over["steps"] = cfg.steps
    if cfg.data_root:
        over["data_root"] = cfg.data_root
    return over


def default_evaluator(cfg: SearchConfig, progress: bool = True,
                      tasks: dict | None = None) -> Evaluator:
    """Train through :func:`gp_search.parallel.evaluate.evaluate` with the run's jobs, backend
    and device; a task's proxy (``tasks``, built when None) already carries the run's budget."""
    from gp_search.parallel import evaluate

    overrides = _proxy_overrides(cfg)
    tasks = user_tasks.task_proxies(cfg) if tasks is None else tasks

    def run(texts: list[str], proxy: str, seeds: list[int], steps: int):
        bar = _bar(len(texts) * len(seeds), f"train {proxy} ({steps} steps)") if progress else None
        mine = tasks.get(proxy)
        try:
            return evaluate(texts, proxy=mine[0] if mine else proxy, seeds=seeds, jobs=cfg.jobs,
                            device=cfg.device, backend=cfg.backend,
                            scheduler=cfg.scheduler or None, steps=steps,
                            proxy_overrides=None if mine else overrides,
                            progress=(lambda done, total: bar.update(done - bar.n)) if bar else None)
        finally:
            if bar is not None:
                bar.close()

    return run


def _bar(total: int, desc: str):
    from tqdm import tqdm

    # disable=None: no bar when stderr is not a terminal (logs, CI).
    return tqdm(total=total, desc=desc, leave=False, file=sys.stderr, dynamic_ncols=True,
                disable=None)


def _summary(cfg: SearchConfig, rec: dict) -> str:
    """The progress line: the hall of fame's best (full budget) and its loss; the population's
    raw best and median beside it, labelled (they include short and raced trainings)."""
    best = rec["best_canonical"] or "-"
    hof = "-" if rec.get("hof_best") is None else f"{rec['hof_best']:.4f}"
    return (f"gen {rec['generation']:>3}/{cfg.generations}  hall-of-fame best {hof} (full "
            f"budget)  population best {rec['best']:.4f} median {rec['median']:.4f} (any "
            f"budget)  trained {rec['trained']} short {rec['short']} "
            f"cached {rec['cached']} dup {rec['duplicate']} rej {rec['rejected']}  "
            f"{rec['seconds']:.0f}s  {best}")


def make_scorer(cfg: SearchConfig, cache: Cache, evaluator: Evaluator | None = None,
                progress: bool = False, tasks: dict | None = None) -> Scorer:
    """The scorer a run with ``cfg`` uses: its proxies and user tasks (``tasks``: name → proxy,
    :func:`gp_search.engine.user_tasks.task_proxies` when None), training seeds, halving,
    dedup, fitness aggregate and racing, reading and writing ``cache``; an objective without
    a ``budget`` parameter turns halving and racing off."""
    tasks = user_tasks.task_proxies(cfg) if tasks is None else tasks
    budgets = objective.budgets(cfg)
    return Scorer(proxy_refs(cfg, tasks), draw_training_seeds(cfg), cache,
                  evaluator or objective.evaluator(cfg, default_evaluator(cfg, progress, tasks)),
                  cfg.halving_eta, cfg.successive_halving and budgets, cfg.dedup_fingerprint,
                  cfg.fitness_aggregate, cfg.fitness_temperature,
                  cfg.hall_of_fame if cfg.racing and budgets else 0, cfg.screen_hard_examples)


def _open(cfg: SearchConfig, run_dir: Path, quiet: bool, evaluator: Evaluator | None,
          tasks: dict | None = None) -> Search:
    cache = Cache(cfg.cache or store.RunDir(run_dir).cache)
    search = Search(cfg, run_dir, make_scorer(cfg, cache, evaluator, not quiet, tasks), cache)

    def log(record: dict) -> None:
        store.append_generation(run_dir, record)
        store.write_atomic(store.RunDir(run_dir).hall_of_fame, store.hof_csv(search.hof.entries))

    def checkpoint(record: dict) -> None:
        store.write_checkpoint(run_dir, {**search.state(), "train_seeds": search.scorer.seeds})
        raise_if_stopped()

    def show(record: dict) -> None:
        print(_summary(cfg, record), flush=True)

    def show_end(record: dict) -> None:
        if record["reason"] == "time_budget":
            print(f"time budget of {cfg.time_budget:g}s reached after generation "
                  f"{record['generation']}", flush=True)

    # In this order: the log line and hall of fame, then the checkpoint that covers them
    # (resume truncates the log to the checkpoint), then the progress line.
    search.hooks.after_generation += [log, checkpoint] + ([] if quiet else [show])
    if not quiet:
        search.hooks.end_of_run.append(show_end)
    return search


def _finish(search: Search, quiet: bool, finish: Finish) -> None:
    cfg, run_dir = search.cfg, search.run_dir
    if cfg.optimize_constants and search.hof.entries:
        tuned = tune_constants(search, cfg.constant_evals)
        if tuned and not quiet:
            print(f"constant tuning: {tuned}", flush=True)
    store.write_atomic(store.RunDir(run_dir).hall_of_fame, store.hof_csv(search.hof.entries))
    store.write_checkpoint(run_dir, {**search.state(), "train_seeds": search.scorer.seeds})
    finish(cfg, run_dir, search.hof.entries, quiet)


def _drive(search: Search, quiet: bool, finish: Finish) -> Path:
    from gp_search.proxies import one_thread

    try:
        # Screening, fingerprints and in-process trainings on tiny tensors: one torch thread is
        # faster (two threads on a shared 2-core machine were ~15x slower) and load-independent.
        with stop_on_signals():
            with one_thread():
                search.run()
            _finish(search, quiet, finish)
    except KeyboardInterrupt as exc:
        search.cache.close()
        what = f"stopped by {exc.args[0]}" if isinstance(exc, Interrupted) else "interrupted"
        print(f"\n{what}; generation {search.generation} is checkpointed. Continue with:\n"
              f"  {objective.resume_command(search.cfg, search.run_dir)}", file=sys.stderr,
              flush=True)
        raise
    search.cache.close()
    if not quiet:
        print_result(search.run_dir, finish=finish)
    return search.run_dir


def _reach_cluster(cfg: SearchConfig, evaluator: Evaluator | None) -> None:
    """With the Dask backend, connect (or start the local cluster) before any work, so that a
    bad scheduler address fails before a run directory exists."""
    if cfg.backend == "dask" and evaluator is None:
        from gp_search.parallel import dask_client

        dask_client(cfg.scheduler or None, cfg.jobs)


def run_search(cfg: SearchConfig, quiet: bool = False, evaluator: Evaluator | None = None,
               run_dir: Path | None = None, finish: Finish | None = None) -> Path:
    """Start a new search; returns its run directory. ``finish``: what the run does after the
    search (:class:`Finish`; None: :class:`SearchFitnessBest`).

    Raises:
        store.RunFileError: the output location is not writable (before any work).
        ValueError: a task's data or model is refused (likewise; nothing is written).
        gp_search.parallel.dask_cluster.SchedulerError: the Dask scheduler cannot be reached (likewise).
        ValueError: the device cannot be used here (likewise).
    """
    for text in cfg.seed_individuals:  # a bad one fails here, before a run directory exists
        try:
            seed_expr(text, cfg)
        except ValueError as exc:  # ExprError too
            raise ValueError(f"config field 'seed_individuals': {text[:80]!r} is not a loss of "
                             f"the {cfg.primitive_set!r} set ({exc})") from None
    finish = finish_for(cfg, finish)
    tasks = user_tasks.task_proxies(cfg)  # bad data or models fail here, before a run directory
    objective.check(cfg, evaluator is not None)  # likewise an objective that cannot be imported
    _reach_cluster(cfg, evaluator)
    from gp_search.proxies import resolve_device
    resolve_device(cfg.device)  # likewise CUDA asked for where there is none
    run_dir = Path(run_dir) if run_dir else store.new_run_dir(cfg.out, cfg)
    store.write_atomic(store.RunDir(run_dir).config, cfg.to_json())
    user_tasks.write_record(run_dir, tasks)  # each data file's path, size and SHA-256
    write_env(run_dir)  # the command line and the machine (its CPU decides the last bits)
    if not quiet:
        print(f"run directory: {run_dir}", flush=True)
        user_tasks.show(tasks)
    return _drive(_open(cfg, run_dir, quiet, evaluator, tasks), quiet, finish)


def resume(run_dir: "str | Path", quiet: bool = False, evaluator: Evaluator | None = None,
           finish: Finish | None = None) -> Path:
    """Continue a run from its checkpoint; a corrupt checkpoint stops with an error.

    Every run file is read and checked before any is written, so a bad one stops the resume
    with :class:`store.RunFileError` naming it, and leaves the run directory as it was. A run
    killed before its first checkpoint starts again from generation 0 (its cache keeps every
    training that had finished). A finished run is left as it is.
    """
    run_dir = Path(run_dir)
    run = store.load_run(run_dir)  # config, checkpoint, log, hall of fame: all checked
    cfg, state = run.config, run.checkpoint
    finish = finish_for(cfg, finish)
    user_tasks.check_unchanged(run_dir, cfg)  # a changed data file: refused, nothing written
    tasks = user_tasks.task_proxies(cfg)
    objective.check(cfg, evaluator is not None)
    _reach_cluster(cfg, evaluator)
    search = _open(cfg, run_dir, quiet, evaluator, tasks)  # opens (and checks) the cache
    if state is None:  # killed before generation 0 finished
        if not quiet:
            print(f"{run_dir} has no checkpoint yet: starting it from generation 0", flush=True)
        store.RunDir(run_dir).generations.unlink(missing_ok=True)
        return _drive(search, quiet, finish)
    try:
        _check_state(state, search)
        search.restore(state)
    except store.RunFileError:
        search.cache.close()
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # ExprError is a ValueError
        search.cache.close()
        raise store.RunFileError(f"{store.RunDir(run_dir).checkpoint}: cannot restore the search "
                                 f"from it ({type(exc).__name__}: {exc})") from None
    if search.finished:  # in particular, constants are not tuned twice
        search.cache.close()
        if finish.pending(cfg, run_dir):
            if not quiet:
                print(f"{run_dir}: the search is finished; running its transfer stage", flush=True)
            with stop_on_signals():
                finish(cfg, run_dir, search.hof.entries, quiet)
        elif not quiet:
            print(f"{run_dir} is finished; nothing to resume", flush=True)
        return run_dir
    store.truncate_generations(run_dir, search.generation)
    if not quiet:
        print(f"resuming {run_dir} after generation {search.generation}", flush=True)
    return _drive(search, quiet, finish)


def _check_state(state: dict, search: Search) -> None:
    """A checkpoint whose training seeds are not config.json's is refused (store.load_run
    checks its generation and population size)."""
    if state.get("train_seeds") not in (None, search.scorer.seeds):
        raise store.RunFileError(f"{store.RunDir(search.run_dir).checkpoint}: training seeds do "
                                 f"not match config.json's seed")


def print_result(run_dir: Path, top: int = 5, finish: Finish | None = None) -> None:
    run = store.load_run(run_dir)
    print(f"\nrun directory: {run_dir}")
    where = "validation" if run.config.fitness_split == Split.VAL else "test"
    print(f"top {min(top, len(run.hall_of_fame))} losses (fitness = "
          f"{fitness.describe(run.config.fitness_aggregate, where)}, n = seeds):")
    for e in run.hall_of_fame[:top]:
        print(f"  {e['rank']:>2}. {e['fitness']:.4f} ± {e['std']:.4f} (n={e['n']})  "
              f"size {e['size']:>2}  {e['canonical']}")
    for line in (finish.summary(run_dir) if finish is not None else []):
        print(line)
    best = store.RunDir(run_dir).best
    if best.exists():
        print(f"best loss exported to: {best}")
