"""The run's transfer stage: the hall of fame's best on held-out tasks, best.py from there."""

import json

import pytest

from gp_search import store
from gp_search.analysis.transfer import Transfer, pick_best
from gp_search.search.config import SearchConfig, preset
from gp_search.search.runner import resume, run_search
from gp_search.search.transfer_stage import load_choice, verdict


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


def test_presets_end_with_a_transfer_stage_and_bad_suites_are_refused():
    assert preset("quick").transfer_suite == "transfer-quick"
    assert preset("paper").transfer_suite == "transfer"
    assert SearchConfig().transfer_suite == "none"
    with pytest.raises(ValueError, match="transfer_suite"):
        SearchConfig(transfer_suite="no-such-suite")


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
    best = (run_dir / "best.py").read_text()
    assert f"Tree: {choice['prefix']}" in best and "held-out suite 'transfer-test'" in best
    # A run stopped during the stage: resume runs the stage again and chooses the same loss.
    first = json.loads((run_dir / "transfer" / "choice.json").read_text())
    (run_dir / "transfer" / "choice.json").unlink()
    (run_dir / "best.py").unlink()
    resume(run_dir, quiet=True)
    assert load_choice(run_dir) == first and (run_dir / "best.py").read_text() == best


def test_without_a_stage_best_py_says_transfer_is_unmeasured(tmp_path):
    run_dir = run_search(_cfg(tmp_path, transfer_suite="none"), quiet=True)
    assert not (run_dir / "transfer").exists()
    assert "no transfer stage" in (run_dir / "best.py").read_text()
