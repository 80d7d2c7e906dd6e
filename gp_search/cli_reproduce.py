"""The ``gp-search reproduce-ngl`` command: rediscovery of NGL, targeted (one seed or a k/N table)
or on the proxies.

``--mode proxy`` runs the paper preset from scratch and reports whether and when its best loss
reaches NGL's proxy fitness and how far it is from NGL (:mod:`gp_search.proxy_rediscovery`).
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
               "restarts", "confirmed", "accuracy", "loss")


def add_commands(sub) -> None:
    """Register ``reproduce-ngl`` on an ``argparse`` subparsers object."""
    from gp_search.rediscover import RediscoveryConfig

    d = RediscoveryConfig()
    p = sub.add_parser(
        "reproduce-ngl", help="rediscover NGL from random trees (targeted, or on the proxies)",
        description="Rediscovery of NGL from random trees. --mode target: fitness = behavioural "
                    "distance to NGL; reports exact / behavioural success per seed. --mode proxy: "
                    "the paper preset on the proxies, NGL not seeded; reports whether and when "
                    "the best reaches NGL's proxy fitness and how far it is from NGL.")
    p.add_argument("--mode", required=True, choices=["target", "proxy"],
                   help="target: fitness is the behavioural distance to NGL; proxy: the paper "
                        "preset's proxy trainings")
    p.add_argument("--seed", type=int, default=0, help="the seed of a single run (default 0)")
    p.add_argument("--seeds", type=int, default=None,
                   help="target: run seeds 0..N-1 instead of --seed and print the k/N table")
    p.add_argument("--population", type=int, default=None,
                   help=f"individuals per generation (target: default {d.population}, at most "
                        f"1000; proxy: the paper preset's)")
    p.add_argument("--generations", type=int, default=None,
                   help=f"generations after generation 0 (target: default {d.generations}; "
                        f"proxy: the paper preset's)")
    p.add_argument("--time-budget", type=float, default=None,
                   help=f"seconds per seed, checked after each generation (target: default "
                        f"{d.time_budget:g}; proxy: none; 0: none)")
    p.add_argument("--jobs", type=int, default=None,
                   help="target: seeds run in parallel processes (default 1); proxy: parallel "
                        "trainings (default 2)")
    p.add_argument("--out", default=d.out, help=f"parent of the run directories (default {d.out})")
    p.add_argument("--run", default=None, metavar="RUN_DIR",
                   help="proxy: analyse this run (resumed first when it did not finish) instead "
                        "of starting a new one")
    p.add_argument("--fresh-seeds", type=int, default=None,
                   help="proxy: training seeds 0..N-1 of the final best-vs-NGL comparison "
                        "(default 5)")
    p.add_argument("--table", default=None,
                   help="target, with --seeds: write DIR/rediscovery.md and DIR/rediscovery.csv; "
                        "proxy: write DIR/proxy_rediscovery.md, .json and .png (always also "
                        "into the run directory)")
    p.add_argument("--table-name", default=None,
                   help="file name (without suffix) of the table (default rediscovery, or "
                        "proxy_rediscovery)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="any other setting, e.g. library_size=0 or term_weights=false; repeatable")
    p.add_argument("--confirm", action="store_true",
                   help="confirm behavioural successes on mnist1d-cnn (5 trainings each)")
    p.add_argument("--quiet", action="store_true", help="no per-generation lines")
    p.set_defaults(func=cmd_reproduce)


def cmd_reproduce(args) -> int:
    if args.mode == "proxy":
        return cmd_proxy(args)
    from gp_search.rediscover import RediscoveryConfig, rediscover

    d = RediscoveryConfig()
    args.population = d.population if args.population is None else args.population
    args.generations = d.generations if args.generations is None else args.generations
    args.time_budget = d.time_budget if args.time_budget is None else args.time_budget
    args.jobs = 1 if args.jobs is None else args.jobs
    args.table_name = args.table_name or "rediscovery"
    for flag in ("run", "fresh_seeds"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} is for --mode proxy")
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
    # The proxy confirmation runs here, once for all seeds (one batch of trainings).
    configs = [replace(rcfg, seed=s, confirm=False) for s in range(args.seeds)]
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
    reference = None
    if args.confirm:
        from gp_search.rediscover import confirm

        print("confirming behavioural successes on mnist1d-cnn ...", flush=True)
        reference = confirm(outcomes, args.jobs)
    print()
    print(table_markdown(outcomes, reference), flush=True)
    if args.table:
        paths = write_table(outcomes, Path(args.table), _command(args), rcfg, args.table_name,
                            reference)
        print("\nwritten: " + ", ".join(map(str, paths)))
    return 0


def cmd_proxy(args) -> int:
    """``--mode proxy``: the paper preset from scratch (or ``--run``), then the analysis."""
    from gp_search import proxy_rediscovery as PR

    for flag, given in (("seeds", args.seeds is not None), ("set", bool(args.set)),
                        ("confirm", args.confirm)):
        if given:
            raise ValueError(f"--{flag} is for --mode target (proxy mode runs one search: --seed)")
    jobs = 2 if args.jobs is None else args.jobs
    fresh = PR.FRESH_SEEDS if args.fresh_seeds is None else args.fresh_seeds
    if jobs < 1 or fresh < 2:
        raise ValueError(f"--jobs must be >= 1 and --fresh-seeds >= 2 (a confidence interval); "
                         f"got {jobs} and {fresh}")
    over = {k: v for k, v in (("population", args.population), ("generations", args.generations),
                              ("time_budget", args.time_budget)) if v is not None}
    cfg = PR.proxy_config(seed=args.seed, jobs=jobs, out=args.out, **over)
    _one_thread()
    report = PR.proxy_rediscovery(cfg, args.run, jobs, fresh, quiet=args.quiet)
    command = _proxy_command(args, jobs, fresh)
    name = args.table_name or "proxy_rediscovery"
    paths = PR.write(report, report["run_dir"], name, command)
    if args.table:
        paths += PR.write(report, args.table, name, command)
    print(PR.verdict(report), flush=True)
    best = report["best"]
    print(f"best vs NGL: symbolic distance {best['symbolic']}, behavioural D "
          f"{_fmt(best['distance'], '.2e')}, max relative gradient error "
          f"{_fmt(best['max_grad_error'], '.2e')}; on fresh seeds (weighted fitness) best − NGL "
          f"{report['fresh'][-1]['diff']['diff']:+.4f}")
    print("written: " + ", ".join(map(str, paths)))
    return 0


def _proxy_command(args, jobs: int, fresh: int) -> str:
    parts = ["gp-search", "reproduce-ngl", "--mode", "proxy", "--seed", str(args.seed),
             "--jobs", str(jobs), "--fresh-seeds", str(fresh), "--out", args.out]
    for flag in ("population", "generations", "time_budget", "run", "table", "table_name"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    return " ".join(shlex.quote(p) for p in parts)


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


def behavioural(outcomes: list) -> list:
    """The outcomes that count as behavioural successes: the gradient criterion reached and,
    when the proxy confirmation ran, passed (exact implies behavioural)."""
    return [o for o in outcomes
            if o.behavioural_generation is not None and o.confirmed is not False]


def table_markdown(outcomes: list, reference: dict | None = None) -> str:
    """The k/N summary and one row per seed, as Markdown; ``reference``: NGL's accuracy summary
    of the proxy confirmation (adds its column)."""
    from gp_search.rediscover import CONFIRM_PROXY

    n = len(outcomes)
    exact = [o for o in outcomes if o.level == "exact"]
    behav = behavioural(outcomes)
    proxy = (f" and {CONFIRM_PROXY} accuracy within NGL's 95 % CI, {reference['mean']:.4f} "
             f"[{reference['ci_low']:.4f}, {reference['ci_high']:.4f}], n = {reference['n']} "
             f"seeds") if reference else ""
    acc = ["", ""] if reference is None else [f" {CONFIRM_PROXY} acc. |", "---:|"]
    lines = [f"behavioural success: {len(behav)}/{n} seeds (max relative gradient error ≤ 1e-2"
             f"{proxy}{_range(behav, 'behavioural')})",
             f"exact success: {len(exact)}/{n} seeds{_range(exact, 'exact')}", "",
             "| seed | level | generation | seconds | behavioural at (gen, s) | restarts | "
             f"max rel. grad. error |{acc[0]} size | expression |",
             f"|---:|---|---:|---:|---:|---:|---:|{acc[1]}---:|---|"]
    for o in outcomes:
        cell = "" if reference is None else \
            f" {_fmt(o.accuracy, '.4f')}{'' if o.confirmed is not False else ' (outside)'} |"
        lines.append(
            f"| {o.seed} | {o.level} | {_fmt(o.generation, 'd')} | {_fmt(o.seconds, '.1f')} | "
            f"{_fmt(o.behavioural_generation, 'd')}, {_fmt(o.behavioural_seconds, '.1f')} | "
            f"{o.restarts} | {o.max_grad_error:.2e} |{cell} {o.size} | `{o.expression}` |")
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
    settings = {k: v for k, v in rcfg.to_dict().items() if k not in ("seed", "out")}
    changed = {k: v for k, v in settings.items() if v != default[k]}
    exact = sorted(o.exact_seconds for o in outcomes if o.level == "exact")
    return {"n": len(outcomes), "exact": len(exact), "behavioural": len(behavioural(outcomes)),
            "exact_seconds_median": exact[len(exact) // 2] if exact else None,
            "settings": settings, "changed": changed, "command": command}


def _levers(directory: Path, rcfg) -> list[str]:
    """The ablation rows, each setting shown where it differs from ``rcfg`` (the main table's;
    ``confirm`` aside: ablations count the gradient criterion only)."""
    main = rcfg.to_dict()
    rows = []
    for path in sorted((directory / LEVERS_DIR).glob("*.json")):
        s = json.loads(path.read_text())
        changed = ", ".join(f"{k} = {v}" for k, v in s["settings"].items()
                            if k != "confirm" and main.get(k) != v) or "the same"
        med = "–" if s["exact_seconds_median"] is None else f"{s['exact_seconds_median']:.1f}"
        rows.append(f"| {path.stem} | {changed} | {s['behavioural']}/{s['n']} | "
                    f"{s['exact']}/{s['n']} | {med} |")
    if not rows:
        return []
    return ["## What each lever buys", "",
            f"The same command with the settings shown changed (`--set`), tables in "
            f"`{LEVERS_DIR}/`; behavioural there is the gradient criterion alone (no proxy "
            f"confirmation).", "",
            "| run | setting | behavioural | exact | median s to exact |",
            "|---|---|---:|---:|---:|", *rows, ""]


def write_table(outcomes: list, directory: Path, command: str, rcfg,
                name: str = "rediscovery", reference: dict | None = None) -> list[Path]:
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
          table_markdown(outcomes, reference), "", *DEFINITIONS, "",
          "Seconds are wall-clock from the start of a seed's search (generation 0 included) to "
          "the generation where the level was first reached, measured as run (other work may "
          "have shared the CPU).", "",
          f"Settings: {settings}.", "", *_levers(directory, rcfg),
          "Command:", "", "```", command, "```",
          "", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "."]
    paths = [directory / f"{name}.{suffix}" for suffix in ("md", "csv", "json")]
    paths[0].write_text("\n".join(md) + "\n")
    paths[1].write_text(table_csv(outcomes))
    paths[2].write_text(json.dumps(summary(outcomes, rcfg, command), indent=2) + "\n")
    return paths
