"""Datasets: the record and its cache, embedded sources, file readers, scenes, VOC, transforms,
and a user's own files.

Every source ends as a :class:`Dataset` (float32 features, int64 labels, train and test parts);
:func:`load` picks it by name. It imports only :mod:`gp_search.core` and :mod:`gp_search.lang`.
"""

from gp_search.proxies.data.dataset import (
    DATASETS,
    DEFAULT_DATA_ROOT,
    VAL_FRACTION,
    Dataset,
    clear_cache,
    load,
    validation_split,
)
from gp_search.proxies.data.readers import UnsafePickleError, read_cifar_batch, read_idx
from gp_search.proxies.data.scenes import SceneConfig, class_shares, scenes_dataset
from gp_search.proxies.data.transforms import (
    HELD_OUT,
    SUITES,
    TASK_NOTES,
    check_mixup,
    check_transform,
    long_tail_counts,
    mixup_plan,
    suite_tasks,
    transform,
)
from gp_search.proxies.data.user_files import TaskDataError, digest
from gp_search.proxies.data.voc import read_voc, voc_palette, write_example

__all__ = ["DATASETS", "DEFAULT_DATA_ROOT", "HELD_OUT", "SUITES", "TASK_NOTES", "VAL_FRACTION",
           "Dataset", "SceneConfig", "TaskDataError", "UnsafePickleError", "check_mixup",
           "check_transform", "class_shares", "clear_cache", "digest", "load",
           "long_tail_counts", "mixup_plan", "read_cifar_batch", "read_idx", "read_voc",
           "scenes_dataset", "suite_tasks", "transform", "validation_split", "voc_palette",
           "write_example"]
