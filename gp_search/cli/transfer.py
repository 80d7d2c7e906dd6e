"""The ``gp-search transfer`` command: losses on a held-out suite against CE (``add_commands``).

Trains each LOSS (a reference name, an expression, or a file from ``gp-search export``, read as
text and never run) with CE, NGL, label smoothing and focal on every task of ``--suite``, prints the
change against CE per task and writes ``transfer.md``, the CSVs and ``env.json`` into ``--out``
(:mod:`gp_search.analysis.transfer`). Bad input raises ``ValueError``, which
:func:`gp_search.cli.main.main` prints as one line with exit code 2.
"""

from __future__ import annotations

import sys
import time

from gp_search.core import environment
from gp_search.cli import options
from gp_search.core import job_count, seed_list


def cmd_transfer(args) -> int:
    from gp_search.analysis import format_transfer, transfer, write_transfer

    jobs = job_count(args.jobs, "--jobs")
    seeds = seed_list(args.seeds, minimum=2, what="--seeds")
    tasks = options.task_proxies(args, steps=args.steps)  # your tasks instead of the suite
    start = time.perf_counter()
    res = transfer(args.loss, suite="your tasks" if tasks else args.suite, tasks=tasks,
                   seeds=seeds, jobs=jobs,
                   baselines=[b for b in args.baselines.split(",") if b.strip()],
                   device=args.device,
                   progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - start
    print(format_transfer(res))
    options.write_outputs(lambda: write_transfer(res, args.out, environment.command_line()),
                          args.out, f"{len(res.entries)} losses x {len(res.tasks)} tasks x "
                          f"{len(res.seeds)} seeds", seconds)
    return 0


def add_commands(sub) -> None:
    """Register ``transfer`` on an ``argparse`` subparsers object."""
    from gp_search.analysis import DEFAULT_BASELINES
    from gp_search.proxies import SUITES

    p = sub.add_parser(
        "transfer", help="train losses on a held-out suite of tasks; change vs CE per task",
        description="Train each LOSS with the baselines on every task of the suite (other "
                    "data, class counts 2-20, label noise, other architectures) with the same "
                    "seeds; print and write the change against CE per task (paired 95%% CI, "
                    "p-value), its mean over the tasks and the worst task.")
    p.add_argument("loss", nargs="+",
                   help="a reference loss name, an expression, or an exported loss file "
                        "(gp-search export; read as text, never run)")
    p.add_argument("--suite", default="transfer", choices=tuple(SUITES),
                   help="the task suite (default %(default)s)")
    options.add_seeds(p, minimum=2)
    options.add_jobs(p)
    p.add_argument("--baselines", default=",".join(DEFAULT_BASELINES),
                   help="comma-separated reference losses; must include ce (default: %(default)s)")
    options.add_device(p)
    p.add_argument("--out", default="results/transfer",
                   help="output directory (default %(default)s)")
    options.add_task(p)
    p.set_defaults(func=cmd_transfer)
