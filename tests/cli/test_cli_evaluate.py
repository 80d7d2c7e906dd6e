"""`gp-search proxies` and `gp-search evaluate` end to end, in real subprocesses."""

import json

import pytest

from gp_search import proxies


def test_proxies_lists_every_proxy_with_data_and_budget(cli):
    res = cli("proxies")
    assert res.returncode == 0, res.stderr
    for name in proxies.names():
        spec = proxies.SPECS[name]
        assert f"{name}\n" in res.stdout
        assert f"{spec.steps} steps x batch {spec.batch_size}" in res.stdout
    assert "user files" in res.stdout and "embedded" in res.stdout


def test_evaluate_end_to_end_with_json(cli, tmp_path):
    out = tmp_path / "runs" / "cmp.json"
    res = cli("evaluate", "--loss", "ngl", "--loss", "ce", "--loss", "y_real", "--proxy",
              "synthetic-mlp", "--steps", "30", "--seeds", "3", "--jobs", "2", "--json", out)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert "synthetic-mlp" in lines[0] and "n = 3" in lines[0]
    header, *rows = lines[1:]
    assert "95% CI" in header and "diff vs ngl" in header
    assert [r.split()[0] for r in rows] == ["ngl", "ce", "y_real"]
    assert "rejected x3" in rows[2]
    assert "evaluate on synthetic-mlp" in res.stderr  # the progress bar

    doc = json.loads(out.read_text())
    assert doc["seeds"] == [0, 1, 2] and doc["proxy"]["overrides"] == {"steps": 30}
    assert [(r["loss"], r["seed"]) for r in doc["results"]] == \
        [(n, s) for n in ("ngl", "ce", "y_real") for s in (0, 1, 2)]
    ngl, ce, blind = doc["losses"]
    assert ngl["vs_first"] is None and ngl["accuracy"]["n"] == 3
    assert ngl["accuracy"]["ci_low"] <= ngl["accuracy"]["mean"] <= ngl["accuracy"]["ci_high"]
    assert ngl["accuracy"]["mean"] > 0.3  # well above chance (0.1) after 30 steps
    assert ce["vs_first"]["n"] == 3 and 0 <= ce["vs_first"]["p_value"] <= 1
    assert blind["statuses"] == {"rejected": 3} and blind["accuracy"]["mean"] is None
    # The table shows the same numbers as the file.
    assert f"{ngl['accuracy']['mean']:.4f}" in rows[0]


@pytest.mark.parametrize("args,needle", [
    (["--proxy", "nope"], "unknown proxy"),
    (["--loss", "exp(y_pred"], "--loss 'exp(y_pred'"),
    (["--seeds", "many"], "--seeds"),
    (["--jobs", "0"], "jobs"),
    (["--device", "gpu"], "unknown device"),
    (["--steps", "0"], "steps"),
])
def test_evaluate_bad_input_exit_2_one_line(cli, args, needle):
    res = cli("evaluate", "--loss", "ce", "--proxy", "synthetic-mlp", *args)
    assert res.returncode == 2
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""


def test_evaluate_without_data_files_names_them(cli, tmp_path):
    res = cli("evaluate", "--loss", "ce", "--proxy", "cifar10-resnet", "--data-root", tmp_path)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "data_batch_1" in res.stderr and str(tmp_path) in res.stderr


def test_evaluate_scheduler_needs_the_dask_backend(cli):
    res = cli("evaluate", "--loss", "ce", "--proxy", "synthetic-mlp", "--steps", "5", "--seeds",
              "1", "--backend", "loky", "--scheduler", "tcp://127.0.0.1:1")
    assert res.returncode == 2
    assert "backend 'loky' has no scheduler" in res.stderr and "Traceback" not in res.stderr
