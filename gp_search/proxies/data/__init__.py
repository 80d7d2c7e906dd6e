"""Datasets: the record and its cache, embedded sources, file readers, scenes, VOC, transforms,
and a user's own files.

Every source ends as a :class:`Dataset` (float32 features, int64 labels, train and test parts);
:func:`load` picks it by name among the sources registered with :func:`register_source` (the
embedded ones and the file readers register on import; a user's task from
:mod:`gp_search.proxies.user_task`). It imports only :mod:`gp_search.core`,
:mod:`gp_search.lang` and :mod:`gp_search.proxies.spec`.
"""

from gp_search.proxies.data import embedded, files  # noqa: F401 (they register their sources)
from gp_search.proxies.data.dataset import (
    DATASETS,
    DEFAULT_DATA_ROOT,
    VAL_FRACTION,
    Dataset,
    clear_cache,
    load,
    register_source,
    validation_split,
)
from gp_search.proxies.data.readers import UnsafePickleError, read_cifar_batch, read_idx
from gp_search.proxies.data.scenes import SceneConfig, class_shares, scenes_dataset
from gp_search.proxies.data.transforms import (
    long_tail_counts,
    mix,
    mixup_plan,
    relabel_map,
    transform,
)
from gp_search.proxies.data.user_arrays import TaskDataError, from_arrays
from gp_search.proxies.data.user_files import digest
from gp_search.proxies.data.user_files import read as read_user_file
from gp_search.proxies.data.voc import read_voc, voc_palette, write_example

__all__ = ["DATASETS", "DEFAULT_DATA_ROOT", "VAL_FRACTION", "Dataset", "SceneConfig",
           "TaskDataError", "UnsafePickleError", "class_shares", "clear_cache", "digest",
           "from_arrays", "load", "long_tail_counts", "mix", "mixup_plan",
           "read_cifar_batch", "read_idx", "read_user_file", "read_voc", "register_source",
           "relabel_map",
           "scenes_dataset", "transform", "validation_split", "voc_palette", "write_example"]
