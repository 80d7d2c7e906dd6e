"""The ``gp-search compare`` and ``gp-search report`` commands (register with ``add_commands``).

``compare`` trains CE, SCE, focal, CE+L2, PolyLoss-1, label smoothing and NGL (plus ``--loss``
expressions and the best loss of each ``--run``) on each ``--proxy`` with the same seeds, prints
the table and writes ``compare.md``, the CSVs and the PNGs into ``--out``
(:mod:`gp_search.analysis.compare`, :mod:`gp_search.analysis.report`). ``report`` writes ``report.md`` and PNGs
for a search run directory. Bad input raises ``ValueError``/``FileNotFoundError``, which
:func:`gp_search.cli.main.main` prints as one line with exit code 2.
"""

from __future__ import annotations

import sys
import time

from gp_search.core import environment
from gp_search.cli import options
from gp_search.core import job_count, seed_list


def cmd_compare(args) -> int:
    from gp_search import proxies
    from gp_search.analysis import compare, loss_entries
    from gp_search.analysis import format_table, write_comparison

    jobs = job_count(args.jobs, "--jobs")
    seeds = seed_list(args.seeds, minimum=2, what="--seeds")
    names = args.proxy or []
    if not names and not args.task:
        raise ValueError(f"give at least one --proxy or --task; known proxies: "
                         f"{', '.join(proxies.names())}")
    for name in names:
        proxies.get(name)  # unknown name: one line listing the known ones
    names += options.task_proxies(args, steps=args.steps)  # your tasks, checked now
    baselines = [b for b in args.baselines.split(",") if b.strip()]
    entries = loss_entries(args.loss or (), args.run or (), baselines)
    start = time.perf_counter()
    cmp = compare(entries, names, seeds, jobs=jobs, device=args.device,
                  batched=options.BATCHED[args.batched],
                  steps=args.steps, data_root=args.data_root,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - start
    print(format_table(cmp))
    options.write_outputs(lambda: write_comparison(cmp, args.out, environment.command_line(),
                                                   environment.versions()),
                          args.out, f"{len(entries)} losses x {len(names)} proxies x "
                          f"{len(seeds)} seeds", seconds)
    return 0


def cmd_report(args) -> int:
    from gp_search.analysis import write_run_report

    try:
        files = write_run_report(args.run_dir, args.out)
    except OSError as exc:
        raise ValueError(f"cannot write the report: {exc.strerror or exc}") from None
    for f in files:
        print(f)
    return 0


def add_commands(sub) -> None:
    """Register ``compare`` and ``report`` on an ``argparse`` subparsers object."""
    from gp_search.analysis import DEFAULT_LOSSES

    p = sub.add_parser(
        "compare", help="compare losses with CE on proxies: paired CIs, p-values, calibration",
        description="Train the baselines, NGL and any --loss / --run losses with the same seeds "
                    "on each proxy; print and write the table (change vs CE with paired 95%% CI "
                    "and p-value, n, ECE, confidence) and the plots.")
    p.add_argument("--proxy", action="append", help="proxy name; repeat for more")
    options.add_seeds(p, minimum=2)
    p.add_argument("--loss", action="append",
                   help="an extra loss: reference name or expression; repeatable")
    p.add_argument("--run", action="append",
                   help="a search run directory: its hall-of-fame #1 joins, labelled by run id")
    p.add_argument("--baselines", default=",".join(DEFAULT_LOSSES),
                   help="comma-separated reference losses; must include ce (default: %(default)s)")
    options.add_jobs(p)
    p.add_argument("--out", default="results/compare", help="output directory (default "
                   "%(default)s)")
    options.add_device(p)
    options.add_batched(p, "population-batched training, as in gp-search evaluate (default auto)")
    p.add_argument("--steps", type=int, help="optimiser steps instead of each proxy's budget")
    p.add_argument("--data-root", help="directory of user-supplied datasets (default ./data)")
    options.add_task(p, steps=False)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="Markdown + PNG report of a search run",
                       description="Fitness by generation, scoring routes and the hall of fame "
                                   "of a run directory, as report.md with PNGs.")
    p.add_argument("run_dir", help="the run directory (results/runs/<run-id>)")
    p.add_argument("--out", help="output directory (default RUN_DIR/report)")
    p.set_defaults(func=cmd_report)
