"""The ``gp-search reproduce-ngl`` command: targeted rediscovery of NGL, one seed or a k/N table.

``--mode target`` evolves random trees over the paper primitive set towards NGL's behaviour
(:mod:`gp_search.rediscover`) and prints ``rediscovered (exact)``, ``rediscovered
(behavioural)`` or ``not rediscovered`` for each seed; ``--seeds N`` runs seeds 0..N-1 (``--jobs``
at a time) and prints the success table, which ``--table DIR`` also writes as
``DIR/rediscovery.md`` and ``DIR/rediscovery.csv`` with the command and environment.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import platform
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

CSV_COLUMNS = ("seed", "level", "generation", "seconds", "expression", "max_rel_grad_error",
               "distance", "size", "behavioural_generation", "behavioural_seconds",
               "exact_generation", "exact_seconds", "generations_run", "seconds_total")


def add_commands(sub) -> None:
    """Register ``reproduce-ngl`` on an ``argparse`` subparsers object."""
    from gp_search.rediscover import RediscoveryConfig

    d = RediscoveryConfig()
    p = sub.add_parser(
        "reproduce-ngl", help="rediscover NGL from random trees (targeted: behavioural fitness)",
        description="Targeted rediscovery of NGL: evolve random trees over the paper primitive "
                    "set with fitness = behavioural distance to NGL; report exact / behavioural "
                    "success per seed.")
    p.add_argument("--mode", required=True, choices=["target"],
                   help="target: fitness is the behavioural distance to NGL")
    p.add_argument("--seed", type=int, default=0, help="the seed of a single run (default 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="run seeds 0..N-1 instead of --seed and print the k/N table")
    p.add_argument("--population", type=int, default=d.population,
                   help=f"individuals per generation (default {d.population}, at most 1000)")
    p.add_argument("--generations", type=int, default=d.generations,
                   help=f"generations after generation 0 (default {d.generations})")
    p.add_argument("--time-budget", type=float, default=d.time_budget,
                   help=f"seconds per seed, checked after each generation (default "
                        f"{d.time_budget:g}; 0: none)")
    p.add_argument("--jobs", type=int, default=1, help="seeds run in parallel processes")
    p.add_argument("--out", default=d.out, help=f"parent of the run directories (default {d.out})")
    p.add_argument("--table", default=None,
                   help="with --seeds: write DIR/rediscovery.md and DIR/rediscovery.csv")
    p.add_argument("--confirm", action="store_true",
                   help="confirm behavioural successes on mnist1d-cnn (5 trainings each)")
    p.add_argument("--quiet", action="store_true", help="no per-generation lines")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    from gp_search.rediscover import RediscoveryConfig, rediscover

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1; got {args.jobs}")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1; got {args.seeds}")
    if args.table and args.seeds is None:
        raise ValueError("--table needs --seeds N (it writes the k/N table)")
    _one_thread()
    rcfg = RediscoveryConfig(seed=args.seed, population=args.population,
                             generations=args.generations, time_budget=args.time_budget,
                             confirm=args.confirm, out=args.out)
    if args.seeds is None:
        out = rediscover(rcfg, quiet=args.quiet)
        print(out.line(), flush=True)
        return 0
    configs = [replace(rcfg, seed=s) for s in range(args.seeds)]
    outcomes = []
    if args.jobs == 1:
        for c in configs:
            outcomes.append(rediscover(c, quiet=True))
            print(f"seed {c.seed}: {outcomes[-1].line()}", flush=True)
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked torch state
        with ctx.Pool(args.jobs, initializer=_one_thread) as pool:
            for o in pool.imap(_run_quiet, configs):
                outcomes.append(o)
                print(f"seed {o.seed}: {o.line()}", flush=True)
    print()
    print(table_markdown(outcomes), flush=True)
    if args.table:
        command = "gp-search " + " ".join(shlex.quote(a) for a in sys.argv[1:]) \
            if Path(sys.argv[0]).name in ("gp-search", "__main__.py") else ""
        write_table(outcomes, Path(args.table), command, rcfg)
        print(f"\nwritten: {Path(args.table) / 'rediscovery.md'}, "
              f"{Path(args.table) / 'rediscovery.csv'}")
    return 0


def _one_thread() -> None:
    # Scoring is NumPy on small arrays; torch (used by the hall of fame's fingerprints) would
    # otherwise start one thread per core in every process and fight the other seeds.
    import torch

    torch.set_num_threads(1)


def _run_quiet(rcfg):
    from gp_search.rediscover import rediscover

    return rediscover(rcfg, quiet=True)


# --- the success table ---------------------------------------------------------------------------

def _fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def table_markdown(outcomes: list) -> str:
    """The k/N summary and one row per seed, as Markdown."""
    n = len(outcomes)
    exact = [o for o in outcomes if o.level == "exact"]
    behav = [o for o in outcomes if o.behavioural_generation is not None]
    lines = [f"behavioural success: {len(behav)}/{n} seeds (max relative gradient error ≤ 1e-2"
             f"{_range(behav, 'behavioural')})",
             f"exact success: {len(exact)}/{n} seeds{_range(exact, 'exact')}", "",
             "| seed | level | generation | seconds | behavioural at (gen, s) | "
             "max rel. grad. error | size | expression |",
             "|---:|---|---:|---:|---:|---:|---:|---|"]
    for o in outcomes:
        lines.append(
            f"| {o.seed} | {o.level} | {_fmt(o.generation, 'd')} | {_fmt(o.seconds, '.1f')} | "
            f"{_fmt(o.behavioural_generation, 'd')}, {_fmt(o.behavioural_seconds, '.1f')} | "
            f"{o.max_grad_error:.2e} | {o.size} | `{o.expression}` |")
    return "\n".join(lines)


def _range(items: list, level: str) -> str:
    if not items:
        return ""
    gens = sorted(getattr(o, f"{level}_generation") for o in items)
    secs = sorted(getattr(o, f"{level}_seconds") for o in items)
    return (f"; generation median {gens[len(gens) // 2]} (range {gens[0]}–{gens[-1]}), seconds "
            f"median {secs[len(secs) // 2]:.1f} (range {secs[0]:.1f}–{secs[-1]:.1f})")


def table_csv(outcomes: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for o in outcomes:
        d = o.to_dict()
        d["max_rel_grad_error"] = d.pop("max_grad_error")
        w.writerow(["" if d.get(c) is None else d[c] for c in CSV_COLUMNS])
    return buf.getvalue()


def environment() -> dict:
    """Versions and machine the table was produced with."""
    import deap
    import numpy
    import sympy
    import torch

    import multiprocessing as mp

    return {"python": platform.python_version(), "torch": torch.__version__,
            "deap": deap.__version__, "sympy": sympy.__version__, "numpy": numpy.__version__,
            "platform": platform.platform(), "cpus": mp.cpu_count(),
            "date": time.strftime("%Y-%m-%d")}


def write_table(outcomes: list, directory: Path, command: str, rcfg) -> None:
    """Write ``rediscovery.md`` (table, settings, command, environment) and ``rediscovery.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    env = environment()
    settings = ", ".join(f"{k} = {v}" for k, v in rcfg.to_dict().items()
                         if k not in ("seed", "out"))
    md = ["# Targeted rediscovery of NGL", "",
          table_markdown(outcomes), "",
          "Seconds are wall-clock from the start of a seed's search (generation 0 included) to "
          "the generation where the level was first reached, measured as run (other work may "
          "have shared the CPU).", "",
          f"Settings: {settings}.", "",
          "Command:", "", "```", command or "gp-search reproduce-ngl --mode target ...", "```",
          "", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "."]
    (directory / "rediscovery.md").write_text("\n".join(md) + "\n")
    (directory / "rediscovery.csv").write_text(table_csv(outcomes))
