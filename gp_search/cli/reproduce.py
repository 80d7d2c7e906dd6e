"""The ``gp-search reproduce-ngl`` command: rediscovery of NGL, targeted or on the proxies.

``--mode proxy`` runs the paper preset from scratch and reports whether and when its best loss
reaches NGL's proxy fitness and how far it is from NGL (:mod:`gp_search.rediscovery.proxy`).
``--mode target`` evolves random trees over the paper primitive set towards NGL's behaviour
(:mod:`gp_search.rediscovery.targeted`) and prints ``rediscovered (exact)``, ``rediscovered
(behavioural)`` or ``not rediscovered`` for each seed; ``--seeds N`` runs seeds 0..N-1 (``--jobs``
at a time) and prints the success table, which ``--table DIR`` also writes as
``DIR/rediscovery.md`` and ``DIR/rediscovery.csv`` with the command and environment.
``--set FIELD=VALUE`` changes any other :class:`RediscoveryConfig` field (the levers), so an
ablation is the same command: ``--set library_size=0 --table DIR/rediscovery_levers
--table-name no-library``; the main table lists every such summary it finds there.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from pathlib import Path

from gp_search.rediscovery import table as rediscovery_table

_OWN_FLAGS = ("seed", "population", "generations", "time_budget", "confirm", "out")


def add_commands(sub) -> None:
    """Register ``reproduce-ngl`` on an ``argparse`` subparsers object."""
    from gp_search.rediscovery.targeted import RediscoveryConfig

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
    from gp_search.rediscovery.targeted import RediscoveryConfig, rediscover

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
        from gp_search.rediscovery.confirm import confirm

        print("confirming behavioural successes on mnist1d-cnn ...", flush=True)
        reference = confirm(outcomes, args.jobs)
    print()
    print(rediscovery_table.table_markdown(outcomes, reference), flush=True)
    if args.table:
        paths = rediscovery_table.write_table(outcomes, Path(args.table), _command(args), rcfg,
                                              args.table_name, reference)
        print("\nwritten: " + ", ".join(map(str, paths)))
    return 0


def cmd_proxy(args) -> int:
    """``--mode proxy``: the paper preset from scratch (or ``--run``), then the analysis."""
    from gp_search.rediscovery import proxy as PR

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
    run_cfg = report["config"]
    if args.run and run_cfg == PR.proxy_config(seed=run_cfg["seed"], jobs=run_cfg["jobs"],
                                               out=run_cfg["out"]).to_dict():
        command += ("\n# the run analysed is the paper preset unchanged; from scratch:\n"
                    + _proxy_command(argparse.Namespace(
                        seed=run_cfg["seed"], out=run_cfg["out"], population=None,
                        generations=None, time_budget=None, run=None, table=args.table,
                        table_name=args.table_name), jobs, fresh))
    name = args.table_name or "proxy_rediscovery"
    paths = PR.write(report, report["run_dir"], name, command)
    if args.table:
        paths += PR.write(report, args.table, name, command)
    print(PR.verdict(report), flush=True)
    print(PR.closeness_line(report), flush=True)
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

    from gp_search.rediscovery.targeted import RediscoveryConfig

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
    from gp_search.rediscovery.targeted import rediscover

    _one_thread()
    return rediscover(rcfg, quiet=True)
