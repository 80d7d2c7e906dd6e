"""Proxy rediscovery: the paper preset unseeded, NGL scored like a candidate, closeness to NGL,
the fresh-seed comparison, the report files and the ``--mode proxy`` command."""

import json

import pytest
from conftest import reproduce_cli

from gp_search.rediscovery import proxy as PR
from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig
from gp_search.parallel.evaluate import evaluate
from gp_search.rediscovery.symbolic import symbolic_distance
from gp_search.lang.expr import parse
from gp_search.lang.losses import NGL
from gp_search.engine.runner import draw_training_seeds

NGL_REWORDED = "exp(2.4092 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = SearchConfig(population=6, generations=2, proxies=("synthetic-mlp", "synthetic-mlp"),
                       proxy_weights=(2.0, 1.0), steps=30, seeds=2, backend="sequential",
                       out=str(out))
    report = PR.proxy_rediscovery(cfg, jobs=1, fresh_seeds=3, quiet=True)
    return cfg, report


def test_the_preset_is_the_paper_search_unseeded():
    cfg = PR.proxy_config(seed=7)
    assert cfg.preset == "paper" and cfg.primitive_set == "paper" and cfg.seed == 7
    assert cfg.seed_individuals == () and cfg.generations == 20 and cfg.population == 64
    with pytest.raises(ValueError, match="seed_individuals"):
        PR.proxy_config(seed_individuals=("ngl",))


def test_symbolic_distance_orders_by_shared_structure():
    assert symbolic_distance(parse(NGL_REWORDED)) == 0.0
    assert symbolic_distance(parse("exp(1.0 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))")) \
        == 0.0  # constants aside
    half = symbolic_distance(parse("exp(2.4092 - y_pred - y_pred*y_real)"))
    other = symbolic_distance(parse("sin(y_real)*exp(y_real) + cos(y_real)"))
    assert 0.0 < half < other < 1.0
    assert symbolic_distance(parse("exp(cos(1.5))*sin(1.0)*y_real*y_real"), NGL) > half


def test_closeness_of_ngl_and_of_a_stranger():
    same = PR.closeness(NGL_REWORDED)
    assert same["symbolic"] == 0.0 and same["exact"] is True
    assert same["distance"] < 1e-9 and same["max_grad_error"] < 1e-9
    far = PR.closeness("y_pred*y_real")
    assert far["exact"] is False and far["symbolic"] > 0.5 and far["distance"] > 0.1


def test_ngl_is_scored_like_every_candidate(tiny):
    cfg, report = tiny
    seeds = draw_training_seeds(cfg)
    assert report["search_seeds"] == seeds
    assert cfg.fitness_split == "val"  # the default: the search never scores on test
    acc = [r.accuracy for r in evaluate(["ngl"], "synthetic-mlp", seeds, jobs=1, steps=30,
                                        proxy_overrides={"split": "val"})]
    assert report["ngl_fitness"]["values"] == pytest.approx(acc)  # same proxy twice: weights
    assert report["ngl_fitness"]["n"] == 2                           # cancel out


def test_reached_is_the_first_generation_at_or_above_ngl(tiny):
    _, report = tiny
    mean = report["ngl_fitness"]["mean"]
    above = [r["generation"] for r in report["trajectory"] if r["best"] >= mean]
    got = report["reached"]
    assert (got is None and not above) or got["generation"] == above[0]
    assert [r["generation"] for r in report["trajectory"]] == [0, 1, 2]
    for r in report["trajectory"]:
        assert 0.0 <= r["symbolic"] <= 1.0 and r["exact"] in (True, False)


def test_full_trainings_come_from_the_runs_cache(tiny):
    cfg, report = tiny
    run = store.load_run(report["run_dir"])
    fitnesses = PR.full_trainings(run, run.config, draw_training_seeds(cfg))
    assert report["full_trainings"] == len(fitnesses) >= 1
    assert max(fitnesses) == pytest.approx(run.hall_of_fame[0]["fitness"], abs=1e-6)
    assert report["at_or_above_ngl"] == sum(f >= report["ngl_fitness"]["mean"] for f in fitnesses)


def test_fresh_seeds_pair_best_and_ngl_per_proxy_and_weighted(tiny):
    _, report = tiny
    rows = report["fresh"]
    assert [r["proxy"] for r in rows] == ["synthetic-mlp", "synthetic-mlp", "weighted fitness"]
    assert report["fresh_seeds"] == [0, 1, 2]
    for r in rows:
        assert r["diff"]["n"] == 3
        assert r["diff"]["diff"] == pytest.approx(r["best"]["mean"] - r["ngl"]["mean"])
    ngl = [x.accuracy for x in evaluate(["ngl"], "synthetic-mlp", [0, 1, 2], jobs=1, steps=30)]
    assert rows[0]["ngl_values"] == pytest.approx(ngl)  # the test split, not the validation part


def test_analysis_is_deterministic(tiny):
    _, report = tiny
    again = PR.analyse(report["run_dir"], jobs=1, fresh_seeds=3)
    assert again == report


def test_report_files(tiny, tmp_path):
    _, report = tiny
    md, js, png = PR.write(report, tmp_path, command="gp-search reproduce-ngl --mode proxy")
    text = md.read_text()
    assert PR.verdict(report) in text and "best − NGL" in text and "## How far from NGL" in text
    assert json.loads(js.read_text())["ngl_fitness"]["n"] == 2  # strict JSON
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_analyses_a_run(tiny, tmp_path, capsys):
    _, report = tiny
    assert reproduce_cli(["reproduce-ngl", "proxy", "--run", report["run_dir"], "--jobs", "1",
                 "--fresh-seeds", "2", "--table", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ("reached NGL's proxy fitness" in out) or ("did not reach" in out)
    assert "symbolic distance" in out
    assert (tmp_path / "proxy_rediscovery.md").exists()
    assert "--run" in json.loads((tmp_path / "proxy_rediscovery.json").read_text())["command"]


def test_command_refuses_target_flags_and_empty_runs(tmp_path):
    for extra in (["--seeds", "3"], ["--confirm"], ["--set", "parsimony=0"]):
        with pytest.raises(ValueError, match="for reproduce-ngl target"):
            reproduce_cli(["reproduce-ngl", "proxy"] + extra)
    with pytest.raises(ValueError, match="fresh-seeds"):
        reproduce_cli(["reproduce-ngl", "proxy", "--fresh-seeds", "1"])
    with pytest.raises(store.RunFileError, match="not a run directory"):
        reproduce_cli(["reproduce-ngl", "proxy", "--run", str(tmp_path / "nothing")])


@pytest.mark.slow
def test_command_from_scratch_on_the_paper_proxies(tmp_path, capsys):
    """The real path: the paper preset (shrunk to 4 individuals, generation 0 only) on
    mnist1d-cnn and digits-mlp, then the analysis with 2 fresh seeds."""
    assert reproduce_cli(["reproduce-ngl", "proxy", "--population", "4", "--generations", "0",
                 "--fresh-seeds", "2", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "NGL's proxy fitness" in out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    report = json.loads((run_dir / "proxy_rediscovery.json").read_text())
    assert report["config"]["preset"] == "paper" and report["config"]["population"] == 4
    assert [r["proxy"] for r in report["fresh"]] == ["mnist1d-cnn", "digits-mlp",
                                                     "weighted fitness"]
    assert 0.5 < report["ngl_fitness"]["mean"] < 1.0
