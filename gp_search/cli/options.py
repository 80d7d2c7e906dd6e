"""The flags several commands share (``--seeds``, ``--jobs``, ``--device``, ``--task`` and its
options), declared once.

Every command reads them as text and parses them with :func:`gp_search.core.seeds.seed_list` and
:func:`gp_search.core.seeds.job_count` inside the command, so a bad value is one line and exit code
2 (:func:`gp_search.cli.main.main`), whichever command it was given to.
"""

from __future__ import annotations

import dataclasses

JOBS_DEFAULT = "1"
DEVICE_DEFAULT = "auto"


def add_seeds(p, default: "str | None" = "5", minimum: int = 1, extra: str = "") -> None:
    """``--seeds``: a count N (seeds 0..N-1) or a list such as 3,7,9."""
    least = f", at least {minimum}" if minimum > 1 else ""
    p.add_argument("--seeds", default=default,
                   help=f"number of seeds (0..N-1{least}) or a list such as 3,7,9"
                        f"{extra} (default {default})")


def add_jobs(p, extra: str = "") -> None:
    """``--jobs``: worker processes, -1 for one per core."""
    p.add_argument("--jobs", default=JOBS_DEFAULT,
                   help=f"worker processes (-1: one per core){extra} (default {JOBS_DEFAULT})")


BATCHED = {"auto": "auto", "on": True, "off": False}
"""``--batched`` as given → the ``batched`` argument of :func:`gp_search.parallel.evaluate`."""


def add_batched(p, help: str) -> None:
    p.add_argument("--batched", default="auto", choices=tuple(BATCHED), help=help)


def add_device(p) -> None:
    """``--device``: where trainings run."""
    p.add_argument("--device", default=DEVICE_DEFAULT,
                   help=f"cpu, cuda, cuda:N or auto (default {DEVICE_DEFAULT})")


def write_outputs(write, out, counts: str, seconds: float) -> None:
    """Call ``write()`` (which returns the files written) and print where they went; a failed
    write is a ``ValueError`` naming ``out`` (one line, exit code 2)."""
    try:
        files = write()
    except OSError as exc:
        raise ValueError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"\n{counts} in {seconds:.0f} s; written to {out}: {', '.join(f.name for f in files)}")


def add_task(p, steps: bool = True, repeat: bool = True) -> None:
    """``--task FILE`` (or ``--task pkg.mod:make``) and the options of such a task."""
    g = p.add_argument_group("your own task (gp_search.proxies.user_task)")
    g.add_argument("--task", action="append" if repeat else "store", default=None,
                   help="a data file (.npz with x_train, y_train[, x_test, y_test]; .csv/.tsv "
                        "with --label-column), a folder of class sub-folders of images, or a "
                        "factory 'pkg.mod:make'" + ("; repeatable" if repeat else ""))
    g.add_argument("--label-column", default="", help="the label column of a .csv/.tsv task")
    from gp_search.proxies import OPTIMIZERS
    from gp_search.proxies import KINDS
    from gp_search.proxies import METRICS, Task

    d = {f.name: f.default for f in dataclasses.fields(Task)}  # defaults stay Task's (None here)
    g.add_argument("--model", default=None, help=f"{', '.join(KINDS)} or 'pkg.mod:Net' "
                   "(default: by the sample shape: mlp, cnn1d, cnn2d)")
    if steps:
        g.add_argument("--steps", type=int, default=None,
                       help=f"optimiser steps (a task's default {d['steps']})")
    g.add_argument("--batch-size", type=int, default=None,
                   help=f"training batch size (default {d['batch_size']})")
    g.add_argument("--lr", type=float, default=None, help=f"learning rate (default {d['lr']:g})")
    g.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                   help=f"adam, or sgd with momentum 0.9 (default {d['optimizer']})")
    g.add_argument("--metric", default=None, choices=METRICS,
                   help=f"what a training is scored by (default {d['metric']})")
    g.add_argument("--image-size", type=int, default=None,
                   help=f"image-folder tasks: images resized to this side (default {d['image_size']})")


def task_tables(args) -> list[dict]:
    """The ``--task`` options as task tables (:data:`gp_search.proxies.user_task.TABLE_KEYS`);
    a path that exists (or looks like a file) is a data file, ``pkg.mod:make`` a factory."""
    from pathlib import Path

    given = getattr(args, "task", None) or []  # a parser without add_task has no tasks
    given = given if isinstance(given, list) else [given]
    if not given:
        return []
    shared = {"label_column": args.label_column, "model": args.model,
              "batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
              "metric": args.metric, "image_size": args.image_size}
    tables = []
    for text in given:
        path = Path(text).expanduser()
        is_factory = ":" in text and not path.exists() and "/" not in text
        source = {"factory": text} if is_factory else {"file": str(path.resolve())}
        tables.append({**source, **{k: v for k, v in shared.items() if v not in (None, "")}})
    return tables


def task_proxies(args, steps: int | None = None) -> list:
    """The ``--task`` options as proxies scored on each task's test part, everything checked
    now; prints where each task's data came from."""
    from gp_search.proxies import Task, describe_task as describe

    out = []
    for table in task_tables(args):
        proxy, record = Task.from_table(table, "--task").proxy(steps=steps)
        print(describe(record))
        out.append(proxy)
    return out
