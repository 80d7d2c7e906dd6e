"""Parallel evaluation of (loss, seed) pairs: seeds fixed before dispatch, one thread a training.

:func:`evaluate` turns every loss into its spec text (a reference name or a prefix expression)
and the proxy into plain data, fixes the seeds, cuts the work into tasks and hands them to a
backend. A worker receives only that text, rebuilds the loss and the proxy, and trains with one
torch thread, so a result depends on (loss, proxy, seed, steps, device) alone: ``jobs=1`` and
``jobs=2`` give identical results.

A task is either one loss with one seed (sequential training) or, where the proxy's path on the
device is a population stack (``gp_search.proxies.population.path_for``: by proxy and device
alone, never by the number of losses) or batching is asked for, every loss with one seed. Batches
never depend on ``jobs`` either, and a loss's result does not depend on the losses beside it.

Backends are :class:`Backend` records in the one registry :data:`BACKENDS` (the CLI's
``--backend`` choices come from it). Each wraps one small function, ``run(fn, tasks, jobs,
scheduler) -> iterator of fn(*task)`` in task order (``scheduler`` is the address of a cluster,
for backends that have one). A backend with ``hard_limit`` (``dask``, in
:mod:`gp_search.parallel.dask_batch`) also takes ``timeout`` and ``on_failure``: a task stuck past
``dask_batch.hard_limit(time_limit)`` becomes status ``timeout``, one that keeps killing its
workers status ``error``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from gp_search import proxies
from gp_search.parallel import dask_batch
from gp_search.lang import LossExpr
from gp_search.lang import Loss
from gp_search.proxies import EvalResult
from gp_search.proxies import resolve_device
from gp_search.core import job_count, seed_list


def _run_task(loss_texts: list[str], proxy: dict, seed: int, steps: int | None, device: str,
              batched: bool) -> list[EvalResult]:
    """One task, in a worker or in-process: rebuild everything from plain data and train.

    ``Proxy.evaluate_many`` trains with one torch thread (``gp_search.proxies.train.one_thread``),
    whatever the process had, so results do not depend on the worker count.
    """
    return proxies.from_dict(proxy).evaluate_many(loss_texts, seed, steps, device, batched)


def _no_scheduler(backend: str, scheduler: str | None) -> None:
    if scheduler:
        raise ValueError(f"backend {backend!r} has no scheduler (got {scheduler!r}); a scheduler "
                         f"address is for a cluster backend such as 'dask'")


def _sequential(fn: Callable, tasks: list[tuple], jobs: int, scheduler: str | None = None
                ) -> Iterator:
    """Every task in this process, in order (``jobs`` is ignored)."""
    _no_scheduler("sequential", scheduler)
    return (fn(*task) for task in tasks)


def _loky(fn: Callable, tasks: list[tuple], jobs: int, scheduler: str | None = None) -> Iterator:
    """joblib's loky processes; their executor is reused across calls, so workers (and the data
    each one loaded) stay alive between generations. ``jobs == 1`` runs in this process.
    Stays (GPU review 9): with ``--device cuda`` every worker uses the current GPU (cuda:0)."""
    _no_scheduler("loky", scheduler)
    if jobs == 1:
        return _sequential(fn, tasks, jobs)
    from joblib import Parallel, delayed
    return Parallel(n_jobs=jobs, backend="loky", return_as="generator")(
        delayed(fn)(*task) for task in tasks)


@dataclass(frozen=True)
class Backend:
    """One way to run tasks, as :func:`evaluate` uses it.

    Attributes:
        name: its key in :data:`BACKENDS` (the ``backend`` argument, ``--backend``).
        run: ``run(fn, tasks, jobs, scheduler, **extra) -> iterator of fn(*task)`` in task
            order; ``extra`` is ``timeout`` and ``on_failure`` when ``hard_limit`` is set.
        hard_limit: it can abandon a task stuck past a wall-clock limit (and kill its worker);
            without it, the trainings' own clock, checked after every step, is the only limit.
        help: one line for the command line's help.
    """

    name: str
    run: Callable[..., Iterator]
    hard_limit: bool
    help: str


BACKENDS: dict[str, Backend] = {b.name: b for b in (
    Backend("loky", _loky, hard_limit=False, help="joblib's local worker processes"),
    Backend("sequential", _sequential, hard_limit=False, help="every training in this process"),
    Backend("dask", dask_batch.run, hard_limit=True,
            help="a Dask cluster: a local one, or the one at --scheduler"),
)}
"""Every backend by name; add a :class:`Backend` here to offer another."""


def _failed_task(task: tuple, status: str, message: str) -> list[EvalResult]:
    """The results of a task a backend gave up on (a stuck or worker-killing training)."""
    texts, wire, seed, steps = task[:4]
    proxy = proxies.from_dict(wire)
    budget = proxy.spec.steps if steps is None else steps
    return [EvalResult(status, message=message, loss=text, proxy=proxy.name, seed=seed,
                       budget=budget, metric=proxy.spec.metric) for text in texts]


def _loss_text(loss) -> str:
    """The text a worker rebuilds ``loss`` from (reference name or prefix expression)."""
    if isinstance(loss, Loss):
        if not loss.spec:
            raise ValueError(f"loss {loss.name!r} has no spec text to send to a worker; build it "
                             f"with gp_search.lang.losses.resolve (a name or an expression)")
        return loss.spec
    if isinstance(loss, LossExpr):
        return loss.prefix
    if isinstance(loss, str):
        return loss
    raise ValueError(f"a loss must be a Loss, a LossExpr or text, got {type(loss).__name__}")


def _proxy(proxy: str | proxies.Proxy, overrides: dict) -> proxies.Proxy:
    if not isinstance(proxy, proxies.Proxy):
        return proxies.get(proxy, **overrides)
    if not overrides:
        return proxy
    if proxy.name not in proxies.SPECS:
        raise ValueError(f"proxy_overrides need a registered proxy; {proxy.name!r} is not one "
                         f"(build its ProxySpec with the fields you want instead)")
    return proxies.get(proxy.name, **{**proxy.overrides, **overrides})


def _batches(proxy: proxies.Proxy, device: str, batched: bool | str) -> bool:
    """Whether each task trains every loss of one seed as a population (``"auto"``: the proxy's
    path on ``device``, whatever the number of losses)."""
    if batched not in (True, False, "auto"):
        raise ValueError(f"batched must be True, False or 'auto', got {batched!r}")
    if batched != "auto":
        return batched
    return proxies.path_for(proxy.spec, device) != proxies.TrainPath.SEQUENTIAL


def evaluate(losses: Sequence | Loss | LossExpr | str, proxy: str | proxies.Proxy = "digits-mlp",
             seeds: int | Iterable[int] = 1, jobs: int = 1, device: str = "auto",
             backend: str = "loky", batched: bool | str = "auto", steps: int | None = None,
             progress: Callable[[int, int], None] | None = None,
             proxy_overrides: dict | None = None, scheduler: str | None = None
             ) -> list[EvalResult]:
    """Score each loss with each seed on a proxy, in parallel.

    Args:
        losses: losses (:class:`Loss`, ``LossExpr`` or text: a reference name or an
            expression); one loss alone is taken as a list of one.
        proxy: a registered proxy name or a :class:`proxies.Proxy` (with its overrides).
        seeds: a count ``n`` (seeds ``0 .. n-1``) or the seeds themselves.
        jobs: worker processes (``-1``: one per core); ``1`` trains in this process.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        backend: a key of :data:`BACKENDS` (``"loky"``, ``"sequential"``, ``"dask"``).
        batched: population-batched training: True, False or ``"auto"`` (where it pays).
        steps: optimiser steps instead of the proxy's budget.
        progress: called as ``progress(done, total)`` as results arrive.
        proxy_overrides: ProxySpec fields to change (``proxies.get(proxy, **proxy_overrides)``),
            e.g. ``{"time_limit": 60, "data_root": "/data"}``.
        scheduler: cluster address for backends that have one: ``tcp://HOST:PORT`` of a Dask
            scheduler for ``"dask"`` (None: a local cluster of ``jobs`` workers).

    Returns:
        One :class:`EvalResult` per (loss, seed), loss-major: all seeds of the first loss, then
        the next loss. Text that does not parse gives status ``error`` for that loss.

    Raises:
        ValueError: unknown proxy, proxy field, backend or device; bad seeds, jobs or steps;
            a scheduler for a backend without one, or one that cannot be reached.
        FileNotFoundError: the proxy's data files are missing (checked once, before training).

    Example:
        >>> rs = evaluate(["ce", "ngl"], proxy="synthetic-mlp", seeds=2)
        >>> [(r.loss, r.seed) for r in rs]
        [('ce', 0), ('ce', 1), ('ngl', 0), ('ngl', 1)]
    """
    if isinstance(losses, (str, Loss, LossExpr)):
        losses = [losses]
    texts = [_loss_text(loss) for loss in losses]
    seeds = seed_list(seeds)
    n_jobs = job_count(jobs)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; known: {', '.join(sorted(BACKENDS))}")
    proxy = _proxy(proxy, proxy_overrides or {})
    # Stays (GPU review 8): resolved here, on the client; a cluster of GPU workers behind a
    # CPU-only head node needs the device resolved on the workers (not done).
    device = resolve_device(device)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer (or None for the proxy's budget), "
                         f"got {steps!r}")
    total = len(texts) * len(seeds)
    if total == 0:
        return []
    proxy.check_data()  # missing files: one clear error now, not one per (loss, seed)
    wire = proxy.to_dict()

    # Each task: (positions of its results in the loss-major list, arguments of _run_task).
    if _batches(proxy, device, batched):
        plan = [([i * len(seeds) + j for i in range(len(texts))],
                 (texts, wire, seed, steps, device, True)) for j, seed in enumerate(seeds)]
    else:
        plan = [([i * len(seeds) + j], ([text], wire, seed, steps, device, False))
                for i, text in enumerate(texts) for j, seed in enumerate(seeds)]

    chosen = BACKENDS[backend]
    # A backend that can abandon a stuck task (dask) gets a hard limit per task; the others
    # rely on the trainings' own clock, checked after every step.
    extra = {"timeout": dask_batch.hard_limit(proxy.spec.time_limit),
             "on_failure": _failed_task} if chosen.hard_limit else {}
    outputs = chosen.run(_run_task, [args for _, args in plan], n_jobs, scheduler, **extra)
    results: list[EvalResult | None] = [None] * total
    done = 0
    if progress is not None:
        progress(0, total)
    for (where, _), out in zip(plan, outputs):
        for k, res in zip(where, out):
            results[k] = res
        done += len(where)
        if progress is not None:
            progress(done, total)
    return results
