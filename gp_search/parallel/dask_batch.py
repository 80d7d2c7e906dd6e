"""One batch of tasks on the Dask cluster: submit, await in task order, stuck tasks, faults.

``run(fn, tasks, jobs, scheduler)`` is the ``dask`` entry of
:data:`gp_search.parallel.evaluate.BACKENDS` (one with ``hard_limit``: it also takes ``timeout``
and ``on_failure``); the cluster itself comes from :func:`gp_search.parallel.dask_cluster.client`.
Tasks travel as the plain data ``gp_search.parallel.evaluate`` gives them (loss texts, a proxy
dict, a seed, a step count); results come back in task order, so the results are the same as
with loky or in-process training.

What a dead or stuck worker does to a batch:

* **a worker process dies** (killed, out of memory, machine lost): the scheduler reruns the
  tasks it held on the other workers (its nanny restarts it meanwhile); the batch completes
  with nothing lost. A task that takes down ``distributed.scheduler.allowed-failures`` + 1
  workers (default 4) is given up: ``on_failure(task, "error", message)``.
* **a task raises**: it is resubmitted up to :data:`RETRIES` times (on any worker), then
  ``on_failure(task, "error", message)``.
* **a task runs longer than ``timeout``** (a stuck step that the trainings' own per-step clock
  cannot see): it is cancelled, its worker process is killed (SIGKILL, sent by the worker
  itself: its event loop is free while the task's thread is blocked; the nanny starts a fresh
  one in about a second), and ``on_failure(task, "timeout", message)`` stands in for its
  result; other tasks are unaffected. Not ``Client.restart_workers``: it first waits for a
  graceful close that a blocked thread cannot give, and so widens the lost-nanny race
  that :mod:`gp_search.parallel.dask_cluster` heals.
* **no worker at all** for :data:`NO_WORKERS_PATIENCE` seconds, the scheduler lost, or results
  that cannot be fetched: :class:`ClusterError` (the search stops; its checkpoint lets
  ``gp-search resume`` continue). Only a task's own failure becomes a status, never the
  cluster's: a status is cached with the candidate for good.

Not covered: a hard limit for the ``loky`` and ``sequential`` backends (there the trainings'
per-step clock is the only limit, so a single step that never returns hangs the search), and
Dask's unauthenticated, pickle-based messages (run the scheduler on a trusted network or set up
Dask's TLS).

Python's global ``random``: Dask's scheduler and client threads in this process draw from it
(e.g. to pick the worker to gather a result from), and the evolution draws from it too, so the
draws would interleave differently from run to run. :func:`run` puts the global state back as
it found it before the caller sees the last output (or on any early exit): the search's
sequence of draws is then the one it would be with loky, and so is the hall of fame.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gp_search.parallel.dask_cluster import client, heal_local
from gp_search.proxies import device_fault

RETRIES = 2
"""Resubmissions of a task whose function raised (a lost worker is rescheduled by Dask itself)."""
NO_WORKERS_PATIENCE = 300.0
"""Seconds a batch waits on a cluster that has no worker left before :class:`ClusterError`."""
HARD_LIMIT_FACTOR, HARD_LIMIT_GRACE = 2.0, 60.0
"""A task is abandoned after ``FACTOR * time_limit + GRACE`` seconds of running (see
:func:`hard_limit`); the grace covers what the trainings' own clock leaves out (data loading)."""
POLL = 1.0
"""Seconds between looks at the cluster while a result is awaited."""
KILL_DELAY = 0.2
"""Seconds a stuck worker waits, after answering, before it SIGKILLs itself."""
KILL_WAIT = 10.0
"""Seconds at most to wait for the scheduler to see a killed worker go."""


class ClusterError(RuntimeError):
    """The cluster went away in the middle of a batch (no workers left, scheduler lost)."""


def hard_limit(time_limit: float) -> float:
    """Seconds after which a running task is abandoned as ``timeout``, for a proxy time limit.

    A training checks its clock after every step and stops at ``time_limit``; only a single
    step that takes longer than about ``time_limit + HARD_LIMIT_GRACE`` reaches this limit.

    Example:
        >>> hard_limit(600.0)
        1260.0
    """
    return HARD_LIMIT_FACTOR * float(time_limit) + HARD_LIMIT_GRACE


def _kill_soon() -> int:
    """Run on a worker: SIGKILL this worker process :data:`KILL_DELAY` seconds from now (after
    this answer is sent); returns its pid. Works while a task's thread is blocked."""
    pid = os.getpid()
    threading.Timer(KILL_DELAY, os.kill, (pid, signal.SIGKILL)).start()
    return pid


def executing(dask_worker) -> dict:
    """Run on a worker: seconds each task it is executing has been running."""
    now = time.time()
    out = {}
    for key in list(dask_worker.active_keys):
        ts = dask_worker.state.tasks.get(key)
        if ts is not None and ts.start_time:
            out[key] = now - ts.start_time
    return out


def run(fn: Callable, tasks: Sequence[tuple], jobs: int, scheduler: str | None = None,
        timeout: float | None = None,
        on_failure: Callable[[tuple, str, str], Any] | None = None) -> Iterator:
    """Run ``fn(*task)`` for every task on the cluster; yield the outputs in task order.

    Every task is submitted at once (before the first output is asked for).

    Args:
        fn: an importable module-level function (workers import it by name).
        tasks: argument tuples of plain data.
        jobs: see :func:`client`.
        scheduler: see :func:`client`.
        timeout: seconds a task may run before it is abandoned (None: no limit).
        on_failure: ``on_failure(task, status, message)`` gives the output of a task that timed
            out (``status="timeout"``) or failed for good (``"error"``); without it, a failure
            raises.

    Raises:
        SchedulerError: see :func:`client`.
        ClusterError: the scheduler was lost, or no worker was left for too long.
    """
    state = random.getstate()
    try:
        c = client(scheduler, jobs)
        futures = [c.submit(fn, *task, pure=False, retries=RETRIES) for task in tasks]
    except BaseException:
        random.setstate(state)
        raise
    return _Batch(c, futures, list(tasks), timeout, on_failure, state,
                  None if scheduler else jobs).outputs()


class _Batch:
    """The futures of one :func:`run` call, awaited in order while the cluster is watched."""

    def __init__(self, c, futures: list, tasks: list, timeout: float | None, on_failure,
                 random_state: tuple, local_jobs: int | None):
        self.c, self.futures, self.tasks = c, futures, tasks
        self.local_jobs = local_jobs  # the local cluster's size, kept while waiting; None: remote
        self.timeout, self.on_failure = timeout, on_failure
        self.random_state = random_state
        self.index = {f.key: i for i, f in enumerate(futures)}
        self.abandoned: dict[int, Any] = {}
        self.empty_since: float | None = None
        self.next_check = 0.0

    def outputs(self) -> Iterator:
        try:
            for i in range(len(self.futures)):
                out = self._result(i)
                self.futures[i].release()  # workers may drop the result now
                self.futures[i] = None
                if i == len(self.futures) - 1:  # before the caller has the last output
                    self._restore_random()
                yield out
        finally:  # also when the consumer stops early (an exception, Ctrl-C)
            self.c.cancel([f for f in self.futures if f is not None and not f.done()])
            self._restore_random()

    def _restore_random(self) -> None:
        if self.random_state is not None:
            random.setstate(self.random_state)
            self.random_state = None

    def _result(self, i: int):
        from distributed.client import FutureCancelledError

        fut = self.futures[i]
        fetch_failures = 0
        while i not in self.abandoned:
            try:
                return fut.result(timeout=POLL)
            except FutureCancelledError as exc:
                if i in self.abandoned:
                    break
                raise ClusterError(f"Dask cancelled a task ({exc}): the scheduler was lost or the "
                                   f"client closed; the run is checkpointed, continue it with "
                                   f"`gp-search resume`") from None
            except Exception as exc:  # noqa: BLE001 - a task's failure is a status
                if not fut.done():
                    self._watch()  # our wait ran out: the task is queued or running
                elif fut.status == "error":  # the task raised (after RETRIES) or KilledWorker
                    if device_fault(exc):  # the worker's device, not the loss: never cached
                        raise ClusterError(f"a worker's device failed ({type(exc).__name__}: "
                                           f"{exc}); the run is checkpointed, continue it with "
                                           f"`gp-search resume`") from None
                    return self._fail(i, "error", f"{type(exc).__name__}: {exc}", exc)
                else:  # finished, but its result could not be fetched: the cluster's trouble
                    fetch_failures += 1
                    if self.c.status != "running" or fetch_failures > 3:
                        raise ClusterError(f"cannot fetch results from the Dask cluster "
                                           f"({type(exc).__name__}: {exc}); the run is "
                                           f"checkpointed, continue it with `gp-search resume`"
                                           ) from None
                    time.sleep(POLL)
        return self.abandoned.pop(i)

    def _fail(self, i: int, status: str, message: str, exc: BaseException | None = None):
        if self.on_failure is None:
            if exc is not None:
                raise exc
            raise TimeoutError(message)
        return self.on_failure(self.tasks[i], status, message)

    def _watch(self) -> None:
        now = time.monotonic()
        workers = self.c.scheduler_info(n_workers=-1).get("workers", {})
        if workers:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = now
        elif now - self.empty_since > NO_WORKERS_PATIENCE:
            raise ClusterError(f"no Dask worker has been connected to {self.c.scheduler.address} "
                               f"for {NO_WORKERS_PATIENCE:g} s; start workers and `gp-search "
                               f"resume` the run (it is checkpointed)")
        if self.local_jobs is not None and len(workers) < self.local_jobs:
            heal_local(self.c, self.local_jobs)
        if self.timeout is None or now < self.next_check:
            return
        self.next_check = now + max(POLL, min(self.timeout / 10, 10.0))
        stuck: dict[str, list[int]] = {}  # worker -> positions of its stuck tasks
        for worker, running in self.c.run(executing, on_error="return").items():
            if not isinstance(running, dict):
                continue  # a worker that is going away
            for key, seconds in running.items():
                i = self.index.get(key)
                if (i is not None and seconds > self.timeout and i not in self.abandoned
                        and self.futures[i] is not None):
                    stuck.setdefault(worker, []).append(i)
                    self.abandoned[i] = self._fail(
                        i, "timeout", f"the task ran {seconds:.0f} s, past the hard limit of "
                        f"{self.timeout:g} s (a stuck step); abandoned, worker killed")
        if not stuck:
            return
        # Cancelled first, so that the scheduler does not run them again elsewhere.
        self.c.cancel([self.futures[i] for idx in stuck.values() for i in idx])
        # The thread cannot be stopped; the process can, and its nanny starts a fresh one.
        # Without a nanny nothing would replace it: such a worker is left to finish.
        orphans = sorted(w for w in stuck if not workers.get(w, {}).get("nanny"))
        if orphans:
            warnings.warn(f"Dask worker(s) {orphans} are stuck on a task and have no nanny to "
                          f"restart them; they stay busy until it ends", RuntimeWarning,
                          stacklevel=2)
        killed = set(stuck) - set(orphans)
        if killed:
            self.c.run(_kill_soon, workers=sorted(killed), on_error="return")
            # Gone before their tasks' outputs are handed out (a few seconds at most): the
            # caller then sees a cluster without them, healing.
            end = time.monotonic() + KILL_WAIT
            while killed & set(self.c.scheduler_info(n_workers=-1).get("workers", {})) and \
                    time.monotonic() < end:
                time.sleep(0.05)
