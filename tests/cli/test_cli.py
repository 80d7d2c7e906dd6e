"""The command line in real subprocesses: show, losses, export, and clean failures."""

import json

import pytest

import gp_search
from gp_search.cli.main import loss_texts_as_values


def test_show_ngl_json(cli):
    res = cli("show", "ngl", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["canonical"] == gp_search.NGL.canonical
    assert info["size"] == 13 and info["depends_on_pred"] is True


def test_show_infix(cli):
    res = cli("show", "exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))")
    assert res.returncode == 0 and gp_search.NGL.canonical in res.stdout


def test_losses_lists_every_reference(cli):
    res = cli("losses")
    assert res.returncode == 0
    for name in ("ngl", "ce", "focal", "sce", "label_smoothing", "poly1", "mse", "ce_l2"):
        assert name in res.stdout


def test_bad_expression_exit_2_one_line_no_traceback(cli, tmp_path):
    marker = tmp_path / "pwned"
    res = cli("show", f"__import__('os').system('touch {marker}')")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_export_writes_a_working_file(cli, tmp_path):
    out = tmp_path / "sub" / "ngl_loss.py"
    res = cli("export", "--loss", "ngl", "--out", out, "--name", "ngl loss")
    assert res.returncode == 0, res.stderr
    assert "def ngl_loss(logits, target)" in out.read_text()
    res = cli("export", "--expr", "y_pred*y_real", "--out", tmp_path / "f.tex", "--target", "latex")
    assert res.returncode == 0 and "mathcal" in (tmp_path / "f.tex").read_text()


def test_export_errors(cli, tmp_path):
    res = cli("export", "--loss", "ce", "--out", tmp_path / "x.py")
    assert res.returncode == 2 and "not an expression" in res.stderr
    res = cli("export", "--out", tmp_path / "x.py")
    assert res.returncode == 2 and "exactly one of" in res.stderr


def test_run_help_gives_the_value_each_preset_sets(cli):
    from gp_search.cli.search import DEFAULT_PRESET, defaults_text
    from dataclasses import fields

    from gp_search.engine.config import PRESETS, SearchConfig

    text = " ".join(cli("run", "--help", env={"COLUMNS": "10000"}).stdout.split())
    for name, default in ((f.name, f.default) for f in fields(SearchConfig)):
        if name in ("preset", "tasks"):
            continue
        said = defaults_text(name, default)
        assert f"({said})" in text, name
        if any(name in values for values in PRESETS.values()):
            assert "default " not in said  # the generic default is never called "default" here
            quick = PRESETS[DEFAULT_PRESET].get(name, default)
            shown = ",".join(map(str, quick)) if isinstance(quick, tuple) else repr(quick)
            assert said.startswith(f"with no arguments {shown} ({DEFAULT_PRESET} preset)"), name
            for preset, values in PRESETS.items():
                assert preset == DEFAULT_PRESET or f"--preset {preset}:" in said
    population = PRESETS[DEFAULT_PRESET]["population"]
    assert f"individuals per generation (with no arguments {population} (quick preset)" in text
    assert "generation (default 32)" not in text and "default ('digits-mlp',)" not in text


def test_show_answers_or_refuses_the_issue_22_text_at_once(cli):
    from test_fuzz import ISSUE_22

    res = cli("show", ISSUE_22, timeout=120)  # hung for more than 10 minutes before the bound
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "outside float64's range" in res.stderr and "exp(sub(" in res.stderr


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "--loss", "-y_pred*y_real", "--loss", "ce"],
     ["evaluate", "--loss=-y_pred*y_real", "--loss", "ce"]),
    (["export", "--expr", "-y_pred", "--out", "x.py"], ["export", "--expr=-y_pred", "--out", "x.py"]),
    (["run", "--seed-individual", "-y_pred*y_real"], ["run", "--seed-individual=-y_pred*y_real"]),
    (["show", "--json", "-y_pred*y_real"], ["show", "--json", "--", "-y_pred*y_real"]),
    (["show", "-h"], ["show", "-h"]),
    (["evaluate", "--loss", "--proxy"], ["evaluate", "--loss", "--proxy"]),
])
def test_a_loss_text_may_start_with_a_minus_sign(argv, expected):
    assert loss_texts_as_values(argv) == expected


def test_minus_sign_losses_through_the_command_line(cli, tmp_path):
    out = cli("show", "--json", "-y_pred*y_real")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["canonical"] == "-y_pred*y_real"
    out = cli("export", "--expr", "-y_pred*y_real", "--out", tmp_path / "neg.py")
    assert out.returncode == 0 and (tmp_path / "neg.py").is_file(), out.stderr
    out = cli("transfer", "-y_pred*y_real")  # a positional after no flag: the error says how
    assert out.returncode == 2 and "--loss=-y_pred*y_real" in out.stderr
