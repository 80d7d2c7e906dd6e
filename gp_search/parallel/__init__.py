"""Parallel training: many (loss, proxy, seed) trainings at once, in local processes (joblib/loky)
or on a Dask cluster, each under a hard time limit.

:func:`evaluate` is the one entry point; :data:`BACKENDS` lists the ways it can run.
"""

from gp_search.parallel.dask_batch import ClusterError
from gp_search.parallel.dask_batch import run as run_on_dask
from gp_search.parallel.dask_cluster import SchedulerError
from gp_search.parallel.dask_cluster import client as dask_client
from gp_search.parallel.evaluate import BACKENDS, Backend, evaluate
from gp_search.parallel.killable import run as run_killable

__all__ = ["BACKENDS", "Backend", "ClusterError", "SchedulerError", "dask_client", "evaluate",
           "run_killable", "run_on_dask"]
