"""The ``gp-search reproduce-ngl`` command: targeted rediscovery of NGL, one seed or a k/N table.

``--mode target`` evolves random trees over the paper primitive set towards NGL's behaviour
(:mod:`gp_search.rediscover`) and prints ``rediscovered (exact)``, ``rediscovered
(behavioural)`` or ``not rediscovered`` for each seed; ``--seeds N`` runs seeds 0..N-1 (``--jobs``
at a time) and prints the success table, which ``--table DIR`` also writes as
``DIR/rediscovery.md`` and ``DIR/rediscovery.csv`` with the command and environment.
``--set FIELD=VALUE`` changes any other :class:`RediscoveryConfig` field (the levers), so an
ablation is the same command: ``--set library_size=0 --table DIR/rediscovery_levers
--table-name no-library``; the main table lists every such summary it finds there.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import shlex
import time
from dataclasses import replace
from pathlib import Path

LEVERS_DIR = "rediscovery_levers"
"""Subdirectory of ``--table`` whose ablation summaries the main table lists."""
_OWN_FLAGS = ("seed", "population", "generations", "time_budget", "confirm", "out")
CSV_COLUMNS = ("seed", "level", "generation", "seconds", "expression", "max_rel_grad_error",
               "distance", "size", "behavioural_generation", "behavioural_seconds",
               "exact_generation", "exact_seconds", "generations_run", "seconds_total",
               "restarts")


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
    p.add_argument("--table-name", default="rediscovery",
                   help="file name (without suffix) of the table (default rediscovery)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other setting, e.g. library_size=0 or term_weights=false; repeatable")
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
                             confirm=args.confirm, out=args.out, **parse_settings(args.set))
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
        # joblib's loky workers: fresh interpreters (no forked torch state) that never re-run
        # the caller's __main__; results come back in seed order as they finish.
        from joblib import Parallel, delayed

        run = Parallel(n_jobs=args.jobs, backend="loky", return_as="generator")
        for o in run(delayed(_run_quiet)(c) for c in configs):
            outcomes.append(o)
            print(f"seed {o.seed}: {o.line()}", flush=True)
    print()
    print(table_markdown(outcomes), flush=True)
    if args.table:
        paths = write_table(outcomes, Path(args.table), _command(args), rcfg, args.table_name)
        print("\nwritten: " + ", ".join(map(str, paths)))
    return 0


def _command(args) -> str:
    """The command line that reproduces a table, every setting spelled out."""
    parts = ["gp-search", "reproduce-ngl", "--mode", args.mode, "--seeds", str(args.seeds),
             "--population", str(args.population), "--generations", str(args.generations),
             "--time-budget", f"{args.time_budget:g}", "--jobs", str(args.jobs),
             "--out", args.out, "--table", args.table, "--table-name", args.table_name]
    parts += [f"--set={s}" for s in args.set] + (["--confirm"] if args.confirm else [])
    return " ".join(shlex.quote(p) for p in parts)


def parse_settings(items: list[str]) -> dict:
    """``FIELD=VALUE`` texts as RediscoveryConfig overrides, typed by each field's default.

    Raises:
        ValueError: naming the item, the known fields or the expected type.
    """
    from dataclasses import fields

    from gp_search.rediscover import RediscoveryConfig

    known = {f.name: f.default for f in fields(RediscoveryConfig) if f.name not in _OWN_FLAGS}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in known:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of "
                             f"{sorted(known)} (the others have their own flags)")
        kind = type(known[name])
        try:
            if kind is bool:
                value = {"true": True, "1": True, "on": True, "false": False, "0": False,
                         "off": False}[text.strip().lower()]
            else:
                value = kind(text)
        except (KeyError, ValueError):
            raise ValueError(f"--set {item!r}: {name} takes a {kind.__name__}") from None
        out[name] = value
    return out


def _one_thread() -> None:
    # Scoring is NumPy on small arrays; torch (used by the hall of fame's fingerprints) would
    # otherwise start one thread per core in every process and fight the other seeds.
    import torch

    torch.set_num_threads(1)


def _run_quiet(rcfg):
    from gp_search.rediscover import rediscover

    _one_thread()
    return rediscover(rcfg, quiet=True)


# --- the success table ---------------------------------------------------------------------------

def _fmt(x, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def table_markdown(outcomes: list) -> str:
    """The k/N summary and one row per seed, as Markdown."""
    n = len(outcomes)
    exact = [o for o in outcomes if o.level == "exact"]
    # exact implies behavioural; a failed proxy confirmation (--confirm) withdraws it
    behav = [o for o in outcomes
             if o.behavioural_generation is not None and o.confirmed is not False]
    lines = [f"behavioural success: {len(behav)}/{n} seeds (max relative gradient error ≤ 1e-2"
             f"{_range(behav, 'behavioural')})",
             f"exact success: {len(exact)}/{n} seeds{_range(exact, 'exact')}", "",
             "| seed | level | generation | seconds | behavioural at (gen, s) | restarts | "
             "max rel. grad. error | size | expression |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for o in outcomes:
        lines.append(
            f"| {o.seed} | {o.level} | {_fmt(o.generation, 'd')} | {_fmt(o.seconds, '.1f')} | "
            f"{_fmt(o.behavioural_generation, 'd')}, {_fmt(o.behavioural_seconds, '.1f')} | "
            f"{o.restarts} | "
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


DEFINITIONS = [
    "Each seed evolves random trees over the paper primitive set (add, sub, mul, exp, sin, cos; "
    "y_pred, y_real, 1, constants uniform on [-3, 3]) with the engine's generation loop; nothing "
    "about NGL is in the operators, the constants or the start. Fitness is the behavioural "
    "distance D to NGL (`gp_search/target_fit.py`): on 452 probe elements (p on a grid in (0, 1) "
    "for t = 0 and 1, plus the elements of 32 softmax rows over K = 10 classes) the relative "
    "errors of the loss values and of dL/dp, after the fit of a*f + b + c*p + d*t (a > 0; what "
    "cannot change training), RMS over RMS with no candidate; selection on -log10 D - "
    "parsimony * size.",
    "",
    "*behavioural*: max relative gradient error over the probes <= 1e-2 (generation and "
    "seconds when first reached). *exact*: the expanded SymPy form has NGL's structure and "
    "every constant within 1e-3 relative; with term weights the proposed loss is "
    "sum_i w_i * term_i, whose overall positive factor behaviour cannot identify, so it is "
    "fixed by setting one term's coefficient to +-1 (2*NGL counts, NGL + 0.3*p does not).",
]


def summary(outcomes: list, rcfg, command: str) -> dict:
    """Counts, times and the settings that differ from the defaults (for the levers table)."""
    from dataclasses import asdict

    from gp_search.rediscover import RediscoveryConfig

    default = asdict(RediscoveryConfig())
    changed = {k: v for k, v in rcfg.to_dict().items()
               if k not in ("seed", "out") and v != default[k]}
    exact = sorted(o.exact_seconds for o in outcomes if o.level == "exact")
    return {"n": len(outcomes), "exact": len(exact),
            "behavioural": sum(o.behavioural_generation is not None and o.confirmed is not False
                               for o in outcomes),
            "exact_seconds_median": exact[len(exact) // 2] if exact else None,
            "changed": changed, "command": command}


def _levers(directory: Path) -> list[str]:
    rows = []
    for path in sorted((directory / LEVERS_DIR).glob("*.json")):
        s = json.loads(path.read_text())
        changed = ", ".join(f"{k} = {v}" for k, v in s["changed"].items()) or "defaults"
        med = "–" if s["exact_seconds_median"] is None else f"{s['exact_seconds_median']:.1f}"
        rows.append(f"| {path.stem} | {changed} | {s['behavioural']}/{s['n']} | "
                    f"{s['exact']}/{s['n']} | {med} |")
    if not rows:
        return []
    return ["## What each lever buys", "",
            f"Same command with one setting changed (`--set`), tables in `{LEVERS_DIR}/`.", "",
            "| run | setting | behavioural | exact | median s to exact |",
            "|---|---|---:|---:|---:|", *rows, ""]


def write_table(outcomes: list, directory: Path, command: str, rcfg,
                name: str = "rediscovery") -> list[Path]:
    """Write ``NAME.md`` (table, settings, levers, command, environment), ``NAME.csv`` and the
    ``NAME.json`` summary.

    Returns:
        The paths written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    env = environment()
    settings = ", ".join(f"{k} = {v}" for k, v in rcfg.to_dict().items()
                         if k not in ("seed", "out"))
    md = ["# Targeted rediscovery of NGL", "",
          table_markdown(outcomes), "", *DEFINITIONS, "",
          "Seconds are wall-clock from the start of a seed's search (generation 0 included) to "
          "the generation where the level was first reached, measured as run (other work may "
          "have shared the CPU).", "",
          f"Settings: {settings}.", "", *_levers(directory),
          "Command:", "", "```", command, "```",
          "", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "."]
    paths = [directory / f"{name}.{suffix}" for suffix in ("md", "csv", "json")]
    paths[0].write_text("\n".join(md) + "\n")
    paths[1].write_text(table_csv(outcomes))
    paths[2].write_text(json.dumps(summary(outcomes, rcfg, command), indent=2) + "\n")
    return paths
