"""The ``gp-search compare`` and ``gp-search report`` commands (register with ``add_commands``).

``compare`` trains CE, SCE, focal, CE+L2, PolyLoss-1, label smoothing and NGL (plus ``--loss``
expressions and the best loss of each ``--run``) on each ``--proxy`` with the same seeds, prints
the table and writes ``compare.md``, the CSVs and the PNGs into ``--out``
(:mod:`gp_search.analysis.compare`, :mod:`gp_search.analysis.report`). ``report`` writes ``report.md`` and PNGs
for a search run directory. Bad input raises ``ValueError``/``FileNotFoundError``, which
:func:`gp_search.cli.main.main` prints as one line with exit code 2.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path


def _seeds(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--seeds must be a count or a comma-separated list of integers, got "
                         f"{text!r}") from None
    if len(values) == 1:
        if values[0] < 2:
            raise ValueError(f"--seeds must be at least 2 (a paired test needs 2 pairs), got "
                             f"{values[0]}")
        return list(range(values[0]))
    if len(set(values)) != len(values) or any(v < 0 for v in values):
        raise ValueError(f"--seeds list must hold distinct non-negative integers, got {text!r}")
    return values


def environment() -> dict:
    """Versions and machine, for the record in ``compare.md``."""
    import deap
    import numpy
    import sympy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "sympy": sympy.__version__, "deap": deap.__version__,
            "cpu": f"{cpu} ({os.cpu_count()} cores)", "os": platform.platform()}


def _command(args) -> str:
    """The command line that reproduces ``args`` (rebuilt from them, so also right in-process)."""
    from gp_search.analysis.compare import DEFAULT_LOSSES

    parts = ["compare"]
    for name in args.proxy:
        parts += ["--proxy", name]
    parts += ["--seeds", args.seeds]
    for flag, values in (("--loss", args.loss), ("--run", args.run)):
        for v in values or ():
            parts += [flag, v]
    if args.baselines != ",".join(DEFAULT_LOSSES):
        parts += ["--baselines", args.baselines]
    parts += ["--jobs", str(args.jobs)]
    for flag, value, default in (("--device", args.device, "cpu"),
                                 ("--batched", args.batched, "auto"),
                                 ("--steps", args.steps, None),
                                 ("--data-root", args.data_root, None)):
        if value != default:
            parts += [flag, str(value)]
    parts += ["--out", args.out]
    return "gp-search " + " ".join(shlex.quote(a) for a in parts)


def cmd_compare(args) -> int:
    from gp_search import proxies
    from gp_search.analysis.compare import compare, loss_entries
    from gp_search.analysis.report import format_table, write_comparison

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    seeds = _seeds(args.seeds)
    names = args.proxy or []
    if not names:
        raise ValueError(f"give at least one --proxy; known: {', '.join(proxies.names())}")
    for name in names:
        proxies.get(name)  # unknown name: one line listing the known ones
    baselines = [b for b in args.baselines.split(",") if b.strip()]
    entries = loss_entries(args.loss or (), args.run or (), baselines)
    start = time.perf_counter()
    cmp = compare(entries, names, seeds, jobs=args.jobs, device=args.device,
                  batched={"auto": "auto", "on": True, "off": False}[args.batched],
                  steps=args.steps, data_root=args.data_root,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - start
    print(format_table(cmp))
    try:
        files = write_comparison(cmp, args.out, _command(args), environment())
    except OSError as exc:
        raise ValueError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"\n{len(entries)} losses x {len(names)} proxies x {len(seeds)} seeds in {seconds:.0f} s; "
          f"written to {args.out}: {', '.join(f.name for f in files)}")
    return 0


def cmd_report(args) -> int:
    from gp_search.analysis.report import write_run_report

    try:
        files = write_run_report(args.run_dir, args.out)
    except OSError as exc:
        raise ValueError(f"cannot write the report: {exc.strerror or exc}") from None
    for f in files:
        print(f)
    return 0


def add_commands(sub) -> None:
    """Register ``compare`` and ``report`` on an ``argparse`` subparsers object."""
    from gp_search.analysis.compare import DEFAULT_LOSSES

    p = sub.add_parser(
        "compare", help="compare losses with CE on proxies: paired CIs, p-values, calibration",
        description="Train the baselines, NGL and any --loss / --run losses with the same seeds "
                    "on each proxy; print and write the table (change vs CE with paired 95%% CI "
                    "and p-value, n, ECE, confidence) and the plots.")
    p.add_argument("--proxy", action="append", help="proxy name; repeat for more")
    p.add_argument("--seeds", default="5",
                   help="number of seeds (0..N-1, at least 2) or a list such as 3,7,9")
    p.add_argument("--loss", action="append",
                   help="an extra loss: reference name or expression; repeatable")
    p.add_argument("--run", action="append",
                   help="a search run directory: its hall-of-fame #1 joins, labelled by run id")
    p.add_argument("--baselines", default=",".join(DEFAULT_LOSSES),
                   help="comma-separated reference losses; must include ce (default: %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--out", default="results/compare", help="output directory (default "
                   "%(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--batched", default="auto", choices=("auto", "on", "off"),
                   help="population-batched training, as in gp-search evaluate (default auto)")
    p.add_argument("--steps", type=int, help="optimiser steps instead of each proxy's budget")
    p.add_argument("--data-root", help="directory of user-supplied datasets (default ./data)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="Markdown + PNG report of a search run",
                       description="Fitness by generation, scoring routes and the hall of fame "
                                   "of a run directory, as report.md with PNGs.")
    p.add_argument("run_dir", help="the run directory (results/runs/<run-id>)")
    p.add_argument("--out", help="output directory (default RUN_DIR/report)")
    p.set_defaults(func=cmd_report)
