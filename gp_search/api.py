"""The Python entry points: :func:`search` (a search on your tasks or objective), :func:`run`
and :func:`resume` (a config's run, as ``gp-search run`` / ``resume``), :class:`Search`
(ask/tell), each with the transfer stage as the run's end.

They sit above the engine and the analysis: the engine (:mod:`gp_search.engine`) runs a search
and takes its end as a hook; here that hook is :class:`gp_search.analysis.TransferStage`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from gp_search.analysis import TransferStage
from gp_search.engine import (
    AskTellSearch,
    Evaluator,
    Run,
    RunDir,
    SearchConfig,
    build,
    check_objective,
    config_fields,
    load_run,
    new_run_dir,
    objective_path,
    replace,
    run_search,
    task_proxies,
)
from gp_search.engine import resume as resume_run
from gp_search.proxies import Task

__all__ = ["Search", "resume", "run", "search"]


def run(cfg: SearchConfig, quiet: bool = False, evaluator: Evaluator | None = None,
        run_dir: Path | None = None) -> Path:
    """Start a new search on ``cfg`` and conclude it with the transfer stage (what ``gp-search
    run`` does); returns its run directory. Raises as
    :func:`gp_search.engine.runner.run_search`."""
    return run_search(cfg, quiet, evaluator, run_dir, finish=TransferStage())


def resume(run_dir: str | Path, quiet: bool = False, evaluator: Evaluator | None = None) -> Path:
    """Continue a run from its checkpoint, transfer stage included (what ``gp-search resume``
    does). Raises as :func:`gp_search.engine.runner.resume`."""
    return resume_run(run_dir, quiet, evaluator, finish=TransferStage())


class Search(AskTellSearch):
    __doc__ = AskTellSearch.__doc__
    finish = TransferStage()


def search(config: SearchConfig | dict | str | None = None, tasks: Sequence = (),
           quiet: bool = True, objective=None, **overrides) -> Run:
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
            :mod:`gp_search.engine.objective`); give ``objective_version`` (and, for a dict of
            metrics, ``objective_metric``) among the overrides.
        **overrides: config fields, e.g. ``population=8, generations=2, jobs=2``.

    Returns:
        The run (:class:`gp_search.engine.rundir.Run`): ``.hall_of_fame``, ``.best`` (its best
        loss), ``.path`` (the run directory, with ``best.py`` and ``tasks.json``).

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
    given = [t if isinstance(t, Task) else Task.from_table(t, f"tasks[{i}]")
             for i, t in enumerate(tasks)]
    data = config_fields(config, overrides)
    if objective is not None:
        data["objective"] = objective_path(objective)
    if (given or objective is not None) and "proxies" not in data:
        data["proxies"] = []
    arrays = [t for t in given if t.x_train is not None]
    tables = list(data.get("tasks", ())) + [t.table() for t in given if t.x_train is None]
    # Until the arrays have their file in the run directory, a placeholder table stands in.
    cfg = build(config if isinstance(config, str) else None, None,
                **{**data, "tasks": tables + [{"file": "", "name": t.name} for t in arrays]})
    names = set(task_proxies(cfg, tables))  # every file and factory checked
    check_objective(cfg)  # the objective imports and is a function
    for t in arrays:  # every array and model checked, in a directory that is then removed
        if t.name in names or t.name in cfg.proxies:
            raise ValueError(f"task name {t.name!r} is used twice; give the task another name")
        names.add(t.name)
        with tempfile.TemporaryDirectory(prefix="gp-search-check-") as tmp:
            t.proxy(split=cfg.fitness_split, workdir=tmp)
    run_dir = new_run_dir(cfg.out, cfg)
    tables += [t.saved(RunDir(run_dir).tasks).table() for t in arrays]
    return load_run(run(replace(cfg, tasks=tuple(tables)), quiet=quiet, run_dir=run_dir))
