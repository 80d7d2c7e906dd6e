"""The shipped transfer study in results/transfer: its best loss, its choice and its table agree,
and the commands of its regenerate.sh parse with today's CLI."""

import csv
import json
import shlex

from conftest import ROOT

from gp_search.analysis.transfer import read_loss
from gp_search.cli.main import build_parser
from gp_search.lang.expr import parse

SHIPPED = ROOT / "results" / "transfer"
RUN = SHIPPED / "paper-run"


def test_the_shipped_best_is_the_stage_choice_and_below_ce_on_no_task():
    choice = json.loads((RUN / "transfer" / "choice.json").read_text())
    best = read_loss(str(RUN / "best.py"))  # its Tree: line, parsed as text (never run)
    assert parse(best.spec).canonical == parse(choice["prefix"]).canonical
    assert choice["transfers"] is True and choice["tasks_worse"] == 0
    label = f"hof-{choice['hof_rank']}"
    rows = [r for r in csv.DictReader(open(RUN / "transfer" / "transfer.csv")) if r["loss"] == label]
    assert len(rows) == 10  # every task of the held-out suite, CI of the change vs CE not below 0
    assert all(float(r["diff_ci_high"]) >= 0 for r in rows)
    assert {r["task"] for r in rows} >= {"t-digits-mlp-sgd", "t-mnist1d-cnn-sgd"}


def test_regenerate_commands_parse():
    text = (SHIPPED / "regenerate.sh").read_text().replace("\\\n", " ")
    runs = [shlex.split(ln.strip()) for ln in text.splitlines()
            if ln.strip().startswith("python -m gp_search ")]
    assert len(runs) == 1
    argv = runs[0][3:]  # after "python -m gp_search", up to the pipe into tee
    args = build_parser().parse_args(argv[:argv.index("|")])
    assert callable(args.func) and args.preset == "paper"
