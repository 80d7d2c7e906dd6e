"""The ``gp-search`` command line: one subcommand per job, each a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gp_search.core import environment
from gp_search.cli import options
from gp_search.cli import report as cli_report
from gp_search.cli import reproduce as cli_reproduce
from gp_search.cli import search as cli_run
from gp_search.cli import transfer as cli_transfer
from gp_search.lang import TARGETS
from gp_search.lang import export as export_loss
from gp_search.lang import ExprError, LossExpr, parse
from gp_search.lang import REFERENCE
from gp_search.parallel import BACKENDS
from gp_search.proxies import metric_label
from gp_search.core import job_count, seed_list


class UsageError(Exception):
    """A bad argument: printed as one line, exit code 2."""


def _expr_of(text: str) -> LossExpr:
    """An expression, or a reference loss name that is an expression of the language."""
    ref = REFERENCE.get(text.strip().lower())
    if ref is not None:
        if ref.expr is None:
            raise UsageError(f"{ref.name!r} is a reference loss but not an expression of the loss "
                             f"language ({ref.formula}); expression losses: "
                             f"{', '.join(n for n, r in REFERENCE.items() if r.expr)}")
        return ref.expr
    return parse(text)


def cmd_show(args) -> int:
    e = _expr_of(args.expr)
    info = {"canonical": e.canonical, "infix": e.infix, "prefix": e.prefix, "latex": e.latex,
            "size": e.size, "height": e.height, "depends_on_pred": e.depends_on_pred,
            "depends_on_target": e.depends_on_target, "fingerprint": e.fingerprint,
            "primitive_set": e.primitive_set}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(map(len, info))
        for k, v in info.items():
            print(f"{k:<{width}}  {v}")
    return 0


def cmd_losses(args) -> int:
    width = max(map(len, REFERENCE))
    for name, ref in REFERENCE.items():
        kind = "expression" if ref.expr is not None else "reference"
        print(f"{name:<{width}}  [{kind}]  {ref.formula}")
    return 0


def cmd_export(args) -> int:
    if (args.expr is None) == (args.loss is None):
        raise UsageError("give exactly one of --expr TEXT or --loss NAME")
    e = _expr_of(args.expr if args.expr is not None else args.loss)
    name = args.name or (args.loss if args.loss else "loss")
    text = export_loss(e, args.target, name=name,
                             origin=f"gp-search export ({'--loss ' + args.loss if args.loss else '--expr'})")
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + ("\n" if args.target == "latex" else ""))
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(out)
    return 0


# --- proxies / evaluate -------------------------------------------------------------------------

def cmd_proxies(args) -> int:
    from gp_search import proxies

    for name in proxies.names():
        proxy = proxies.get(name)
        print(f"{name}\n  data:   {proxy.data_source}\n  budget: {proxy.budget}\n"
              f"  metric: {metric_label(proxy.spec.metric)}\n  about:  {proxy.spec.description}")
    return 0


def cmd_evaluate(args) -> int:
    import dataclasses
    import time

    from tqdm import tqdm

    from gp_search import proxies
    from gp_search.parallel import evaluate
    from gp_search.lang import resolve
    from gp_search.core import json_safe
    from gp_search.proxies import resolve_device

    seeds = seed_list(args.seeds, what="--seeds")
    jobs = job_count(args.jobs, "--jobs")
    if args.task:  # your own task instead of a registered proxy, scored on its test part
        (proxy,) = options.task_proxies(args, steps=args.steps)
    else:
        overrides = {k: v for k, v in (("steps", args.steps), ("data_root", args.data_root))
                     if v is not None}
        proxy = proxies.get(args.proxy, **overrides)
    device = resolve_device(args.device)
    for text in args.loss:
        try:
            resolve(text)  # an unreadable --loss is a usage error here, not a row of failures
        except ExprError as exc:
            raise UsageError(f"--loss {text!r}: {exc}") from None
    try:
        proxy.check_data()
    except FileNotFoundError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    batched = options.BATCHED[args.batched]
    bars = []  # opened at the first report, i.e. after evaluate() has checked its arguments

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=f"evaluate on {proxy.name}", unit="run",
                             file=sys.stderr, dynamic_ncols=True))
        bars[0].update(done - bars[0].n)

    start = time.perf_counter()
    try:
        results = evaluate(args.loss, proxy=proxy, seeds=seeds, jobs=jobs, device=device,
                           backend=args.backend, scheduler=args.scheduler, batched=batched,
                           progress=progress)
    finally:
        for bar in bars:
            bar.close()
    seconds = time.perf_counter() - start
    from gp_search.analysis import evaluation_table

    rows, summaries = evaluation_table(args.loss, results, len(seeds))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    seed_text = (f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1))
                 else ",".join(map(str, seeds)))
    print(f"proxy {proxy.name}: {proxy.budget}; seeds {seed_text} (n = {len(seeds)}); device "
          f"{device}; {len(results)} trainings in {seconds:.1f} s; paired t-test by seed against "
          f"the first loss")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if args.json:
        doc = {"proxy": proxy.to_dict(), "spec": dataclasses.asdict(proxy.spec),
               "spec_key": proxy.spec.key(), "metric": proxy.spec.metric, "device": device,
               "jobs": jobs,
               "seeds": seeds, "seconds": seconds, "losses": summaries,
               "results": [r.to_dict() for r in results]}
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False) + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="gp-search", description="Genetic-programming search for neural-network loss "
                "functions.")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("show", help="canonical form, infix, LaTeX, size of a loss expression")
    p.add_argument("expr", help="expression (prefix or infix) or an expression loss name, e.g. ngl")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("losses", help="list the reference losses and their formulas")
    p.set_defaults(func=cmd_losses)

    p = sub.add_parser("export", help="write a loss as a standalone torch/NumPy/JAX/LaTeX/SymPy file")
    p.add_argument("--expr", help="expression text (prefix or infix)")
    p.add_argument("--loss", help="reference loss name (expression losses: ngl, mse)")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--target", default="torch", choices=TARGETS)
    p.add_argument("--name", help="function name (made a valid identifier)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("proxies", help="list the proxy tasks with their data and training budget")
    p.set_defaults(func=cmd_proxies)

    p = sub.add_parser("evaluate", help="train with each loss on a proxy over several seeds and "
                       "compare (mean ± std, 95%% CI, paired t-test against the first loss)")
    p.add_argument("--loss", action="append", required=True,
                   help="a reference loss name or an expression; repeat for more")
    p.add_argument("--proxy", default="mnist1d-cnn", help="proxy name (see `gp-search proxies`)")
    options.add_seeds(p)
    options.add_jobs(p)
    options.add_device(p)
    p.add_argument("--backend", default="loky", choices=sorted(BACKENDS),
                   help="; ".join(f"{n}: {BACKENDS[n].help}" for n in sorted(BACKENDS)))
    p.add_argument("--scheduler", default=None,
                   help="with --backend dask: address of a running Dask scheduler "
                        "(tcp://host:8786); without it a local cluster is started")
    options.add_batched(p, "population-batched training (auto: where it pays)")
    p.add_argument("--steps", type=int, help="optimiser steps instead of the proxy's budget")
    p.add_argument("--data-root", help="directory of user-supplied datasets (default ./data)")
    p.add_argument("--json", help="also write the summary and every result to this JSON file")
    options.add_task(p, steps=False, repeat=False)
    p.set_defaults(func=cmd_evaluate)

    cli_run.add_commands(sub)
    cli_reproduce.add_commands(sub)
    cli_report.add_commands(sub)
    cli_transfer.add_commands(sub)
    return ap


LOSS_TEXT_FLAGS = ("--loss", "--expr", "--seed-individual")
"""Flags whose value is a loss text, which may start with a minus sign (``-y_pred*y_real``)."""
MINUS_HINT = ("a loss text that starts with a minus sign is written --loss=-y_pred*y_real, or "
              "after a -- that ends the flags (gp-search transfer --suite S -- -y_pred*y_real)")


class Parser(argparse.ArgumentParser):
    """argparse, whose usage errors say how to give a loss text that starts with a minus sign
    when that is what went wrong."""

    def error(self, message: str):
        if "expected one argument" in message or "unrecognized arguments: -" in message \
                or "required: expr" in message or "required: loss" in message:
            message += f" ({MINUS_HINT})"
        super().error(message)


def loss_texts_as_values(argv: list[str]) -> list[str]:
    """``argv`` with each loss text that starts with a minus sign kept a value: argparse would
    read ``--loss -y_pred*y_real`` as two flags, so it becomes ``--loss=-y_pred*y_real``, and
    ``show [--json] -y_pred*y_real`` becomes ``show [--json] -- -y_pred*y_real``. ``-h`` and
    every ``--flag`` are left as they are."""
    def loss_like(token: str) -> bool:
        return token.startswith("-") and not token.startswith("--") and token != "-h"

    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token in LOSS_TEXT_FLAGS and i + 1 < len(argv) and loss_like(argv[i + 1]):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        if argv[:1] == ["show"] and i > 0 and loss_like(token) and "--" not in out:
            out.append("--")  # show's one positional is a loss text
        out.append(token)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(loss_texts_as_values(given))
    # What env.json and the Markdown files record: the command as given, never rebuilt.
    command = sys.argv if argv is None else ["gp-search", *map(str, argv)]
    try:
        with environment.recording(command):
            return args.func(args)
    except (UsageError, ExprError, ValueError, FileNotFoundError) as exc:
        print(f"gp-search {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gp-search {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m gp_search.cli.main works like python -m gp_search
    sys.exit(main())
