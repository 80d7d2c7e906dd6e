"""Your own task in-process: reading and standardising each kind of file, the Task record, user
models, the SHA-256 in the cache key, gp_search.search from arrays, and every bad input refused
before any training with a message naming the file and no run directory written."""

import json
import sys

import numpy as np
import pytest
import torch
from user_task_files import CLASSES, clusters, write_csv, write_factory, write_images, write_npz

import gp_search
from gp_search.engine import rundir as store
from gp_search.proxies import models
from gp_search.proxies.data import user_files as user_data
from gp_search.proxies.user_task import Task
from gp_search.engine.config import SearchConfig
from gp_search.engine.runner import resume, run_search


class Net(torch.nn.Module):
    """A user's model, at a module's top level so that it can be imported by name."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[0], 12),
                                        torch.nn.BatchNorm1d(12), torch.nn.ReLU(),
                                        torch.nn.Linear(12, num_classes))

    def forward(self, x):
        return self.body(x)


def tiny(tmp_path, tasks, **kw) -> SearchConfig:
    base = dict(population=4, generations=1, proxies=(), tasks=tasks, steps=20, seeds=1,
                out=str(tmp_path / "runs"), backend="sequential", init_max_depth=3,
                max_height=6, max_size=20, seed=5, elitism=1, hall_of_fame=3)
    return SearchConfig(**{**base, **kw})


def test_csv_string_labels_mapped_and_standardised_on_the_training_part(tmp_path):
    ds, info = user_data.read(write_csv(tmp_path / "a.csv"), "species")
    assert info["classes"] == list(CLASSES) and info["label_column"] == "species"
    assert info["feature_columns"] == ["f0", "f1", "f2", "f3", "f4"]
    assert "split_seed 0" in info["test_part"] and (ds.n_train, ds.n_test) == (72, 18)
    assert torch.allclose(ds.x_train.mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(ds.x_train.std(0, unbiased=False), torch.ones(5), atol=1e-4)
    assert not torch.allclose(ds.x_test.mean(0), torch.zeros(5), atol=1e-3)  # test stats unused
    assert sorted(torch.bincount(ds.y_test).tolist()) == [6, 6, 6]  # stratified


def test_tsv_reads_like_csv(tmp_path):
    a, _ = user_data.read(write_csv(tmp_path / "a.csv"), "species")
    rows = [line.split(",") for line in (tmp_path / "a.csv").read_text().splitlines()]
    b, _ = user_data.read(write_csv(tmp_path / "a.tsv", rows, "\t"), "species")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)


def test_npz_test_part_is_kept_and_images_read_at_a_fixed_size(tmp_path):
    x, y = clusters()
    ds, info = user_data.read(write_npz(tmp_path / "a.npz", x_train=x[:60], y_train=y[:60],
                                        x_test=x[60:], y_test=y[60:]))
    assert (ds.n_train, ds.n_test) == (60, 30) and info["test_part"].startswith("x_test")
    ds, info = user_data.read(write_images(tmp_path / "img", size=10), image_size=6)
    assert ds.input_shape == (3, 6, 6) == ds.image_shape and info["classes"] == list(CLASSES)
    assert torch.allclose(ds.x_train.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    write_images(tmp_path / "split" / "train", per_class=8)
    write_images(tmp_path / "split" / "test", per_class=3, seed=1)
    ds, info = user_data.read(tmp_path / "split", image_size=6)
    assert (ds.n_train, ds.n_test) == (24, 9) and info["test_part"].startswith("x_test")


def test_the_file_hash_is_in_the_cache_key_and_a_changed_file_is_refused_in_workers(tmp_path):
    path = write_npz(tmp_path / "a.npz")
    before, _ = Task(file=str(path), batch_size=16).proxy()
    x, y = clusters(seed=9)
    write_npz(path, x_train=x, y_train=y)
    after, _ = Task(file=str(path), batch_size=16).proxy()
    assert before.spec.key() != after.spec.key()
    result = before.evaluate("ce", seed=0)  # the old spec meets the new file
    assert result.status == "error" and "changed since the task was made" in result.message


def test_user_model_trains_its_seed_decides_its_weights_and_the_global_rng_is_untouched():
    x, y = clusters()
    proxy, record = Task(x_train=x, y_train=y, model=Net, steps=60, lr=0.01,
                          batch_size=16).proxy()
    assert record["model"] == f"py:{__name__}:Net" and proxy.spec.model == record["model"]
    state = torch.random.get_rng_state()
    a, b, c = (models.build(proxy.spec.model, (5,), 3, s) for s in (1, 1, 2))
    assert torch.equal(torch.random.get_rng_state(), state)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    results = proxy.evaluate_many(["ce", "ngl", "ce"], seed=3)  # batched where it applies: not here
    assert [r.status for r in results] == ["ok"] * 3 and results[0].accuracy > 0.6
    assert results[0].same_outcome(results[2])


def test_search_from_tensors_returns_the_run_with_the_arrays_written_once(tmp_path):
    x, y = clusters()
    task = Task(x_train=torch.from_numpy(x), y_train=torch.from_numpy(y), model=Net,
                name="blobs", batch_size=16)
    run = gp_search.search(dict(population=4, generations=1, steps=20, out=str(tmp_path)),
                           tasks=[task], seed=2)
    assert run.best is not None and np.isfinite(run.best["fitness"])
    assert run.config.tasks[0]["file"] == str(run.path / "tasks" / "blobs.npz")
    record = json.loads((run.path / "tasks.json").read_text())[0]
    assert record["name"] == "blobs" and record["model"].endswith(":Net")
    assert (run.path / "best.py").is_file()


def test_resume_refuses_a_changed_data_file_and_leaves_the_run_as_it_was(tmp_path):
    path = write_csv(tmp_path / "a.csv")
    run_dir = run_search(tiny(tmp_path, [{"file": str(path), "label_column": "species",
                                          "batch_size": 16}]), quiet=True)
    record = json.loads((run_dir / "tasks.json").read_text())[0]
    assert record["size"] == path.stat().st_size and len(record["sha256"]) == 64
    assert resume(run_dir, quiet=True) == run_dir  # the same file: resumed (here: finished)
    with open(path, "a") as f:
        f.write("0,0,cat,0,0,0\n")
    files = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(store.RunFileError, match="changed since this run started") as err:
        resume(run_dir, quiet=True)
    assert str(path) in str(err.value) and "put the old file back" in str(err.value)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == files


def _bad(tmp_path, case):
    """(task table, part of the message) for one bad input; the files are written here."""
    x, y = clusters()
    npz = tmp_path / "bad.npz"
    if case == "nan feature":
        x[7, 2] = np.nan
        return {"file": str(write_npz(npz, x_train=x, y_train=y))}, "x_train[7, 2] is nan"
    if case == "infinite feature":
        rows = [["a", "b", "y"]] + [[str(i), "1", "p" if i % 2 else "q"] for i in range(30)]
        rows[4][1] = "inf"
        return ({"file": str(write_csv(tmp_path / "bad.csv", rows)), "label_column": "y"},
                "line 5, column 'b' is 'inf'")
    if case == "negative label":
        y[3] = -1
        return {"file": str(write_npz(npz, x_train=x, y_train=y))}, "labels out of range"
    if case == "label with no class below it":
        y[y == 1] = 3
        return {"file": str(write_npz(npz, x_train=x, y_train=y))}, "class 1 has no training"
    if case == "one class":
        return {"file": str(write_npz(npz, x_train=x, y_train=0 * y))}, "one class only"
    if case == "test label not in training":
        return ({"file": str(write_npz(npz, x_train=x, y_train=y, x_test=x[:5],
                                       y_test=np.full(5, 7)))}, "every test label must occur")
    if case == "feature counts differ":
        return ({"file": str(write_npz(npz, x_train=x, y_train=y, x_test=x[:5, :3],
                                       y_test=y[:5]))}, "same features")
    if case == "lengths differ":
        return ({"file": str(write_npz(npz, x_train=x, y_train=y[:-1]))},
                "x_train has 90 samples but y_train 89 labels")
    if case == "class too small":
        keep = np.concatenate([np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:4]])
        return ({"file": str(write_npz(npz, x_train=x[keep], y_train=y[keep]))},
                "class 2 has 3 training sample(s)")
    if case == "non-numeric column":
        rows = [["size", "colour", "y"]] + [["1.5", "red", "p" if i % 2 else "q"]
                                            for i in range(30)]
        return ({"file": str(write_csv(tmp_path / "bad.csv", rows)), "label_column": "y"},
                "line 2, column 'colour' is 'red', not a number")
    if case == "missing label column":
        return ({"file": str(write_csv(tmp_path / "a.csv")), "label_column": "kind"},
                "no column 'kind'")
    if case == "truncated npz":
        data = write_npz(npz).read_bytes()
        npz.write_bytes(data[:len(data) // 2])
        return {"file": str(npz)}, "unreadable or truncated .npz"
    if case == "pickled npz":
        np.savez(npz, x_train=np.array([object()] * 4), y_train=np.arange(4))
        return {"file": str(npz)}, "without unpickling"
    if case == "truncated image":
        root = write_images(tmp_path / "img")
        png = root / CLASSES[1] / "3.png"
        png.write_bytes(png.read_bytes()[:60])
        return {"file": str(root)}, f"{png}: not a readable image"
    if case == "unresolved import path":
        return {"factory": "no_such_module_xyz:make"}, "cannot import 'no_such_module_xyz'"
    if case == "missing attribute":
        write_factory(tmp_path)
        return {"factory": "my_tasks:nope"}, "has no attribute 'nope'"
    if case == "factory returns a list":
        write_factory(tmp_path)
        return {"factory": "my_tasks:not_a_task"}, "returned list; it must return a dict"
    if case == "factory model not callable":
        write_factory(tmp_path)
        return {"factory": "my_tasks:no_model"}, "'model' is a str"
    if case == "model cannot take the data":
        return {"file": str(write_npz(npz)), "model": "cnn2d"}, "cannot take samples of shape"
    if case == "batch larger than the data":
        return {"file": str(write_npz(npz)), "batch_size": 500}, "pass --batch-size"
    raise AssertionError(case)


BAD_CASES = ["nan feature", "infinite feature", "negative label", "label with no class below it",
             "one class", "test label not in training", "feature counts differ", "lengths differ",
             "class too small", "non-numeric column", "missing label column", "truncated npz",
             "pickled npz", "truncated image", "unresolved import path", "missing attribute",
             "factory returns a list", "factory model not callable", "model cannot take the data",
             "batch larger than the data"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_refused_before_training_and_nothing_is_written(tmp_path, monkeypatch,
                                                                     case):
    monkeypatch.syspath_prepend(str(tmp_path))  # where the factory module is written
    table, expected = _bad(tmp_path, case)
    with pytest.raises(ValueError) as err:
        run_search(tiny(tmp_path, [table]), quiet=True)
    message = str(err.value)
    assert expected in message
    named = table.get("file") or table.get("factory")
    assert named.split(":")[0] in message
    assert not (tmp_path / "runs").exists()
    sys.modules.pop("my_tasks", None)


def test_a_lambda_model_is_refused_with_the_way_out():
    x, y = clusters()
    with pytest.raises(ValueError, match="define it at the top level of a module"):
        Task(x_train=x, y_train=y, model=lambda shape, k: torch.nn.Linear(shape[0], k))
    with pytest.raises(ValueError, match="exactly one source of data"):
        Task(file="a.npz", x_train=x, y_train=y)
