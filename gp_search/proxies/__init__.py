"""Proxy tasks: short real trainings of small networks that score a loss (data, models, training).

The face of the package: the registry (:func:`get`, :func:`names`, :class:`Proxy`), the
records every evaluation returns (:class:`EvalResult`, :class:`ProxySpec`), a user's own task
(:class:`Task`), training one loss (:func:`train_one`) or a population
(:func:`train_population`), the held-out suites (:data:`SUITES`). It imports only
:mod:`gp_search.core` and :mod:`gp_search.lang` of gp-search. Inside, the layers (bottom to
top): spec, metrics, calibration, catalog, models, data → train → population → proxy →
user_code, user_task; importing the face imports :mod:`~gp_search.proxies.user_task`, which
registers the user-task data sources and models.

Example:
    >>> from gp_search import proxies
    >>> proxies.get("synthetic-mlp", steps=50).evaluate("ce", seed=0).status
    'ok'
"""

from gp_search.proxies.calibration import ECE_BINS, ece, reliability
from gp_search.proxies.catalog import (
    HELD_OUT,
    SEARCH_SUITES,
    SEARCH_TASK_NOTES,
    SPECS,
    SUITES,
    TASK_NOTES,
    suite_tasks,
)
from gp_search.proxies.data import DATASETS, Dataset, TaskDataError, digest
from gp_search.proxies.metrics import label as metric_label
from gp_search.proxies.models import KINDS
from gp_search.proxies.population import path_for, pays_off, result_key, train_population
from gp_search.proxies.proxy import Proxy, batched_module, from_dict, get, names
from gp_search.proxies.spec import OPTIMIZERS, PATHS, STATUSES, EvalResult, ProxySpec, TrainPath
from gp_search.proxies.train import (
    batch_indices,
    dataset_for,
    device_fault,
    one_thread,
    resolve_device,
    train_one,
)
from gp_search.proxies.user_code import import_object, import_path
from gp_search.proxies.user_task import (
    METRICS,
    TABLE_KEYS,
    Task,
    describe as describe_task,
    load_dataset,
)

__all__ = ["DATASETS", "ECE_BINS", "HELD_OUT", "KINDS", "METRICS", "OPTIMIZERS", "SEARCH_SUITES",
           "PATHS", "SEARCH_TASK_NOTES", "SPECS", "STATUSES", "SUITES", "TABLE_KEYS", "TASK_NOTES",
           "Dataset", "EvalResult", "Proxy", "ProxySpec", "Task", "TaskDataError", "TrainPath",
           "batch_indices", "batched_module", "dataset_for", "describe_task", "device_fault",
           "digest", "ece",
           "from_dict", "get", "import_object", "import_path", "load_dataset", "metric_label",
           "names", "one_thread", "path_for", "pays_off", "reliability", "resolve_device",
           "result_key", "suite_tasks",
           "train_one", "train_population"]
