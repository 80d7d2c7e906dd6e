"""The shipped transfer study in results/transfer: its best loss, its choice and its table agree,
and the commands of its regenerate.sh parse with today's CLI."""

import csv
import json
import shlex

import pytest

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


@pytest.mark.parametrize("run", sorted(p.name for p in SHIPPED.glob("paper-nested-s*")))
def test_the_nested_runs_ship_the_selection_suites_choice_with_its_report(run):
    """The paper preset under the nested protocol (issue 20): best.py is the loss the selection
    suite picked; its stated figures are the report suite's table (used for no choice); a pick
    below CE on a report task says so in best.py."""
    run = SHIPPED / run
    choice = json.loads((run / "transfer" / "choice.json").read_text())
    assert (choice["selection_suite"], choice["suite"]) == ("transfer-select", "transfer-report")
    best = read_loss(str(run / "best.py"))
    assert parse(best.spec).canonical == parse(choice["prefix"]).canonical
    label = f"hof-{choice['hof_rank']}"
    rows = [r for r in csv.DictReader(open(run / "transfer" / "report" / "transfer.csv"))
            if r["loss"] == label]
    assert len(rows) == 7
    below = sum(float(r["diff_ci_high"]) < 0 for r in rows)
    assert below == choice["tasks_worse"]
    assert ("WARNING" in (run / "best.py").read_text()) == (below > 0)
    picked = [r for r in csv.DictReader(open(run / "transfer" / "transfer.csv"))
              if r["loss"] == label]
    assert {r["task"] for r in picked}.isdisjoint({r["task"] for r in rows})


def test_regenerate_commands_parse():
    text = (SHIPPED / "regenerate.sh").read_text().replace("\\\n", " ")
    runs = [shlex.split(ln.strip()) for ln in text.splitlines()
            if ln.strip().startswith("python -m gp_search ")]
    assert len(runs) == 1
    argv = runs[0][3:]  # after "python -m gp_search", up to the pipe into tee
    args = build_parser().parse_args(argv[:argv.index("|")])
    assert callable(args.func) and args.preset == "paper"
