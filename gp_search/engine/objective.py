"""Your own training loop as the fitness: the objective as one more task of the scorer.

An objective is a function ``fn(loss, seed) -> score`` (or ``fn(loss, seed, budget)``) that
trains with ``loss`` — a ready torch callable ``(logits, target) -> scalar``, the
:class:`gp_search.lang.losses.Loss` that the exported ``best.py`` would define — and returns a
score, higher better: a number in [0, 1] (accuracy, F1, 1 - error rate…), or a dict of named
metrics of which ``SearchConfig.objective_metric`` names the one optimised. The config names it
by import path (``objective = "pkg.mod:fn"``, or ``"/abs/script.py:fn"``), never as code, so
every worker process imports it again by name.

The objective is one more task of :class:`gp_search.engine.scoring.Scorer` (after the proxies
and tasks, :data:`NAME`), so it gets what every training gets: screening before any call,
dedup, the SQLite cache, seeds drawn before dispatch, statuses, successive halving and racing,
checkpoint and resume; with a delta aggregate, CE runs through the same objective with the same
seeds. Its cache key (:func:`ref`) holds the import path, ``objective_version`` (change it when
the recipe changes: every cached score is then stale) and the metric.

Budgets: the objective's full budget is :data:`FULL` units; successive halving's short budget is
``FULL // eta`` of them, passed as the fraction ``budget = units / FULL`` (1.0 at full budget).
An objective without a ``budget`` parameter is always run in full: halving and racing are then
off, whatever the config says.

Each call runs in a worker process that the toolkit can kill (:mod:`gp_search.parallel.killable`
for ``sequential`` — one child process, calls one after another — and ``loky``; Dask's hard
limit for ``dask``): one that passes ``train_timeout`` seconds becomes status ``timeout`` and
the search goes on. An exception is status ``error`` with its message, a non-finite score
``nan``. The call runs with one torch intra-op thread, as every built-in training does, so a
score does not depend on the backend or the number of workers (set more threads inside your
function if your recipe wants them, at the price of last-bit differences between backends).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

from gp_search.core import Status
from gp_search.proxies import EvalResult
from gp_search.engine.config import SearchConfig
from gp_search.engine.score import Evaluator, ProxyRef

NAME = "objective"
"""The objective's task name (in results, messages and ``SearchConfig.scored_names``)."""
ASK_TELL = "<ask-tell>"
"""``SearchConfig.objective`` of a run whose scores arrive through :class:`gp_search.Search`."""
FULL = 1000
"""The objective's full budget in units (a short budget is ``FULL // halving_eta``)."""


def path_of(objective) -> str:
    """The import path of ``objective``: a callable defined at a module's top level, or text
    ``"pkg.mod:fn"`` / ``"script.py:fn"`` (a relative file made absolute).

    Raises:
        ValueError: a lambda, a nested function, or text that is not ``module:name``.
    """
    from gp_search.proxies import import_path

    if callable(objective):
        return import_path(objective, "objective", prefix="",
                           fix="and pass it, or its import path 'pkg.mod:fn'")
    if not isinstance(objective, str) or ":" not in objective:
        raise ValueError(f"objective must be a function or its import path 'pkg.mod:fn', got "
                         f"{objective!r}")
    module, _, name = objective.rpartition(":")
    if module.endswith(".py"):
        module = str(Path(module).expanduser().resolve())
    return f"{module}:{name}"


def load(path: str):
    """The objective function at ``path``, checked to be callable (imported once per process).

    Raises:
        gp_search.proxies.data.user_files.TaskDataError: a ValueError naming the path and the fix.
    """
    from gp_search.proxies import import_object
    from gp_search.proxies import TaskDataError

    fn = import_object(path, "objective")
    if not callable(fn):
        raise TaskDataError(f"objective {path!r} is not a function (it is of type "
                            f"{type(fn).__name__}); name a function fn(loss, seed[, budget]) -> "
                            f"score")
    return fn


def takes_budget(fn) -> bool:
    """Whether ``fn`` has a ``budget`` parameter (so it can train for part of its budget)."""
    try:
        return "budget" in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature
        return False


def check(cfg: SearchConfig, scores_told: bool = False) -> None:
    """Refuse, before any run directory is written, an objective that cannot be imported or
    called, or an ask/tell run that nobody will tell scores to (``scores_told``: the caller is
    :class:`gp_search.Search`)."""
    if not cfg.objective:
        return
    if cfg.objective == ASK_TELL:
        if not scores_told:
            raise ValueError("this run gets its scores through ask/tell; continue it in Python "
                             "with gp_search.Search(resume=RUN_DIR)")
        return
    load(cfg.objective)


def resume_command(cfg: SearchConfig, run_dir: Path) -> str:
    """How to continue a stopped run: ``gp-search resume``, or Python for an ask/tell run."""
    if cfg.objective == ASK_TELL:
        return f"gp_search.Search(resume={str(run_dir)!r})"
    return f"gp-search resume {run_dir}"


def budgets(cfg: SearchConfig) -> bool:
    """Whether the objective (if any) takes budgets, so halving and racing may run."""
    if not cfg.objective or cfg.objective == ASK_TELL:
        return True
    return takes_budget(load(cfg.objective))


def ref(cfg: SearchConfig, weight: float) -> ProxyRef:
    """The objective as the scorer's task: its cache key holds the import path, the user's
    version string and the metric, so a changed recipe never reads stale scores."""
    blob = json.dumps({"objective": cfg.objective, "version": cfg.objective_version,
                       "metric": cfg.objective_metric}, sort_keys=True).encode()
    return ProxyRef(NAME, f"{NAME}:{cfg.objective}@{hashlib.sha1(blob).hexdigest()[:12]}",
                    FULL, weight)


def load_loss(text: str):
    """The :class:`gp_search.lang.losses.Loss` a worker rebuilds from the scorer's text, or
    the ``error`` result when the text is not a loss."""
    from gp_search.lang import resolve

    try:
        return resolve(text)
    except ValueError as exc:  # ExprError
        return EvalResult(Status.ERROR, message=f"cannot rebuild the loss: {exc}", loss=text,
                          proxy=NAME)


def outcome(value, metric: str, loss: str, seed: int, budget: int,
            seconds: float = 0.0) -> EvalResult:
    """What a score becomes: ``ok`` with it as the result's accuracy, ``nan`` when it is not
    finite, ``error`` when it is not a number in [0, 1] (or the dict lacks ``metric``)."""
    where = dict(loss=loss, proxy=NAME, seed=seed, budget=budget, seconds=seconds)
    if isinstance(value, Mapping):
        if not metric or metric not in value:
            return EvalResult(Status.ERROR, message=f"the objective returned the metrics "
                              f"{sorted(map(str, value))}; set objective_metric to the one to "
                              f"optimise (got {metric!r})", **where)
        value = value[metric]
    try:
        score = float(value)
    except (TypeError, ValueError):
        return EvalResult(Status.ERROR, message=f"the objective returned a "
                          f"{type(value).__name__}; return a number in [0, 1] or a dict of "
                          f"named metrics", **where)
    if isinstance(value, bool):
        return EvalResult(Status.ERROR, message="the objective returned a bool; return a "
                          "number in [0, 1]", **where)
    if not math.isfinite(score):
        return EvalResult(Status.NAN, message=f"the objective returned {score}", **where)
    if not 0.0 <= score <= 1.0:
        return EvalResult(Status.ERROR, message=f"the objective returned {score:g}, outside "
                          f"[0, 1]; failed candidates rank at 0 (deltas at -1), so map your "
                          f"score into [0, 1], e.g. accuracy or exp(-validation loss)", **where)
    return EvalResult(Status.OK, accuracy=score, **where)


def run_unit(path: str, text: str, seed: int, budget: int, metric: str) -> EvalResult:
    """One call of the objective, in a worker: import it by name, rebuild the loss, call it
    with one torch thread; whatever it raises or returns becomes an :class:`EvalResult`."""
    from gp_search.proxies import one_thread

    t0 = time.perf_counter()
    loss = load_loss(text)
    if isinstance(loss, EvalResult):
        return loss
    try:
        fn = load(path)
        with one_thread():
            value = fn(loss, seed, budget=budget / FULL) if takes_budget(fn) else fn(loss, seed)
    except Exception as exc:  # noqa: BLE001 - the user's code: a status, never a crash
        return EvalResult(Status.ERROR, message=f"{type(exc).__name__}: {exc}"[:500], loss=text,
                          proxy=NAME, seed=seed, budget=budget,
                          seconds=time.perf_counter() - t0)
    return outcome(value, metric, text, seed, budget, time.perf_counter() - t0)


def prepare(path: str) -> bool:
    """Run once in each fresh worker, untimed: import the objective (and whatever its module
    loads), the loss language and the training helpers, and build one loss. Never raises:
    a failure here is reported by the call itself."""
    try:
        import torch

        from gp_search.proxies import one_thread

        logits = torch.zeros(2, 3, requires_grad=True)
        load_loss("ce")(logits, torch.tensor([0, 1])).backward()  # autograd's first use
        load(path)
    except Exception:  # noqa: BLE001 - run_unit reports it as the candidate's status
        pass
    return True


def _failed(task: tuple, status: str, message: str) -> EvalResult:
    """The result of a call a backend gave up on (stuck past the limit, or its worker died)."""
    _, text, seed, budget, _ = task
    return EvalResult(status, message=message, loss=text, proxy=NAME, seed=seed, budget=budget)


def evaluator(cfg: SearchConfig, inner: Evaluator) -> Evaluator:
    """``inner`` for the proxies and tasks, the objective (imported by name in killable worker
    processes, ``cfg.jobs`` at once, on ``cfg.backend``) for :data:`NAME`."""
    if not cfg.objective:
        return inner

    def run(texts: list[str], proxy: str, seeds: list[int], steps: int) -> list[EvalResult]:
        if proxy != NAME:
            return inner(texts, proxy, seeds, steps)
        tasks = [(cfg.objective, text, seed, steps, cfg.objective_metric)
                 for text in texts for seed in seeds]
        if cfg.backend == "dask":
            from gp_search.parallel import run_on_dask

            return list(run_on_dask(run_unit, tasks, cfg.jobs, cfg.scheduler or None,
                                    timeout=cfg.train_timeout, on_failure=_failed))
        from gp_search.parallel import run_killable

        jobs = 1 if cfg.backend == "sequential" else cfg.jobs
        return run_killable(run_unit, tasks, jobs, cfg.train_timeout, _failed,
                            warm=(prepare, cfg.objective))

    return run
