"""Your own tasks in a search: built and checked before a run directory exists, their data files
recorded in it (``tasks.json``: path, size, SHA-256, how they were read), checked again by
``resume``, and :func:`search`, the Python entry point (``gp_search.search(config, tasks=[...])``).

A task of the config (:attr:`SearchConfig.tasks`, a table of
:data:`gp_search.proxies.user_task.TABLE_KEYS`) becomes a proxy with the run's time limit,
fitness split and step budget; its fitness, like a registered proxy's, is measured against CE
on the same task and seeds when the aggregate is a delta.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gp_search import store
from gp_search.search.config import SearchConfig, build, replace

RECORD = "tasks.json"
"""The run-directory file that records each task's data source."""


def task_proxies(cfg: SearchConfig, tables: Sequence | None = None) -> dict:
    """Each task of ``cfg`` (or of ``tables``, with ``cfg``'s budget) as ``name -> (Proxy,
    record)``, everything read and checked now.

    Raises:
        ValueError: a bad task table, bad data, a model the data cannot take, or a task name
            used twice (:class:`gp_search.proxies.user_data.TaskDataError` is a ValueError).
    """
    tables = cfg.tasks if tables is None else tables
    if not tables:
        return {}
    from gp_search.proxies.user_task import Task

    out: dict = {}
    for i, table in enumerate(tables):
        task = Task.from_table(table, f"config field 'tasks'[{i}]")
        if task.name in out or task.name in cfg.proxies:
            raise ValueError(f"config field 'tasks'[{i}]: the name {task.name!r} is used twice; "
                             f"give the task another 'name'")
        out[task.name] = task.proxy(split=cfg.fitness_split, time_limit=cfg.train_timeout,
                                    steps=cfg.steps or None)
    return out


def write_record(run_dir: Path, built: dict) -> None:
    """``tasks.json``: what each task's data are (written once, when the run starts)."""
    if built:
        store.write_atomic(Path(run_dir) / RECORD,
                           json.dumps([rec for _, rec in built.values()], indent=2) + "\n")


def show(built: dict) -> None:
    """Print one line per task: its data source (path, size, SHA-256 or factory) and shape."""
    from gp_search.proxies.user_task import describe

    for _, record in built.values():
        print(describe(record), flush=True)


def check_unchanged(run_dir: Path, cfg: SearchConfig) -> None:
    """Refuse to resume a run whose task data files are gone or changed.

    Raises:
        store.RunFileError: naming the file, what was recorded and what is there now.
    """
    if not cfg.tasks:
        return
    from gp_search.proxies.user_data import TaskDataError, digest

    path = Path(run_dir) / RECORD
    records = store.read_json(path, "record of the run's task data")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise store.RunFileError(f"{path}: not a list of task records")
    for rec in records:
        if rec.get("source") != "file":
            continue
        try:
            now = digest(rec["path"])
        except (TaskDataError, KeyError, TypeError) as exc:
            raise store.RunFileError(f"{path}: the data of task {rec.get('name')!r} cannot be "
                                     f"read ({exc}); put the file back to resume") from None
        if (now["size"], now["sha256"]) != (rec.get("size"), rec.get("sha256")):
            raise store.RunFileError(
                f"{rec['path']}: the data file of task {rec.get('name')!r} changed since this "
                f"run started (recorded in {path}: {rec.get('size')} bytes, SHA-256 "
                f"{str(rec.get('sha256'))[:16]}…; now {now['size']} bytes, SHA-256 "
                f"{now['sha256'][:16]}…). Its fitness was measured on the old file, so resuming "
                f"would mix two datasets: put the old file back, or start a new run with "
                f"gp-search run")


def config_fields(config: SearchConfig | dict | str | None, overrides: dict) -> dict:
    """The fields of ``config`` (a SearchConfig, a dict, or a preset name or None: none yet,
    :func:`build` adds the preset's) with ``overrides`` applied."""
    data = config.to_dict() if isinstance(config, SearchConfig) else dict(config or {}) \
        if not isinstance(config, str) else {}
    data.update(overrides)
    return data


def search(config: SearchConfig | dict | str | None = None, tasks: Sequence = (),
           quiet: bool = True, objective=None, **overrides) -> store.Run:
    """Run a search on your tasks, or with your own training loop as the fitness (and any
    proxies the config names); return the finished run.

    Args:
        config: a :class:`SearchConfig` (taken as it is, its proxies too), a dict of its
            fields, a preset name, or None (the fields' defaults); from a dict, a preset or
            None, only the tasks are scored unless ``proxies`` is given.
        tasks: :class:`gp_search.Task` objects (from arrays, a file or a factory) or task tables.
            Arrays are checked, then written once to ``RUN_DIR/tasks/<name>.npz``, from which
            every worker reads them.
        quiet: no progress lines.
        objective: your training loop as the fitness, ``fn(loss, seed[, budget]) -> score``
            (a function at a module's top level, or its import path ``"pkg.mod:fn"``; see
            :mod:`gp_search.search.objective`); give ``objective_version`` (and, for a dict of
            metrics, ``objective_metric``) among the overrides.
        **overrides: config fields, e.g. ``population=8, generations=2, jobs=2``.

    Returns:
        The run (:class:`gp_search.store.Run`): ``.hall_of_fame``, ``.best`` (its best loss),
        ``.path`` (the run directory, with ``best.py`` and ``tasks.json``).

    Raises:
        ValueError: bad config, task or objective; raised before anything is written.

    Example:
        >>> import numpy as np, gp_search, tempfile
        >>> x = np.random.default_rng(0).normal(size=(80, 4)); y = (x[:, 0] > 0).astype(int)
        >>> task = gp_search.Task(x_train=x, y_train=y, steps=20, batch_size=16)
        >>> run = gp_search.search(dict(population=4, generations=0, out=tempfile.mkdtemp()),
        ...                        tasks=[task], jobs=1)
        >>> run.config.tasks[0]["name"], (run.path / "tasks" / "task-arrays.npz").is_file()
        ('task-arrays', True)
    """
    import tempfile

    from gp_search.proxies.user_task import Task
    from gp_search.search import objective as objectives
    from gp_search.search.runner import run_search

    given = [t if isinstance(t, Task) else Task.from_table(t, f"tasks[{i}]")
             for i, t in enumerate(tasks)]
    data = config_fields(config, overrides)
    if objective is not None:
        data["objective"] = objectives.path_of(objective)
    if (given or objective is not None) and "proxies" not in data:
        data["proxies"] = []
    arrays = [t for t in given if t.x_train is not None]
    tables = list(data.get("tasks", ())) + [t.table() for t in given if t.x_train is None]
    # Until the arrays have their file in the run directory, a placeholder table stands in.
    cfg = build(config if isinstance(config, str) else None, None,
                **{**data, "tasks": tables + [{"file": "", "name": t.name} for t in arrays]})
    names = set(task_proxies(cfg, tables))  # every file and factory checked
    objectives.check(cfg)  # the objective imports and is a function
    for t in arrays:  # every array and model checked, in a directory that is then removed
        if t.name in names or t.name in cfg.proxies:
            raise ValueError(f"task name {t.name!r} is used twice; give the task another name")
        names.add(t.name)
        with tempfile.TemporaryDirectory(prefix="gp-search-check-") as tmp:
            t.proxy(split=cfg.fitness_split, workdir=tmp)
    run_dir = store.new_run_dir(cfg.out, cfg)
    tables += [t.saved(run_dir / "tasks").table() for t in arrays]
    return store.load_run(run_search(replace(cfg, tasks=tuple(tables)), quiet=quiet,
                                     run_dir=run_dir))
