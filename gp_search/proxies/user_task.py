"""Your own task as a proxy: the :class:`Task` record, the strings that name its data and model
inside a :class:`ProxySpec`, and how any process (loky, Dask worker) rebuilds them from those:
on import this module registers its ``"file:"`` / ``"factory:"`` sources with
:func:`gp_search.proxies.data.register_source` and its ``"py:"`` / ``"factory:"`` models with
:func:`gp_search.proxies.models.register_builder` (the proxies face imports it, so every
process that rebuilds a proxy has them).

A task's data and model cross process boundaries as text, never as pickled arrays or objects:

* ``dataset = "file:{json}"`` — a data file (:mod:`gp_search.proxies.data.user_files`): its absolute
  path, SHA-256, label column, image size and split seed. The hash is part of
  :meth:`ProxySpec.key`, so a fitness cache never mixes two versions of a file, and a process
  that finds another file there refuses it. Arrays given in Python are written once to an
  ``.npz`` and go the same way.
* ``dataset = "factory:pkg.mod:make"`` — a function imported by name (``importlib``, never
  ``eval``) and called once per process; it returns ``{"x_train", "y_train"[, "x_test",
  "y_test"][, "model"]}``.
* ``model`` — a built-in kind (:data:`gp_search.proxies.models.KINDS`; default from the sample
  shape: vectors ``mlp``, ``(C, L)`` ``cnn1d``, ``(C, H, W)`` ``cnn2d``), ``"py:pkg.mod:Net"``
  (a builder imported by name; ``"py:/abs/script.py:Net"`` for one defined in the running
  script) or ``"factory:pkg.mod:make"`` (the factory's ``"model"``). A builder is called as
  ``builder(input_shape, num_classes)`` under ``torch.manual_seed(seed)`` (the global RNG
  forked and restored), so the seed alone decides the initial weights; user models train on the
  sequential path.

Data are read once per process and cached (:func:`gp_search.proxies.data.load`).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(60, 4)); y = np.arange(60) % 3
    >>> proxy, record = Task(x_train=x, y_train=y, name="toy", steps=20, batch_size=16).proxy()
    >>> proxy.evaluate("ce", seed=0).status, record["n_train"], proxy.spec.model
    ('ok', 48, 'mlp')
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gp_search.core import rule, validate
from gp_search.proxies import models
from gp_search.proxies.catalog import SPECS
from gp_search.proxies.data import (
    Dataset,
    TaskDataError,
    digest,
    from_arrays,
    load,
    read_user_file,
    register_source,
    validation_split,
)
from gp_search.proxies.proxy import Proxy
from gp_search.proxies.spec import METRIC_NAMES, ProxySpec
from gp_search.proxies.user_code import PY, factory_result, import_object, import_path

FILE, FACTORY = "file:", "factory:"
METRICS = tuple(m for m in METRIC_NAMES if m != "miou")
"""The metrics a classification task can be scored by (``ProxySpec.metric`` but ``miou``, which
scores dense tasks)."""
TABLE_KEYS = ("name", "file", "factory", "label_column", "image_size", "split_seed", "model",
              "steps", "batch_size", "lr", "optimizer", "metric")
"""Keys of a task table (``tasks = [{file = "data.csv", label_column = "y"}]`` in a config)."""
DEFAULT_MODEL = {1: "mlp", 2: "cnn1d", 3: "cnn2d"}
"""Built-in model by the number of dimensions of one sample."""

_SPEC_FIELDS = {f.name: f for f in dataclasses.fields(ProxySpec)}


def _as_in_spec(name: str, default, **rules):
    """A Task field under the rule of the ProxySpec field it becomes (one rule, one place)."""
    return dataclasses.field(default=default, metadata={**_SPEC_FIELDS[name].metadata, **rules})


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A classification task of yours: data (a file, a factory, or arrays), a model, a budget.

    Attributes:
        file: an ``.npz``, ``.csv``/``.tsv`` or image folder (:func:`gp_search.proxies.data.read_user_file`).
        factory: ``"pkg.mod:make"``, a function returning the data (and a ``"model"``).
        x_train, y_train, x_test, y_test: arrays or tensors (test part optional).
        model: None (by input shape), a built-in kind, ``"pkg.mod:Net"``, or a callable
            ``(input_shape, num_classes) -> nn.Module`` defined at a module's top level.
        name: proxy name (default ``task-<file stem>``, ``task-<factory>`` or ``task-arrays``).
        label_column: the label column of a CSV/TSV file.
        image_size: image folders are resized to this side.
        split_seed: seeds the stratified test split of data without a test part.
        steps, batch_size, lr, optimizer, metric: the training budget and what is scored.
    """

    file: str = ""
    factory: str = ""
    x_train: object = dataclasses.field(default=None, repr=False)
    y_train: object = dataclasses.field(default=None, repr=False)
    x_test: object = dataclasses.field(default=None, repr=False)
    y_test: object = dataclasses.field(default=None, repr=False)
    model: object = None
    name: str = ""
    label_column: str = ""
    image_size: int = rule(32, "image folders are resized to this side", min=1)
    split_seed: int = 0
    steps: int = _as_in_spec("steps", 300)
    batch_size: int = _as_in_spec("batch_size", 64)
    lr: float = _as_in_spec("lr", 1e-3)
    optimizer: str = _as_in_spec("optimizer", "adam")
    metric: str = _as_in_spec("metric", "accuracy", choices=METRICS)

    def __post_init__(self):
        given = [k for k, v in (("file", self.file), ("factory", self.factory),
                                ("x_train", self.x_train is not None)) if v]
        if len(given) != 1:
            raise TaskDataError(f"a Task needs exactly one source of data: file=..., "
                                f"factory='pkg.mod:make', or x_train=/y_train= arrays; got "
                                f"{given or 'none'}")
        if self.x_train is not None and self.y_train is None:
            raise TaskDataError("a Task from arrays needs y_train as well as x_train")
        if self.file:
            object.__setattr__(self, "file", str(Path(self.file).expanduser().resolve()))
        try:
            validate(self, "task field")
        except ValueError as exc:
            raise TaskDataError(str(exc)) from None
        if callable(self.model):
            object.__setattr__(self, "model", import_path(self.model))
        elif self.model is not None and not isinstance(self.model, str):
            raise TaskDataError(f"model must be None, a built-in kind ({', '.join(models.KINDS)}),"
                                f" an import path 'pkg.mod:Net' or a callable; got {self.model!r}")
        if not self.name:
            object.__setattr__(self, "name", _default_name(self))
        if self.name in SPECS:
            raise TaskDataError(f"task name {self.name!r} is a registered proxy; choose another")

    @classmethod
    def from_table(cls, table: Mapping, where: str = "config") -> Task:
        """A task from a config table, e.g. ``{"file": "iris.csv", "label_column": "y"}``.

        Raises:
            TaskDataError: unknown keys or bad values, naming ``where``.
        """
        if not isinstance(table, Mapping):
            raise TaskDataError(f"{where}: a task must be a table of {', '.join(TABLE_KEYS)}; "
                                f"got {table!r}")
        unknown = sorted(set(table) - set(TABLE_KEYS))
        if unknown:
            raise TaskDataError(f"{where}: unknown task key(s) {unknown}; known: "
                                f"{', '.join(TABLE_KEYS)}")
        try:
            return cls(**table)
        except (TypeError, TaskDataError) as exc:
            raise TaskDataError(f"{where}: {exc}") from None

    def table(self) -> dict:
        """This task as a config table (file or factory tasks; see :meth:`saved` for arrays)."""
        if self.x_train is not None:
            raise TaskDataError(f"task {self.name!r} holds arrays; write them first with "
                                f"Task.saved(directory)")
        out = {k: getattr(self, k) for k in TABLE_KEYS if getattr(self, k) not in ("", None)}
        return {k: v for k, v in out.items() if k in ("file", "factory", "name")
                or v != _DEFAULTS[k]}

    def saved(self, directory) -> Task:
        """The same task with its arrays written to ``directory/<name>.npz`` (checked first,
        so nothing is written for bad arrays); file and factory tasks are returned as they are."""
        if self.x_train is None:
            return self
        from_arrays(self.x_train, self.y_train, self.x_test, self.y_test,
                              f"task {self.name!r}", self.split_seed)
        arrays = {k: _numpy(getattr(self, k)) for k in ("x_train", "y_train", "x_test", "y_test")
                  if getattr(self, k) is not None}
        path = Path(directory) / f"{self.name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
        return dataclasses.replace(self, file=str(path), x_train=None, y_train=None,
                                   x_test=None, y_test=None)

    def proxy(self, split: str = "test", time_limit: float = 600.0, steps: int | None = None,
              workdir=None) -> tuple[Proxy, dict]:
        """Read and check everything now and make the :class:`Proxy` (before any training).

        Args:
            split: ``"test"`` or ``"val"`` (what the proxy scores, as ``ProxySpec.split``).
            time_limit: seconds before a training stops with ``timeout``.
            steps: a step budget instead of the task's.
            workdir: where arrays are written (default a temporary directory).

        Returns:
            ``(proxy, record)``; the record says where the data came from (path, size and
            SHA-256 of a file; the factory), how it was read, the model and the class labels.

        Raises:
            TaskDataError: bad data, an import path that does not resolve, a factory that
                returns the wrong thing, or a model or batch size the data cannot take.
        """
        task = self.saved(workdir or tempfile.mkdtemp(prefix="gp-search-task-"))
        if task.file:
            found = digest(task.file)
            ds, info = read_user_file(task.file, task.label_column, task.image_size,
                                      task.split_seed)
            dataset = FILE + json.dumps({"path": found["path"], "sha256": found["sha256"],
                                         "label_column": task.label_column,
                                         "image_size": task.image_size,
                                         "split_seed": task.split_seed}, sort_keys=True)
            record = {"source": "file", **found}
        else:
            dataset = FACTORY + task.factory
            ds = load(dataset)
            info = {"n_train": ds.n_train, "n_test": ds.n_test, "input_shape": list(ds.input_shape)}
            record = {"source": "factory", "factory": task.factory}
        model = _model_name(task, ds)
        spec = ProxySpec(task.name, dataset, model, steps=steps or task.steps,
                         batch_size=task.batch_size, lr=float(task.lr), time_limit=time_limit,
                         split=split, optimizer=task.optimizer, metric=task.metric,
                         description=f"your task: {record.get('path') or task.factory} "
                                     f"({ds.n_train} / {ds.n_test}, {ds.num_classes} classes), "
                                     f"model {model}")
        where = f"task {task.name!r} ({record.get('path') or 'factory ' + task.factory})"
        _check_model(spec, ds, where)
        n_train = validation_split(ds).n_train if split == "val" else ds.n_train
        if task.batch_size > n_train:
            raise TaskDataError(f"{where}: batch_size {task.batch_size} is larger than "
                                f"its {n_train} training samples ({split} split); pass "
                                f"--batch-size {max(1, n_train // 2)} or less")
        record = {"name": task.name, **record, "dataset": dataset, "model": model,
                  "num_classes": ds.num_classes, **info}
        return Proxy(spec), record


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Task)}


def describe(record: dict) -> str:
    """One line on a task's record (:meth:`Task.proxy`): where its data came from, its size."""
    where = (f"{record['path']} ({record['size']} bytes, SHA-256 {record['sha256'][:16]}…)"
             if record["source"] == "file" else f"factory {record['factory']}")
    return (f"task {record['name']}: {where}; {record['num_classes']} classes, "
            f"{record['n_train']} train / {record['n_test']} test, model {record['model']}")


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def _default_name(task: Task) -> str:
    stem = (Path(task.file).stem if task.file else
            task.factory.rpartition(":")[2] if task.factory else "arrays")
    return "task-" + (re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "data")


def load_dataset(name: str, _root=None) -> Dataset:
    """The dataset a ``"file:…"`` or ``"factory:…"`` name stands for (:func:`load` caches it;
    registered with :func:`gp_search.proxies.data.register_source` for both prefixes).

    Raises:
        TaskDataError: the file changed since the task was made, or fails a check.
    """
    if name.startswith(FACTORY):
        path = name[len(FACTORY):]
        out = factory_result(path)
        return from_arrays(out["x_train"], out["y_train"], out.get("x_test"),
                                     out.get("y_test"), f"factory {path!r}")[0]
    opts = json.loads(name[len(FILE):])
    now = digest(opts["path"])
    if now["sha256"] != opts["sha256"]:
        raise TaskDataError(f"{opts['path']} changed since the task was made (SHA-256 "
                            f"{opts['sha256'][:12]}…, now {now['sha256'][:12]}…); put the old "
                            f"file back or make the task again")
    return read_user_file(opts["path"], opts["label_column"], opts["image_size"],
                          opts["split_seed"])[0]


def build_model(kind: str, input_shape: tuple, num_classes: int, seed: int, **kw) -> nn.Module:
    """A user's model (``"py:…"`` or ``"factory:…"``), its initial weights decided by ``seed``."""
    if kind.startswith(FACTORY):
        builder = factory_result(kind[len(FACTORY):])["model"]
    else:
        builder = import_object(kind[len(PY):], "model")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            model = builder(tuple(input_shape), int(num_classes), **kw)
        except Exception as exc:  # noqa: BLE001 - the user's code: report, do not crash
            raise TaskDataError(f"model {kind!r} raised {type(exc).__name__} when built as "
                                f"builder(input_shape={tuple(input_shape)}, num_classes="
                                f"{num_classes}): {exc}") from None
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise TaskDataError(f"model {kind!r} returned {type(model).__name__}; it must return a "
                            f"torch.nn.Module with parameters")
    return model


def _model_name(task: Task, ds: Dataset) -> str:
    if task.model is None:
        if task.factory and factory_result(task.factory).get("model") is not None:
            return FACTORY + task.factory
        return DEFAULT_MODEL.get(len(ds.input_shape), "mlp")
    if task.model in models.KINDS or task.model.startswith(PY):
        return task.model
    if ":" in task.model:
        return PY + task.model
    raise TaskDataError(f"task {task.name!r}: model {task.model!r} is neither a built-in kind "
                        f"({', '.join(models.KINDS)}) nor an import path 'pkg.mod:Net'")


def _check_model(spec: ProxySpec, ds: Dataset, where: str) -> None:
    """Build the model and run two training samples through it: logits (2, K) or an error."""
    try:
        model = models.build(spec.model, ds.input_shape, ds.num_classes, 0, **dict(spec.model_kw))
        with torch.no_grad():
            out = model(ds.x_train[:2])
    except TaskDataError:
        raise
    except Exception as exc:  # noqa: BLE001 - a model that cannot take the data
        raise TaskDataError(f"{where}: model {spec.model!r} cannot take samples of shape "
                            f"{ds.input_shape} ({type(exc).__name__}: {exc}); choose another "
                            f"--model (mlp takes any shape)") from None
    if tuple(out.shape) != (2, ds.num_classes):
        raise TaskDataError(f"{where}: model {spec.model!r} gives outputs of shape "
                            f"{tuple(out.shape)} for 2 samples; it must give logits (2, "
                            f"{ds.num_classes}), one per class")


register_source(FILE, load_dataset)
register_source(FACTORY, load_dataset)
models.register_builder(PY, build_model)
models.register_builder(FACTORY, build_model)
