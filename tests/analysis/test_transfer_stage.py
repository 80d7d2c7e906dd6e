"""The run's transfer stage: the hall of fame's best on held-out tasks, best.py from there."""

import json

import pytest

from gp_search.engine import rundir as store
from gp_search.analysis.transfer import Transfer, pick_best
from gp_search.engine.config import SearchConfig, preset
from gp_search.api import resume
from gp_search.api import run as run_search
from gp_search.proxies import get
from gp_search.proxies.catalog import SUITES
from gp_search.analysis.transfer_stage import load_choice, transfer_rate, verdict


def _agg(loss, mean, worst, worse):
    return {"loss": loss, "mean_diff": mean, "worst_task": "t", "worst_diff": worst,
            "tasks_worse": worse, "tasks_better": 0}


def _res(*aggregate) -> Transfer:
    return Transfer("transfer-test", [], [], [0, 1], aggregate=list(aggregate))


def test_a_loss_that_breaks_one_task_never_beats_one_that_breaks_none():
    res = _res(_agg("hof-1", 0.05, -0.60, 1),  # best mean, collapses on one task
               _agg("hof-2", 0.01, -0.01, 0), _agg("hof-3", 0.00, -0.02, 0),
               _agg("ngl", 0.09, 0.01, 0))  # a baseline is never the pick
    pick = pick_best(res, ["hof-1", "hof-2", "hof-3"])
    assert pick["loss"] == "hof-2" and pick["transfers"] is True


def test_when_every_candidate_breaks_a_task_the_least_bad_is_flagged():
    res = _res(_agg("hof-1", 0.05, -0.60, 2), _agg("hof-2", -0.10, -0.30, 1),
               _agg("hof-3", -0.02, -0.50, 1))
    pick = pick_best(res, ["hof-1", "hof-2", "hof-3"])
    assert pick["loss"] == "hof-2" and pick["transfers"] is False
    text = verdict({**pick, "hof_rank": 2, "suite": "transfer-test"})
    assert text.startswith("WARNING") and "Do not use it" in text
    with pytest.raises(ValueError, match="none of"):
        pick_best(res, ["hof-9"])


@pytest.mark.parametrize("name", ["t-tabular2-mlp", "t-digits-parity-mlp"])
def test_a_search_may_not_score_a_held_out_task(name):
    with pytest.raises(ValueError, match="no held-out transfer task"):
        SearchConfig(proxies=("digits-mlp", name))


def test_presets_end_with_a_nested_transfer_stage_and_bad_suites_are_refused():
    for name, select, report in (("quick", "transfer-quick-select", "transfer-quick-report"),
                                 ("paper", "transfer-select", "transfer-report")):
        cfg = preset(name)
        assert (cfg.transfer_suite, cfg.report_suite) == (select, report)
        chosen, reported = ({n for n, _ in SUITES[s]} for s in (select, report))
        assert not chosen & reported  # disjoint: the report suite decides nothing
        assert not (chosen | reported) & set(cfg.proxies)  # and the search scores neither
        # The report suite holds the long-tailed and the soft-target tasks.
        specs = [get(n).spec for n in reported]
        assert any(s.long_tail for s in specs) and any(s.mixup for s in specs)
        for suite in (chosen, reported):  # each a held-out suite a search may not score
            with pytest.raises(ValueError, match="no held-out transfer task"):
                SearchConfig(proxies=tuple(sorted(suite))[:1])
    assert SearchConfig().transfer_suite == "none" and SearchConfig().report_suite == "none"
    with pytest.raises(ValueError, match="transfer_suite"):
        SearchConfig(transfer_suite="no-such-suite")
    with pytest.raises(ValueError, match="report_suite"):  # shares tasks with the selection
        SearchConfig(transfer_suite="transfer", report_suite="transfer-report")
    with pytest.raises(ValueError, match="report_suite"):  # a report with nothing to pick
        SearchConfig(report_suite="transfer-test-report")


def test_a_suite_chosen_by_hand_picks_and_reports_alone_as_before():
    from gp_search.engine.config import build

    for cfg in (build("quick", transfer_suite="none"), preset("quick", transfer_suite="none")):
        assert (cfg.transfer_suite, cfg.report_suite) == ("none", "none")
    for cfg in (build("quick", transfer_suite="transfer"), preset("quick", transfer_suite="transfer")):
        assert (cfg.transfer_suite, cfg.report_suite) == ("transfer", "none")
    both = build("quick", transfer_suite="transfer-test", report_suite="transfer-test-report")
    assert (both.transfer_suite, both.report_suite) == ("transfer-test", "transfer-test-report")
    assert build("quick", population=4).report_suite == "transfer-quick-report"


def test_an_old_config_without_report_suite_loads_and_keeps_its_meaning():
    old = {k: v for k, v in preset("quick").to_dict().items() if k != "report_suite"}
    old["transfer_suite"] = "transfer-quick"  # a config.json written before report_suite
    cfg = SearchConfig.from_dict(old)
    assert (cfg.transfer_suite, cfg.report_suite) == ("transfer-quick", "none")


def test_a_segmentation_suite_without_calibration_figures_writes_a_readable_choice(tmp_path):
    from gp_search.analysis.transfer_stage import calibration_note, run_stage

    cfg = _cfg(tmp_path, transfer_suite="transfer-seg-test", transfer_top=1)
    entry = {"prefix": "mul(y_pred, y_real)", "canonical": "y_pred*y_real", "fitness": 0.0,
             "n": 1}
    chosen = run_stage(cfg, tmp_path, [entry], quiet=True)
    assert chosen["mean_ece"] is None  # dense: no calibration figures, null in the file
    assert load_choice(tmp_path) == chosen and calibration_note(chosen) == ""


def test_transfer_rate_counts_the_top_losses_below_ce_on_no_task():
    res = _res(_agg("hof-1", 0.05, -0.60, 1), _agg("hof-2", 0.01, -0.01, 0),
               _agg("hof-3", -0.02, -0.02, 0), _agg("ngl", 0.09, 0.01, 0))
    assert transfer_rate(res, ["hof-1", "hof-2", "hof-3"]) == 2  # a baseline never counts
    assert transfer_rate(res, ["hof-1"]) == 0


def _cfg(tmp_path, **kw) -> SearchConfig:
    base = dict(population=6, generations=1, proxies=("synthetic-mlp",), steps=30, seeds=1,
                jobs=1, backend="sequential", out=str(tmp_path / "runs"), hall_of_fame=4,
                init_max_depth=3, max_height=6, max_size=20, seed=5, elitism=1,
                seed_individuals=("ngl",), transfer_suite="transfer-test", transfer_top=3,
                transfer_seeds=2)
    base.update(kw)
    return SearchConfig(**base)


def test_run_retrains_its_best_on_the_suite_and_resume_redoes_a_missing_stage(tmp_path):
    run_dir = run_search(_cfg(tmp_path), quiet=True)
    run = store.load_run(run_dir)
    choice = load_choice(run_dir)
    assert choice is not None and 1 <= choice["hof_rank"] <= 3
    assert choice["canonical"] == run.hall_of_fame[choice["hof_rank"] - 1]["canonical"]
    md = (run_dir / "transfer" / "transfer.md").read_text()
    for task in ("t-tabular2-mlp", "t-digits-mod3-mlp"):
        assert f"## {task}" in md
    assert "hof-1" in md and "ngl" in md and "label_smoothing" in md
    best = " ".join((run_dir / "best.py").read_text().split())  # its text, however wrapped
    assert f"Tree: {choice['prefix']}" in best and "held-out suite 'transfer-test'" in best
    # A run stopped during the stage: resume runs the stage again and chooses the same loss.
    first = json.loads((run_dir / "transfer" / "choice.json").read_text())
    (run_dir / "transfer" / "choice.json").unlink()
    (run_dir / "best.py").unlink()
    resume(run_dir, quiet=True)
    assert load_choice(run_dir) == first
    assert " ".join((run_dir / "best.py").read_text().split()) == best


def test_without_a_stage_best_py_says_transfer_is_unmeasured(tmp_path):
    run_dir = run_search(_cfg(tmp_path, transfer_suite="none"), quiet=True)
    assert not (run_dir / "transfer").exists()
    assert "no transfer stage" in " ".join((run_dir / "best.py").read_text().split())


def test_a_nested_stage_picks_on_the_selection_suite_and_reports_on_the_other(tmp_path):
    run_dir = run_search(_cfg(tmp_path, report_suite="transfer-test-report"), quiet=True)
    choice = load_choice(run_dir)
    rows = _csv(run_dir / "transfer" / "transfer.csv")
    select = {r["loss"]: r for r in rows}
    report = _csv(run_dir / "transfer" / "report" / "transfer.csv")
    # The pick is the selection suite's (pick_best over its aggregate), whatever the report says.
    labels = [f"hof-{i}" for i in range(1, 4) if f"hof-{i}" in select]
    assert set(select) == {"ce", *labels}  # the selection suite trains the top k and CE only
    assert {r["task"] for r in report} == {n for n, _ in SUITES["transfer-test-report"]}
    assert {"ngl", "label_smoothing", "focal"} <= {r["loss"] for r in report}
    # The pick, from the selection suite's rows alone: the best mean of those below CE on no task.
    agg = {}
    for label in labels:
        own = [r for r in rows if r["loss"] == label]
        agg[label] = (not any(float(r["diff_ci_high"]) < 0 for r in own),
                      sum(float(r["diff_vs_ce"]) for r in own) / len(own))
    safe = [lb for lb in labels if agg[lb][0]]
    if safe:
        assert f"hof-{choice['hof_rank']}" == max(safe, key=lambda lb: agg[lb][1])
    assert choice["selection"]["mean_diff"] == pytest.approx(agg[f"hof-{choice['hof_rank']}"][1])
    mine = [r for r in report if r["loss"] == f"hof-{choice['hof_rank']}"]
    mean = sum(float(r["diff_vs_ce"]) for r in mine) / len(mine)
    assert choice["suite"] == "transfer-test-report"
    assert choice["selection_suite"] == "transfer-test"
    assert choice["mean_diff"] == pytest.approx(mean)  # the figures stated are the report's
    assert choice["tasks_worse"] == sum(float(r["diff_ci_high"]) < 0 for r in mine)
    held = {r["loss"] for r in report if r["loss"].startswith("hof-")} - {
        r["loss"] for r in report if r["loss"].startswith("hof-") and float(r["diff_ci_high"]) < 0}
    assert choice["transfer_rate"] == len(held) and choice["top"] == len(labels)
    # best.py states the report suite's figures and the calibration on it.
    best = " ".join((run_dir / "best.py").read_text().split())  # its text, however wrapped
    assert "on the report suite 'transfer-test-report' (used for no choice)" in best
    assert f"{100 * choice['mean_diff']:+.1f} points" in best
    assert f"transfer rate: {choice['transfer_rate']} of the top {len(labels)}" in best
    assert "fitted temperature T =" in best and "ECE" in best


def _csv(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))
