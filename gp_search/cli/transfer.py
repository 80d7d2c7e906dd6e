"""The ``gp-search transfer`` command: losses on a held-out suite against CE (``add_commands``).

Trains each LOSS (a reference name, an expression, or a file from ``gp-search export``, read as
text and never run) with CE, NGL and label smoothing on every task of ``--suite``, prints the
change against CE per task and writes ``transfer.md``, the CSVs and ``env.json`` into ``--out``
(:mod:`gp_search.analysis.transfer`). Bad input raises ``ValueError``, which
:func:`gp_search.cli.main.main` prints as one line with exit code 2.
"""

from __future__ import annotations

import shlex
import sys
import time


def _command(args) -> str:
    """The command line that reproduces ``args`` (rebuilt from them, so also right in-process)."""
    parts = ["transfer", *args.loss, "--suite", args.suite, "--seeds", str(args.seeds),
             "--jobs", str(args.jobs)]
    if args.baselines != "ce,ngl,label_smoothing":
        parts += ["--baselines", args.baselines]
    if args.device != "cpu":
        parts += ["--device", args.device]
    return "gp-search " + " ".join(shlex.quote(a) for a in parts + ["--out", args.out])


def cmd_transfer(args) -> int:
    from gp_search.analysis.transfer import format_transfer, transfer, write_transfer

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    start = time.perf_counter()
    res = transfer(args.loss, suite=args.suite, seeds=args.seeds, jobs=args.jobs,
                   baselines=[b for b in args.baselines.split(",") if b.strip()],
                   device=args.device,
                   progress=lambda line: print(line, file=sys.stderr, flush=True))
    seconds = time.perf_counter() - start
    print(format_transfer(res))
    try:
        files = write_transfer(res, args.out, _command(args))
    except OSError as exc:
        raise ValueError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"\n{len(res.entries)} losses x {len(res.tasks)} tasks x {len(res.seeds)} seeds in "
          f"{seconds:.0f} s; written to {args.out}: {', '.join(f.name for f in files)}")
    return 0


def add_commands(sub) -> None:
    """Register ``transfer`` on an ``argparse`` subparsers object."""
    from gp_search.proxies.tasks import SUITES

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
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1, at least 2 (default 5)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--baselines", default="ce,ngl,label_smoothing",
                   help="comma-separated reference losses; must include ce (default: %(default)s)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--out", default="results/transfer",
                   help="output directory (default %(default)s)")
    p.set_defaults(func=cmd_transfer)
