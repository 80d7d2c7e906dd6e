"""gp_search.parallel.evaluate: loss-major results, worker-count invariance with real loky processes."""

import os

import pytest
import torch

from gp_search import proxies
from gp_search import evaluate
from gp_search.parallel.evaluate import BACKENDS
from gp_search.lang.losses import Loss, cross_entropy, resolve

LOSSES = ["ce", "ngl", "y_pred*(1 - y_real)", "y_real", "exp(exp(exp(exp(y_pred*30))))",
          "bad((("]
STATUSES = ["ok", "ok", "ok", "rejected", "nan", "error"]


def test_loss_major_order_and_statuses():
    rs = evaluate(LOSSES, proxy="synthetic-mlp", seeds=[5, 9], steps=20)
    assert len(rs) == len(LOSSES) * 2
    assert [r.seed for r in rs] == [5, 9] * len(LOSSES)
    assert [r.status for r in rs[::2]] == STATUSES
    assert [r.loss for r in rs[::2]][:2] == ["ce", "ngl"]
    assert all(r.steps == 20 or not r.ok for r in rs)


def test_jobs_1_and_jobs_2_give_identical_results():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # the parent's own setting must not leak into the trainings
    try:
        one = evaluate(LOSSES, proxy="synthetic-mlp", seeds=3, jobs=1, steps=40, batched=False)
        assert torch.get_num_threads() == 2  # restored afterwards
    finally:
        torch.set_num_threads(previous)
    two = evaluate(LOSSES, proxy="synthetic-mlp", seeds=3, jobs=2, steps=40, batched=False)
    assert len(one) == len(two) == 18
    assert all(a.same_outcome(b) for a, b in zip(one, two))
    assert [r.status for r in one[::3]] == STATUSES


def test_jobs_invariance_holds_for_batched_populations_too():
    losses = ["ce", "ngl", "mse", "focal", "poly1"]
    one = evaluate(losses, proxy="synthetic-mlp", seeds=2, jobs=1, steps=30, batched=True)
    two = evaluate(losses, proxy="synthetic-mlp", seeds=2, jobs=2, steps=30, batched=True)
    assert all(a.same_outcome(b) for a, b in zip(one, two))
    assert [r.status for r in one] == ["ok"] * 10


def test_loky_workers_are_kept_alive_across_calls():
    run = BACKENDS["loky"].run
    first = set(run(os.getpid, [()] * 8, 2, None))
    second = set(run(os.getpid, [()] * 8, 2, None))
    assert os.getpid() not in first | second  # real worker processes
    assert len(first | second) <= 2  # the same two workers served both calls


def test_sequential_backend_equals_loky():
    a = evaluate(["ngl", "ce"], proxy="synthetic-mlp", seeds=2, steps=25, backend="sequential")
    b = evaluate(["ngl", "ce"], proxy="synthetic-mlp", seeds=2, steps=25, jobs=2)
    assert all(x.same_outcome(y) for x, y in zip(a, b))


def test_progress_reports_every_result():
    seen = []
    evaluate(["ce", "ngl"], proxy="synthetic-mlp", seeds=2, steps=5,
             progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 4) and seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_inputs_in_every_form_and_overrides():
    rs = evaluate("ce", proxy="synthetic-mlp", seeds=1, steps=5)  # one loss alone
    assert len(rs) == 1 and rs[0].ok and rs[0].budget == 5
    objs = [resolve("ngl"), resolve("y_pred*(1 - y_real)").expr]
    assert [r.status for r in evaluate(objs, proxy="synthetic-mlp", steps=5)] == ["ok", "ok"]
    p = proxies.get("synthetic-mlp", steps=7)
    assert evaluate(["ce"], proxy=p)[0].steps == 7
    r = evaluate(["ce"], proxy="synthetic-mlp", proxy_overrides={"steps": 9})[0]
    assert r.steps == 9
    assert evaluate([], proxy="synthetic-mlp") == []


@pytest.mark.parametrize("kw,match", [
    ({"seeds": 0}, "seeds"), ({"seeds": []}, "seeds"), ({"seeds": [1.5]}, "seeds"),
    ({"jobs": 0}, "jobs"), ({"backend": "spark"}, "unknown backend"),
    ({"proxy": "nope"}, "unknown proxy"), ({"device": "gpu"}, "unknown device"),
    ({"batched": "maybe"}, "batched"), ({"scheduler": "tcp://x:1"}, "scheduler"),
    ({"proxy_overrides": {"stepz": 3}}, "stepz"), ({"steps": 0}, "steps"),
])
def test_bad_arguments_raise_clear_errors(kw, match):
    args = {"proxy": "synthetic-mlp", "steps": 3, **kw}
    with pytest.raises(ValueError, match=match):
        evaluate(["ce"], **args)


def test_a_loss_that_cannot_cross_processes_is_refused():
    custom = Loss("custom", cross_entropy, "CE by hand")  # no spec text
    with pytest.raises(ValueError, match="no spec text"):
        evaluate([custom], proxy="synthetic-mlp", steps=3)


def test_missing_data_files_fail_once_up_front(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        evaluate(["ce", "ngl"], proxy="fashion-mnist-cnn", seeds=3,
                 proxy_overrides={"data_root": str(tmp_path)})


def test_backends_are_one_registry_of_records_that_the_cli_offers():
    from gp_search.cli.main import build_parser
    from gp_search.parallel import dask_batch
    from gp_search.parallel.evaluate import Backend

    assert sorted(BACKENDS) == ["dask", "loky", "sequential"]
    assert all(isinstance(b, Backend) and b.name == k and b.help for k, b in BACKENDS.items())
    assert [k for k, b in BACKENDS.items() if b.hard_limit] == ["dask"]
    assert BACKENDS["dask"].run is dask_batch.run
    for name in BACKENDS:
        assert build_parser().parse_args(["evaluate", "--loss", "ce", "--backend", name]) \
            .backend == name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--loss", "ce", "--backend", "spark"])


def test_a_hard_limit_backend_gets_the_timeout_and_the_failure_callback(monkeypatch):
    from gp_search.parallel import dask_batch
    from gp_search.parallel.evaluate import Backend, _sequential

    seen = []

    def in_process(fn, tasks, jobs, scheduler=None, **extra):
        seen.append(extra)
        outputs = list(_sequential(fn, tasks, jobs, scheduler))
        outputs[-1] = extra["on_failure"](tasks[-1], "timeout", "stuck")  # as dask does
        return iter(outputs)

    monkeypatch.setitem(BACKENDS, "in-process", Backend("in-process", in_process, True, "test"))
    rs = evaluate(["ce", "ngl"], proxy="synthetic-mlp", seeds=[0], steps=5, batched=False,
                  backend="in-process", proxy_overrides={"time_limit": 100.0})
    assert len(seen) == 1 and seen[0]["timeout"] == dask_batch.hard_limit(100.0)
    assert [r.status for r in rs] == ["ok", "timeout"] and rs[1].message == "stuck"
    assert (rs[1].loss, rs[1].proxy, rs[1].seed, rs[1].budget) == ("ngl", "synthetic-mlp", 0, 5)
