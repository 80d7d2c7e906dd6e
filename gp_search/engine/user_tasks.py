"""Your own tasks in a search: built and checked before a run directory exists, their data files
recorded in it (``tasks.json``: path, size, SHA-256, how they were read), checked again by
``resume`` (the Python entry point, ``gp_search.search(config, tasks=[...])``, is
:func:`gp_search.api.search`).

A task of the config (:attr:`SearchConfig.tasks`, a table of
:data:`gp_search.proxies.user_task.TABLE_KEYS`) becomes a proxy with the run's time limit,
fitness split and step budget; its fitness, like a registered proxy's, is measured against CE
on the same task and seeds when the aggregate is a delta.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig

def task_proxies(cfg: SearchConfig, tables: Sequence | None = None) -> dict:
    """Each task of ``cfg`` (or of ``tables``, with ``cfg``'s budget) as ``name -> (Proxy,
    record)``, everything read and checked now.

    Raises:
        ValueError: a bad task table, bad data, a model the data cannot take, or a task name
            used twice (:class:`gp_search.proxies.data.user_files.TaskDataError` is a ValueError).
    """
    tables = cfg.tasks if tables is None else tables
    if not tables:
        return {}
    from gp_search.proxies import Task

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
        store.write_atomic(store.RunDir(run_dir).tasks_record,
                           json.dumps([rec for _, rec in built.values()], indent=2) + "\n")


def show(built: dict) -> None:
    """Print one line per task: its data source (path, size, SHA-256 or factory) and shape."""
    from gp_search.proxies import describe_task as describe

    for _, record in built.values():
        print(describe(record), flush=True)


def check_unchanged(run_dir: Path, cfg: SearchConfig) -> None:
    """Refuse to resume a run whose task data files are gone or changed.

    Raises:
        store.RunFileError: naming the file, what was recorded and what is there now.
    """
    if not cfg.tasks:
        return
    from gp_search.proxies import TaskDataError, digest

    path = store.RunDir(run_dir).tasks_record
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
