"""Reports: comparison files and plots, per-element loss forms, run reports, the CLI's bad input."""

import csv

import numpy as np
import pytest

from gp_search.cli import main as cli_main
from gp_search.analysis.compare import ROW_FIELDS, LossEntry, compare, run_best
from gp_search.lang.losses import resolve
from gp_search.analysis.plots import element_form
from gp_search.analysis.report import format_table, write_comparison, write_run_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_png(path, min_bytes=10_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) >= min_bytes, (path, len(data))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from gp_search.engine.config import SearchConfig
    from gp_search.engine.runner import run_search

    out = tmp_path_factory.mktemp("runs")
    return run_search(SearchConfig(population=6, generations=1, proxies=("synthetic-mlp",),
                                   steps=30, backend="sequential", out=str(out)), quiet=True)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    cmp = compare(["ce", "ngl", "ce_l2", "y_real"], proxies=["synthetic-mlp"], seeds=2)
    out = tmp_path_factory.mktemp("compare")
    return cmp, out, write_comparison(cmp, out, "gp-search compare --proxy synthetic-mlp")


# --- comparison files ----------------------------------------------------------------------------

def test_comparison_files_and_pngs(written):
    _, out, files = written
    names = {f.name for f in files}
    assert names == {"compare.md", "compare.csv", "compare_seeds.csv", "reliability.csv",
                     "confidence.csv", "loss_shapes.png", "confidence.png", "reliability.png"}
    for name in ("loss_shapes.png", "confidence.png", "reliability.png"):
        _assert_png(out / name)


def test_comparison_csv_contents(written):
    _, out, _ = written
    rows = list(csv.DictReader((out / "compare.csv").open()))
    assert tuple(rows[0]) == ROW_FIELDS and [r["loss"] for r in rows] == ["ce", "ngl", "ce_l2",
                                                                          "y_real"]
    ce = rows[0]
    assert float(ce["diff_vs_ce"]) == 0 and float(ce["p_value"]) == 1 and ce["n"] == "2"
    assert rows[3]["n"] == "0" and rows[3]["acc_mean"] == "" and rows[3]["not_ok"] == "rejected x2"
    seeds = list(csv.DictReader((out / "compare_seeds.csv").open()))
    assert len(seeds) == 4 * 2
    ngl = [float(r["accuracy"]) for r in seeds if r["loss"] == "ngl"]
    assert float(rows[1]["acc_mean"]) == pytest.approx(np.mean(ngl), abs=1e-9)
    bins = [r for r in csv.DictReader((out / "reliability.csv").open()) if r["loss"] == "ngl"]
    assert len(bins) == 15 and sum(int(b["count"]) for b in bins) == 2 * 500


def test_comparison_markdown_states_n_and_method(written):
    cmp, out, _ = written
    md = (out / "compare.md").read_text()
    assert "gp-search compare --proxy synthetic-mlp" in md
    assert "n = 2" in md and "paired" in md and "ECE" in md
    assert "![reliability diagrams](reliability.png)" in md
    assert "ce_l2: + 0.0005/2" in md  # the loss-shape caption says what the curve leaves out
    text = format_table(cmp)
    assert "synthetic-mlp" in text and "rejected x2" in text


# --- per-element forms ---------------------------------------------------------------------------

def test_element_forms():
    p = np.array([0.25, 0.5])
    f, note = element_form("ce")
    assert np.allclose(f(p, 1.0), -np.log(p)) and np.allclose(f(p, 0.0), 0) and note == ""
    f, note = element_form("ngl")
    want = np.exp(2.4092 - p * 2) - np.cos(np.cos(np.sin(p)))
    assert np.allclose(f(p, 1.0), want) and note == ""
    f, _ = element_form("sce")
    assert np.allclose(f(p, 0.0), -1.0 * p * np.log(1e-4))  # the reverse term of a wrong class
    f, note = element_form("ce_l2")
    assert np.allclose(f(p, 1.0), -np.log(p)) and "weights" in note
    f, _ = element_form("label_smoothing", k=10)
    assert np.allclose(f(p, 0.0), -0.01 * np.log(p))


def test_loss_shapes_skip_what_has_no_form(tmp_path, monkeypatch):
    from gp_search.analysis import plots

    real = plots.element_form
    monkeypatch.setattr(plots, "element_form",
                        lambda spec, k=10: (None, "none") if spec == "focal" else real(spec, k))
    notes = plots.plot_loss_shapes([LossEntry("ce", "ce"), LossEntry("focal", "focal")],
                                   tmp_path / "s.png")
    assert notes == ["focal: skipped (none)"]
    _assert_png(tmp_path / "s.png")


# --- run reports ---------------------------------------------------------------------------------

def test_run_report(tiny_run, tmp_path):
    files = write_run_report(tiny_run, tmp_path / "rep")
    assert [f.name for f in files] == ["report.md", "fitness.png", "routes.png"]
    for f in files[1:]:
        _assert_png(f)
    md = files[0].read_text()
    assert tiny_run.name in md and "## Hall of fame" in md and "finished" in md
    assert md.count("\n| 0 |") == 1 and md.count("\n| 1 |") >= 1  # generation rows, HOF rank 1
    assert "hall-of-fame best (full budget) | population best (any budget)" in md


def test_a_run_logged_before_the_hall_of_fames_best_still_reports(tiny_run, tmp_path):
    import json
    import shutil

    from gp_search.engine import rundir as store

    old = tmp_path / tiny_run.name
    shutil.copytree(tiny_run, old)
    log = old / "generations.jsonl"
    recs = [json.loads(line) for line in log.read_text().splitlines()]
    log.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "hof_best"}) + "\n"
                           for r in recs))
    assert all("hof_best" not in g for g in store.load_run(old).generations)
    md = write_run_report(old, tmp_path / "rep")[0].read_text()
    assert "\n| 0 | – | " in md  # no hall-of-fame best logged then: a dash, not an error


def test_run_report_default_out_and_bad_dir(tiny_run, tmp_path):
    from gp_search.engine.rundir import RunFileError

    files = write_run_report(tiny_run)
    assert files[0] == tiny_run / "report" / "report.md"
    with pytest.raises(RunFileError, match="not a run directory"):
        write_run_report(tmp_path / "nothing")


def test_run_best_is_labelled_by_run_id(tiny_run):
    entry = run_best(tiny_run)
    assert entry.label == tiny_run.name and entry.origin == str(tiny_run)
    resolve(entry.spec)  # the hall of fame's infix reads back


# --- CLI -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv, says", [
    (["compare", "--proxy", "no-such", "--seeds", "2"], "unknown proxy 'no-such'"),
    (["compare", "--seeds", "2"], "give at least one --proxy"),
    (["compare", "--proxy", "synthetic-mlp", "--seeds", "1"], "at least 2"),
    (["compare", "--proxy", "synthetic-mlp", "--seeds", "x"], "comma-separated list"),
    (["compare", "--proxy", "synthetic-mlp", "--baselines", "ngl"], "must include 'ce'"),
    (["compare", "--proxy", "synthetic-mlp", "--loss", "exp(y_pred"], ""),
    (["compare", "--proxy", "synthetic-mlp", "--jobs", "0"], "--jobs must be >= 1"),
    (["report", "/no/such/run"], "not a run directory"),
])
def test_cli_bad_input_is_one_line_exit_2(argv, says, capsys):
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"gp-search {argv[0]}: error:")
    assert says in err


def test_cli_compare_and_report_end_to_end(tiny_run, tmp_path, cli):
    out = tmp_path / "cmp"
    r = cli("compare", "--proxy", "synthetic-mlp", "--seeds", "2", "--baselines", "ce,ngl",
            "--run", tiny_run, "--out", out, "--steps", "40")
    assert r.returncode == 0, r.stderr
    assert "synthetic-mlp" in r.stdout and tiny_run.name in r.stdout
    md = (out / "compare.md").read_text()
    assert f"--run {tiny_run}" in md and "--steps 40" in md
    _assert_png(out / "confidence.png")
    r = cli("report", tiny_run, "--out", tmp_path / "rep")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep" / "report.md").exists() and "report.md" in r.stdout
