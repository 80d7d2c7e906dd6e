"""The ``gp-search reproduce-ngl target|proxy`` command: rediscovery of NGL, targeted or on the proxies.

``reproduce-ngl proxy`` runs the paper preset from scratch and reports whether and when its best
loss reaches NGL's proxy fitness and how far it is from NGL (:mod:`gp_search.rediscovery.proxy`).
``reproduce-ngl target`` evolves random trees over the paper primitive set towards NGL's
behaviour (:mod:`gp_search.rediscovery.targeted`) and prints ``rediscovered (exact)``,
``rediscovered (behavioural)`` or ``not rediscovered`` for each seed; ``--seeds N`` (or a list
such as ``3,7``) runs those seeds (``--jobs`` at a time) and prints the success table, which
``--table DIR`` also writes as ``DIR/rediscovery.md`` and ``DIR/rediscovery.csv`` with the
command and environment. ``--set FIELD=VALUE`` changes any other :class:`RediscoveryConfig`
field (the levers), so an ablation is the same command: ``--set library_size=0 --table
DIR/rediscovery_levers --table-name no-library``; the main table lists every such summary it
finds there. ``--mode target|proxy`` is the old spelling of the mode (deprecated since 0.1.0,
removed in 0.3.0: :data:`MODE_FLAG_REMOVED_IN`). The command lines written into the tables are
the ones given (:func:`gp_search.core.environment.command_line`), never rebuilt from the parsed
arguments.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from gp_search.core import environment
from gp_search import rediscovery
from gp_search.cli import options
from gp_search.core import job_count, seed_list
from gp_search.proxies import one_thread

_OWN_FLAGS = ("seed", "population", "generations", "time_budget", "confirm", "out")
MODES = ("target", "proxy")
MODE_FLAG_REMOVED_IN = "0.3.0"
"""The release that drops ``--mode`` (deprecated since 0.1.0)."""


def add_commands(sub) -> None:
    """Register ``reproduce-ngl`` on an ``argparse`` subparsers object."""
    from gp_search.rediscovery import RediscoveryConfig

    d = RediscoveryConfig()
    p = sub.add_parser(
        "reproduce-ngl", help="rediscover NGL from random trees (target, or on the proxies)",
        usage="gp-search reproduce-ngl {target,proxy} [options]",
        description="Rediscovery of NGL from random trees. target: fitness = behavioural "
                    "distance to NGL; reports exact / behavioural success per seed. proxy: "
                    "the paper preset on the proxies, NGL not seeded; reports whether and when "
                    "the best reaches NGL's proxy fitness and how far it is from NGL.")
    p.add_argument("mode", nargs="?", choices=MODES,
                   help="target: fitness is the behavioural distance to NGL; proxy: the paper "
                        "preset's proxy trainings")
    p.add_argument("--mode", dest="mode_flag", choices=MODES,
                   help="deprecated since 0.1.0, removed in 0.3.0: the mode's old spelling; "
                        "use `reproduce-ngl target|proxy`")
    p.add_argument("--seed", type=int, default=0, help="the seed of a single run (default 0)")
    options.add_seeds(p, default=None, extra="; target: run these seeds instead of --seed and "
                                              "print the k/N table")
    p.add_argument("--population", type=int, default=None,
                   help=f"individuals per generation (target: default {d.population}, at most "
                        f"1000; proxy: the paper preset's)")
    p.add_argument("--generations", type=int, default=None,
                   help=f"generations after generation 0 (target: default {d.generations}; "
                        f"proxy: the paper preset's)")
    p.add_argument("--time-budget", type=float, default=None,
                   help=f"seconds per seed, checked after each generation (target: default "
                        f"{d.time_budget:g}; proxy: none; 0: none)")
    options.add_jobs(p, extra="; target: seeds run in parallel; proxy: parallel trainings")
    options.add_device(p)
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
                   help="target: any other setting, e.g. library_size=0 or term_weights=false; "
                        "repeatable")
    p.add_argument("--confirm", action="store_true",
                   help="target: confirm behavioural successes on mnist1d-cnn (5 trainings each)")
    p.add_argument("--quiet", action="store_true", help="no per-generation lines")
    p.set_defaults(func=cmd_reproduce)


def _mode(args) -> str:
    """The mode, from ``target|proxy`` or the deprecated ``--mode``."""
    if args.mode and args.mode_flag and args.mode != args.mode_flag:
        raise ValueError(f"reproduce-ngl {args.mode} and --mode {args.mode_flag} disagree; give "
                         f"only `reproduce-ngl {args.mode}`")
    if args.mode_flag and not args.mode:
        print(f"gp-search reproduce-ngl: --mode is deprecated since 0.1.0 and will be removed in "
              f"{MODE_FLAG_REMOVED_IN}; use `gp-search reproduce-ngl {args.mode_flag}`",
              file=sys.stderr)
    mode = args.mode or args.mode_flag
    if mode is None:
        raise ValueError("give the mode: `gp-search reproduce-ngl target` or "
                         "`gp-search reproduce-ngl proxy`")
    return mode


def cmd_reproduce(args) -> int:
    if _mode(args) == "proxy":
        return cmd_proxy(args)
    # Scoring is NumPy on small arrays; torch (used by the hall of fame's fingerprints) would
    # otherwise start one thread per core in every process and fight the other seeds.
    with one_thread():
        return _target(args)


def _target(args) -> int:
    """``reproduce-ngl target``: one seed, or the k/N table over ``--seeds``."""
    from gp_search.rediscovery import RediscoveryConfig, rediscover

    d = RediscoveryConfig()
    population = d.population if args.population is None else args.population
    generations = d.generations if args.generations is None else args.generations
    time_budget = d.time_budget if args.time_budget is None else args.time_budget
    table_name = args.table_name or "rediscovery"
    for flag in ("run", "fresh_seeds"):
        if getattr(args, flag) is not None:
            raise ValueError(f"--{flag.replace('_', '-')} is for reproduce-ngl proxy")
    if args.device != options.DEVICE_DEFAULT:
        raise ValueError("--device is for reproduce-ngl proxy (target scores on the CPU)")
    jobs = job_count(args.jobs, "--jobs")
    seeds = None if args.seeds is None else seed_list(args.seeds, what="--seeds")
    if args.table and seeds is None:
        raise ValueError("--table needs --seeds N (it writes the k/N table)")
    rcfg = RediscoveryConfig(seed=args.seed, population=population, generations=generations,
                             time_budget=time_budget, confirm=args.confirm, out=args.out,
                             **parse_settings(args.set))
    if seeds is None:
        out = rediscover(rcfg, quiet=args.quiet)
        print(out.line(), flush=True)
        return 0
    # The proxy confirmation runs here, once for all seeds (one batch of trainings).
    configs = [replace(rcfg, seed=s, confirm=False) for s in seeds]
    outcomes = []
    if jobs == 1:
        for c in configs:
            outcomes.append(rediscover(c, quiet=True))
            print(f"seed {c.seed}: {outcomes[-1].line()}", flush=True)
    else:
        # joblib's loky workers: fresh interpreters (no forked torch state) that never re-run
        # the caller's __main__; results come back in seed order as they finish.
        from joblib import Parallel, delayed

        run = Parallel(n_jobs=jobs, backend="loky", return_as="generator")
        for o in run(delayed(_run_quiet)(c) for c in configs):
            outcomes.append(o)
            print(f"seed {o.seed}: {o.line()}", flush=True)
    reference = None
    if args.confirm:
        from gp_search.rediscovery import confirm

        print("confirming behavioural successes on mnist1d-cnn ...", flush=True)
        reference = confirm(outcomes, jobs)
    print()
    print(rediscovery.table_markdown(outcomes, reference), flush=True)
    if args.table:
        paths = rediscovery.write_table(outcomes, Path(args.table), environment.command_line(),
                                        rcfg, table_name, reference)
        print("\nwritten: " + ", ".join(map(str, paths)))
    return 0


def cmd_proxy(args) -> int:
    """``reproduce-ngl proxy``: the paper preset from scratch (or ``--run``), then the analysis."""
    with one_thread():  # as for the target: one torch thread per process
        return _proxy(args)


def _proxy(args) -> int:
    from gp_search import rediscovery as PR

    for flag, given in (("seeds", args.seeds is not None), ("set", bool(args.set)),
                        ("confirm", args.confirm)):
        if given:
            raise ValueError(f"--{flag} is for reproduce-ngl target (proxy runs one search: "
                             f"--seed)")
    jobs = job_count(args.jobs, "--jobs")
    fresh = PR.FRESH_SEEDS if args.fresh_seeds is None else args.fresh_seeds
    if fresh < 2:
        raise ValueError(f"--fresh-seeds must be >= 2 (a confidence interval); got {fresh}")
    over = {k: v for k, v in (("population", args.population), ("generations", args.generations),
                              ("time_budget", args.time_budget)) if v is not None}
    cfg = PR.proxy_config(seed=args.seed, jobs=jobs, out=args.out, device=args.device, **over)
    report = PR.proxy_rediscovery(cfg, args.run, jobs, fresh, quiet=args.quiet)
    command = environment.command_line()
    run_cfg = report["config"]
    if args.run and run_cfg == PR.proxy_config(seed=run_cfg["seed"], jobs=run_cfg["jobs"],
                                               out=run_cfg["out"]).to_dict():
        command += ("\n# the run analysed is the paper preset unchanged; from scratch:\n"
                    f"gp-search reproduce-ngl proxy --seed {run_cfg['seed']} "
                    f"--jobs {run_cfg['jobs']} --out {run_cfg['out']}")
    name = args.table_name or "proxy_rediscovery"
    paths = PR.write_proxy_report(report, report["run_dir"], name, command)
    if args.table:
        paths += PR.write_proxy_report(report, args.table, name, command)
    print(PR.proxy_verdict(report), flush=True)
    print(PR.closeness_line(report), flush=True)
    print("written: " + ", ".join(map(str, paths)))
    return 0


def parse_settings(items: list[str]) -> dict:
    """``FIELD=VALUE`` texts as RediscoveryConfig overrides, typed by each field's default.

    Raises:
        ValueError: naming the item, the known fields or the expected type.
    """
    from dataclasses import fields

    from gp_search.rediscovery import RediscoveryConfig

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


def _run_quiet(rcfg):
    from gp_search.rediscovery import rediscover

    with one_thread():  # a loky worker: one torch thread, as in the caller
        return rediscover(rcfg, quiet=True)
