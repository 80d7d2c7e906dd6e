"""The ``gp-search`` command line: one subcommand per job, each a thin call into the library."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gp_search.export import TARGETS, export as export_loss
from gp_search.expr import ExprError, LossExpr, parse
from gp_search.losses import REFERENCE


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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gp-search", description="Genetic-programming search for "
                                 "neural-network loss functions.")
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
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, ExprError, ValueError, FileNotFoundError) as exc:
        print(f"gp-search {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gp-search {args.command}: interrupted", file=sys.stderr)
        return 130
