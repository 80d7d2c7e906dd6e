"""The Dask cluster: a local one started on demand, or an existing scheduler; healing, closing.

:func:`client` gives the connected client that :mod:`gp_search.parallel.dask_batch` runs a
batch of tasks on. Without a scheduler address it starts a :class:`distributed.LocalCluster`
on 127.0.0.1 (``jobs`` worker processes, one thread each) the first time it is needed and keeps
it for the life of the process (closed at exit), so workers and the data they loaded survive
between generations. With an address (``tcp://HOST:PORT``) it joins that cluster and waits until
``jobs`` workers are there.

Healing: Dask's ``SpecCluster`` closes the nanny of a lost worker
for good when no worker of that name is back within ``distributed.deploy.lost-worker-timeout``
(15 s; dask/distributed#7312), which a worker lost twice in that window can run into. The
local cluster is scaled back to ``jobs`` whenever it has fewer workers: while a batch waits
and before the next one starts (waiting at most :data:`HEAL_WAIT`).

The nanny trap: by default Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
which makes glibc return memory to the system after nearly every free and slows torch CPU
training (``benchmarks/bench_dask.py`` measures it). The local cluster is started without it
(:data:`NANNY_ENV_FIX`); for ``dask worker`` processes you start yourself, the README shows the
setting, and :func:`client` warns when a worker of the cluster it joins still has the variable.
"""

from __future__ import annotations

import atexit
import logging
import os
import math
import threading
import time
import warnings
from typing import Any

CONNECT_TIMEOUT = 30.0
"""Seconds to reach a scheduler given by address."""
WORKER_WAIT = 300.0
"""Seconds to wait for ``jobs`` workers to join a cluster given by address."""
HEAL_WAIT = 30.0
"""Seconds the local cluster is given to get back to ``jobs`` workers before a batch starts
without them (it keeps healing while the batch runs)."""
NANNY_ENV_FIX = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask config under which nannies start workers without ``MALLOC_TRIM_THRESHOLD_``."""
MALLOC_VAR = "MALLOC_TRIM_THRESHOLD_"


class SchedulerError(ValueError):
    """The scheduler address cannot be reached, or too few workers joined (bad input)."""


_LOCK = threading.Lock()
_LOCAL: dict[str, Any] = {}  # "cluster", "client": the process's own LocalCluster
_REMOTE: dict[str, Any] = {}  # scheduler address -> Client
_WARNED: set[str] = set()


def _local_client(jobs: int):
    import dask
    from distributed import Client, LocalCluster

    cluster = _LOCAL.get("cluster")
    if cluster is not None and _LOCAL["client"].status == "running":
        if not _heal(jobs, HEAL_WAIT, all_workers=True):
            have = len(_LOCAL["client"].scheduler_info(n_workers=-1)["workers"])
            warnings.warn(f"the local Dask cluster has {have} of {jobs} workers after "
                          f"{HEAL_WAIT:g} s; going on with them (it keeps scaling back)",
                          RuntimeWarning, stacklevel=4)
        return _LOCAL["client"]
    with dask.config.set(NANNY_ENV_FIX):
        if cluster is not None:  # its client was closed: start afresh
            cluster.close()
        environ = dict(os.environ)  # nannies write their pre-spawn variables into os.environ
        try:
            # No dashboard; the scheduler's HTTP endpoints on a free loopback port, not 8787.
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                   silence_logs=logging.ERROR)
        finally:
            for name in set(os.environ) - set(environ):
                del os.environ[name]
            os.environ.update(environ)
        client = Client(cluster, set_as_default=False)
        _LOCAL.update(cluster=cluster, client=client)
        return client


def _heal(jobs: int, patience: float, all_workers: bool) -> bool:
    """Scale the local cluster back to ``jobs`` nannies when it has fewer (or resize it).

    Waits until every nanny of the spec is up again (new nannies are made under
    :data:`NANNY_ENV_FIX`, so the wait keeps that setting in place while they are created), and
    with ``all_workers`` until ``jobs`` workers are connected; at most ``patience`` seconds.
    Returns whether that was reached. Call it holding ``_LOCK``.
    """
    import dask

    cluster, c = _LOCAL["cluster"], _LOCAL["client"]
    deadline, asked = time.monotonic() + patience, -math.inf
    environ = dict(os.environ)  # as when the cluster was made: nannies write into os.environ
    try:
        with dask.config.set(NANNY_ENV_FIX):
            while True:
                spec_ok = (len(cluster.worker_spec) == jobs
                           and set(cluster.worker_spec) <= set(cluster.workers))
                if spec_ok and (not all_workers
                                or len(c.scheduler_info(n_workers=-1)["workers"]) == jobs):
                    return True
                now = time.monotonic()
                if now >= deadline:
                    return False
                if not spec_ok and now - asked > 1.0:
                    cluster.scale(jobs)  # opens a nanny for each name of the spec that has none
                    asked = now
                time.sleep(0.1)
    finally:
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)


def _remote_client(address: str, jobs: int):
    from distributed import Client

    client = _REMOTE.get(address)
    if client is None or client.status != "running":
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}); "
                f"start one with `dask scheduler` (see the README's Cluster section), check the "
                f"address, or drop --scheduler to start a local cluster") from None
        _REMOTE[address] = client
    try:
        if jobs > 0:
            client.wait_for_workers(jobs, timeout=WORKER_WAIT)
    except TimeoutError:
        have = len(client.scheduler_info(n_workers=-1)["workers"])
        raise SchedulerError(f"only {have} of --jobs {jobs} Dask workers joined {address} within "
                             f"{WORKER_WAIT:g} s; start more `dask worker {address}` processes "
                             f"or lower --jobs") from None
    return client


def client(scheduler: str | None = None, jobs: int = 1):
    """The :class:`distributed.Client` for ``scheduler`` (None: this process's local cluster).

    Args:
        scheduler: ``tcp://HOST:PORT`` of a running ``dask scheduler``, or None.
        jobs: worker processes of the local cluster; with an address, the number of workers to
            wait for before returning (0: do not wait).

    Returns:
        A connected client, reused by later calls with the same arguments.

    Raises:
        SchedulerError: the address cannot be reached, or fewer than ``jobs`` workers joined.
    """
    with _LOCK:
        c = _remote_client(scheduler, jobs) if scheduler else _local_client(jobs)
    key = scheduler or "local"
    if key not in _WARNED:
        _WARNED.add(key)
        trimmed = [w for w, v in c.run(_malloc_trim, on_error="return").items()
                   if isinstance(v, str)]
        if trimmed:
            warnings.warn(f"{len(trimmed)} Dask worker(s) of {key} run with {MALLOC_VAR} set "
                          f"(Dask's nanny default), which slows torch CPU training about 2x; "
                          f"start them as the README's Cluster section shows", RuntimeWarning,
                          stacklevel=3)
    return c


def close(scheduler: str | None = None) -> None:
    """Disconnect from ``scheduler``; without one, from every cluster, and stop the local one
    (registered to run at exit). The cluster at an address keeps running."""
    with _LOCK:
        for address in [scheduler] if scheduler else list(_REMOTE):
            c = _REMOTE.pop(address, None)
            if c is not None:
                c.close()
            _WARNED.discard(address)
        if _LOCAL and not scheduler:
            _LOCAL["client"].close()
            _LOCAL["cluster"].close()
            _LOCAL.clear()
            _WARNED.discard("local")


atexit.register(close)


def _malloc_trim() -> str | None:
    """Run on a worker: its ``MALLOC_TRIM_THRESHOLD_`` (None when unset)."""
    return os.environ.get(MALLOC_VAR)


def heal_local(c, jobs: int) -> None:
    """Scale this process's local cluster back to ``jobs`` nannies if ``c`` is its client and it
    has fewer (does not wait for the workers to connect; at most :data:`HEAL_WAIT` seconds)."""
    with _LOCK:
        if _LOCAL.get("client") is c:
            _heal(jobs, HEAL_WAIT, all_workers=False)
