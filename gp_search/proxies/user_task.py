"""Your own task as a proxy: the :class:`Task` record, the strings that name its data and model
inside a :class:`ProxySpec`, and how any process (loky, Dask worker) rebuilds them from those.

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

Data are read once per process and cached (:func:`gp_search.proxies.data.dataset.load`).

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(60, 4)); y = np.arange(60) % 3
    >>> proxy, record = Task(x_train=x, y_train=y, name="toy", steps=20, batch_size=16).proxy()
    >>> proxy.evaluate("ce", seed=0).status, record["n_train"], proxy.spec.model
    ('ok', 48, 'mlp')
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import json
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gp_search.proxies import models
from gp_search.proxies.data import dataset as data
from gp_search.proxies.data import user_files as user_data
from gp_search.proxies.spec import OPTIMIZERS, ProxySpec
from gp_search.proxies.registry import SPECS, Proxy
from gp_search.proxies.data import TaskDataError

FILE, FACTORY, PY = "file:", "factory:", "py:"
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")
"""The metrics a classification task can be scored by (``ProxySpec.metric``)."""
TABLE_KEYS = ("name", "file", "factory", "label_column", "image_size", "split_seed", "model",
              "steps", "batch_size", "lr", "optimizer", "metric")
"""Keys of a task table (``tasks = [{file = "data.csv", label_column = "y"}]`` in a config)."""
FACTORY_KEYS = ("x_train", "y_train", "x_test", "y_test", "model")
DEFAULT_MODEL = {1: "mlp", 2: "cnn1d", 3: "cnn2d"}
"""Built-in model by the number of dimensions of one sample."""

_RESOLVED: dict[str, object] = {}
_FACTORIES: dict[str, dict] = {}


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A classification task of yours: data (a file, a factory, or arrays), a model, a budget.

    Attributes:
        file: an ``.npz``, ``.csv``/``.tsv`` or image folder (:func:`user_data.read`).
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
    image_size: int = 32
    split_seed: int = 0
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    metric: str = "accuracy"

    def __post_init__(self):
        given = [k for k, v in (("file", self.file), ("factory", self.factory),
                                ("x_train", self.x_train is not None)) if v]
        if len(given) != 1:
            raise TaskDataError(f"a Task needs exactly one source of data: file=..., "
                                f"factory='pkg.mod:make', or x_train=/y_train= arrays; got "
                                f"{given or 'none'}")
        if self.x_train is not None and self.y_train is None:
            raise TaskDataError("a Task from arrays needs y_train as well as x_train")
        if self.optimizer not in OPTIMIZERS:
            raise TaskDataError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got "
                                f"{self.optimizer!r}")
        if self.metric not in METRICS:
            raise TaskDataError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        for key in ("steps", "batch_size", "image_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TaskDataError(f"{key} must be a positive integer; got {value!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise TaskDataError(f"lr must be a positive number; got {self.lr!r}")
        if self.file:
            object.__setattr__(self, "file", str(Path(self.file).expanduser().resolve()))
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
        user_data.from_arrays(self.x_train, self.y_train, self.x_test, self.y_test,
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
            found = user_data.digest(task.file)
            ds, info = user_data.read(task.file, task.label_column, task.image_size,
                                      task.split_seed)
            dataset = FILE + json.dumps({"path": found["path"], "sha256": found["sha256"],
                                         "label_column": task.label_column,
                                         "image_size": task.image_size,
                                         "split_seed": task.split_seed}, sort_keys=True)
            record = {"source": "file", **found}
        else:
            dataset = FACTORY + task.factory
            ds = data.load(dataset)
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
        n_train = data.validation_split(ds).n_train if split == "val" else ds.n_train
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


def import_path(obj, what: str = "model builder", prefix: str = PY,
                fix: str = "or return it from a factory (Task(factory='pkg.mod:make'))") -> str:
    """The import path of a callable (``prefix`` + ``"pkg.mod:name"``, or
    ``"/abs/script.py:name"`` for one defined in the running script), from which a worker
    process can import it again (:func:`resolve`; in this process it resolves to ``obj``
    itself, so a script is not imported a second time)."""
    module, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or not qual or "<" in qual:
        raise TaskDataError(f"the {what} {obj!r} cannot be imported by name in a worker "
                            f"process (a lambda, or defined inside a function); define it at the "
                            f"top level of a module, {fix}")
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if not main_file:
            raise TaskDataError(f"the {what} {qual} is defined in an interactive session, "
                                f"which worker processes cannot import; define it in a module "
                                f"file")
        module = str(Path(main_file).resolve())
    _RESOLVED[f"{module}:{qual}"] = obj
    return f"{prefix}{module}:{qual}"


def import_object(path: str, what: str = "import path") -> object:
    """The object at ``"pkg.mod:attr"`` (or ``"/abs/file.py:attr"``), imported once per process.

    Raises:
        TaskDataError: the path is malformed, the module cannot be imported, or it has no such
            attribute; the message names the path and says how to fix it.
    """
    if path in _RESOLVED:
        return _RESOLVED[path]
    module_name, sep, attr = path.rpartition(":")
    if not sep or not module_name or not attr:
        raise TaskDataError(f"{what} {path!r} must look like 'package.module:name'")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            name = "gp_search_user_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
            spec = importlib.util.spec_from_file_location(name, file)
            if spec is None or not file.is_file():
                raise ImportError(f"no file {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - whatever the module raises, say which path failed
        raise TaskDataError(f"{what} {path!r}: cannot import {module_name!r} ({type(exc).__name__}"
                            f": {exc}); check the spelling and that it is on PYTHONPATH") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TaskDataError(f"{what} {path!r}: {module_name!r} has no attribute "
                                f"{attr!r}; check the name after the ':'")
        obj = getattr(obj, part)
    _RESOLVED[path] = obj
    return obj


def factory_result(path: str) -> dict:
    """What the factory at ``path`` returns, checked, called once per process."""
    if path not in _FACTORIES:
        make = import_object(path, "factory")
        if not callable(make):
            raise TaskDataError(f"factory {path!r} is a {type(make).__name__}, not a function")
        try:
            out = make()
        except Exception as exc:  # noqa: BLE001 - the user's code: report, do not crash
            raise TaskDataError(f"factory {path!r} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(out, Mapping) or not {"x_train", "y_train"} <= set(out) \
                or set(out) - set(FACTORY_KEYS):
            got = sorted(out) if isinstance(out, Mapping) else type(out).__name__
            raise TaskDataError(f"factory {path!r} returned {got}; it must return a dict with "
                                f"x_train, y_train and optionally x_test, y_test and model (a "
                                f"callable (input_shape, num_classes) -> torch.nn.Module)")
        if out.get("model") is not None and not callable(out["model"]):
            raise TaskDataError(f"factory {path!r}: 'model' is a {type(out['model']).__name__}; "
                                f"it must be a callable (input_shape, num_classes) -> nn.Module")
        _FACTORIES[path] = dict(out)
    return _FACTORIES[path]


def load_dataset(name: str) -> data.Dataset:
    """The dataset a ``"file:…"`` or ``"factory:…"`` name stands for (:func:`data.load` caches it).

    Raises:
        TaskDataError: the file changed since the task was made, or fails a check.
    """
    if name.startswith(FACTORY):
        path = name[len(FACTORY):]
        out = factory_result(path)
        return user_data.from_arrays(out["x_train"], out["y_train"], out.get("x_test"),
                                     out.get("y_test"), f"factory {path!r}")[0]
    opts = json.loads(name[len(FILE):])
    now = user_data.digest(opts["path"])
    if now["sha256"] != opts["sha256"]:
        raise TaskDataError(f"{opts['path']} changed since the task was made (SHA-256 "
                            f"{opts['sha256'][:12]}…, now {now['sha256'][:12]}…); put the old "
                            f"file back or make the task again")
    return user_data.read(opts["path"], opts["label_column"], opts["image_size"],
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


def _model_name(task: Task, ds: data.Dataset) -> str:
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


def _check_model(spec: ProxySpec, ds: data.Dataset, where: str) -> None:
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
