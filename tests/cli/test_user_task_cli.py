"""Your own task end to end in real subprocesses: a search on an .npz, a CSV, an image folder and
a factory at once (a ``tasks = [...]`` config table) with the sequential, loky and Dask backends,
the same hall of fame for --jobs 1 and --jobs 2; ``--task`` in run, evaluate, compare and
transfer; a bad file refused with exit code 2, one line, and no run directory."""

import json
import os

import pytest
from conftest import ROOT, run_cli
from user_task_files import CLASSES, write_csv, write_factory, write_images, write_npz

CONFIG = """
population = 4
generations = 1
steps = 30
seeds = 1
seed = 3
fitness_aggregate = "mean"
transfer_suite = "none"
init_max_depth = 3
max_height = 6
max_size = 20
tasks = [
  {{file = "blobs.npz", batch_size = 32}},
  {{file = "species.csv", label_column = "species", batch_size = 16, metric = "macro_f1"}},
  {{file = "pics", image_size = 8, batch_size = 8}},
  {{factory = "{factory}", batch_size = 32, optimizer = "sgd", lr = 0.05}},
]
"""


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tasks")
    write_npz(d / "blobs.npz")
    write_csv(d / "species.csv")
    write_images(d / "pics")
    factory = write_factory(d, "cli_tasks")
    (d / "search.toml").write_text(CONFIG.format(factory=factory))
    return d


def gp(task_dir, *args, timeout=600):
    """``gp-search ARGS`` with the task folder on PYTHONPATH (so workers import the factory)."""
    res = run_cli(*args, cwd=task_dir, timeout=timeout,
                  env={"PYTHONPATH": os.pathsep.join([str(ROOT), str(task_dir)])})
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def only_run(out):
    (run_dir,) = out.iterdir()
    return run_dir


def test_every_kind_of_task_searched_alike_by_every_backend_and_jobs(task_dir, tmp_path):
    runs = {}
    for backend, jobs in (("sequential", 1), ("loky", 2), ("dask", 2)):
        out = tmp_path / backend
        gp(task_dir, "run", "--config", "search.toml", "--backend", backend, "--jobs", jobs,
           "--out", out, "--quiet")
        runs[backend] = only_run(out)
    hofs = {b: (r / "hall_of_fame.csv").read_text() for b, r in runs.items()}
    assert hofs["sequential"] == hofs["loky"] == hofs["dask"]
    assert len(hofs["loky"].splitlines()) > 1
    records = json.loads((runs["dask"] / "tasks.json").read_text())
    assert [r["name"] for r in records] == ["task-blobs", "task-species", "task-pics",
                                            "task-make"]
    by_name = {r["name"]: r for r in records}
    assert by_name["task-species"]["classes"] == list(CLASSES)
    assert by_name["task-pics"]["input_shape"] == [3, 8, 8]
    assert by_name["task-pics"]["model"] == "cnn2d"
    assert by_name["task-make"]["model"] == "factory:cli_tasks:make"
    for r in records[:3]:
        assert r["size"] == os.path.getsize(task_dir / r["path"]) or os.path.isdir(r["path"])
        assert len(r["sha256"]) == 64
    config = json.loads((runs["loky"] / "config.json").read_text())
    assert config["tasks"][0]["file"] == str(task_dir / "blobs.npz")  # made absolute


def test_task_flag_in_run_evaluate_compare_and_transfer(task_dir, tmp_path):
    res = gp(task_dir, "run", "--task", "species.csv", "--label-column", "species",
             "--batch-size", "16", "--population", "4", "--generations", "0", "--steps", "20",
             "--transfer-suite", "none", "--jobs", "1", "--out", tmp_path / "runs")
    assert "task-species" in res.stdout
    config = json.loads((only_run(tmp_path / "runs") / "config.json").read_text())
    assert config["proxies"] == [] and config["tasks"][0]["label_column"] == "species"

    res = gp(task_dir, "evaluate", "--task", "pics", "--image-size", "8", "--batch-size", "8",
             "--steps", "20", "--loss", "ce", "--loss", "ngl", "--seeds", "2", "--metric",
             "balanced_accuracy", "--json", tmp_path / "ev.json")
    assert "task task-pics" in res.stdout and "SHA-256" in res.stdout
    doc = json.loads((tmp_path / "ev.json").read_text())
    assert doc["spec"]["metric"] == "balanced_accuracy"
    assert [s["statuses"] for s in doc["losses"]] == [{"ok": 2}, {"ok": 2}]

    res = gp(task_dir, "compare", "--task", "blobs.npz", "--batch-size", "32", "--steps", "20",
             "--baselines", "ce,ngl", "--seeds", "2", "--out", tmp_path / "cmp")
    assert "task-blobs" in (tmp_path / "cmp" / "compare.md").read_text()

    res = gp(task_dir, "transfer", "exp(-y_pred*y_real)", "--task", "cli_tasks:make",
             "--batch-size", "32", "--steps", "20", "--baselines", "ce,ngl", "--seeds", "2",
             "--out", tmp_path / "tr")
    assert "task-make" in (tmp_path / "tr" / "transfer.md").read_text()


def test_a_bad_file_exits_2_with_one_line_and_writes_nothing(task_dir, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,2,p\n1,x,q\n")
    res = run_cli("run", "--task", bad, "--label-column", "y", "--out", tmp_path / "runs")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert f"{bad}: line 3, column 'b' is 'x', not a number" in res.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_the_example_script_searches_on_tensors_and_a_torch_model(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "examples" / "search_on_tensors.py"),
                          str(tmp_path)], capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-3000:]
    assert "best loss:" in res.stdout and "NGL: test accuracy" in res.stdout
    (run_dir,) = tmp_path.iterdir()
    record = json.loads((run_dir / "tasks.json").read_text())[0]
    assert record["model"].endswith("search_on_tensors.py:SpiralNet")
    assert (run_dir / "tasks" / "spirals.npz").is_file()
