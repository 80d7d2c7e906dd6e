"""The proxy registry: names, exact budgets, overrides, Proxy.evaluate / evaluate_many, files."""

import math
import struct

import numpy as np
import pytest
import torch

from gp_search import proxies
from gp_search.lang.expr import parse
from gp_search.lang.losses import REFERENCE
from gp_search.analysis.stats import paired
from gp_search.proxies import models
from gp_search.proxies.spec import ProxySpec

REQUIRED = ("digits-mlp", "mnist1d-cnn", "digits-cnn", "synthetic-mlp", "fashion-mnist-cnn",
            "cifar10-resnet")


def test_registry_names_and_descriptions():
    assert set(REQUIRED) <= set(proxies.names()) and list(proxies.SPECS) == proxies.names()
    for name, spec in proxies.SPECS.items():
        assert spec.name == name
        # Each description states the exact budget.
        assert f"{spec.steps} steps" in spec.description, name
        assert f"batch {spec.batch_size}" in spec.description, name
        lr_forms = (f"lr {spec.lr:g}", f"lr {spec.lr:.0e}".replace("e-0", "e-"))
        assert any(form in spec.description for form in lr_forms), name


def test_digits_mlp_is_exactly_the_benchmark_proxy():
    spec = proxies.get("digits-mlp").spec
    assert (spec.dataset, spec.model, spec.steps, spec.batch_size, spec.lr) == \
        ("digits", "mlp", 300, 64, 1e-3)
    net = models.build(spec.model, (64,), 10, 0, **dict(spec.model_kw))
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 128), (128, 10)]
    assert any(isinstance(m, torch.nn.ReLU) for m in net.modules())


def test_get_unknown_name_or_field_lists_the_valid_ones():
    with pytest.raises(ValueError, match="known proxies: digits-mlp"):
        proxies.get("digits-mpl")
    with pytest.raises(ValueError, match="fields that can be overridden:.*steps"):
        proxies.get("digits-mlp", stepz=5)
    with pytest.raises(ValueError, match="name"):
        proxies.get("digits-mlp", name="other")


@pytest.mark.parametrize("field,value", [("steps", 0), ("steps", 2.5), ("lr", -1.0),
                                         ("batch_size", True), ("time_limit", 0)])
def test_get_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        proxies.get("synthetic-mlp", **{field: value})


def test_overrides_change_the_spec_and_its_cache_key():
    base = proxies.get("digits-mlp")
    short = proxies.get("digits-mlp", steps=50)
    assert short.spec.steps == 50 and short.spec.key() != base.spec.key()
    moved = proxies.get("digits-mlp", data_root="/elsewhere", time_limit=5)
    assert moved.spec.key() == base.spec.key()  # where data lives and time limits change nothing
    wider = proxies.get("digits-mlp", model_kw={"hidden": [256]})
    assert wider.spec.model_kw == (("hidden", (256,)),)
    hash(wider.spec)
    assert base.spec.key() == "digits-mlp@954ed75630a7"  # test-split keys never change
    assert proxies.get("digits-mlp", split="val").spec.key() != base.spec.key()
    with pytest.raises(ValueError, match="'split' must be 'test' or 'val'"):
        proxies.get("digits-mlp", split="train")


def test_the_validation_split_trains_on_less_and_scores_elsewhere():
    test = proxies.get("synthetic-mlp", steps=30)
    val = proxies.get("synthetic-mlp", steps=30, split="val")
    a, b = test.evaluate("ngl", seed=0), val.evaluate("ngl", seed=0)
    assert a.status == b.status == "ok" and a.accuracy != b.accuracy
    assert round(b.accuracy * 200) == pytest.approx(b.accuracy * 200)  # 200 held-out samples
    rebuilt = proxies.from_dict(val.to_dict())
    assert rebuilt.spec.split == "val" and rebuilt.evaluate("ngl", seed=0).same_outcome(b)


def test_to_dict_rebuilds_the_same_proxy():
    p = proxies.get("synthetic-mlp", steps=20, data_root="/d")
    q = proxies.from_dict(p.to_dict())
    assert q.spec == p.spec and q.spec.data_root == "/d"
    custom = proxies.Proxy(ProxySpec("tiny", "synthetic", "mlp", (("hidden", (8,)),), steps=5))
    again = proxies.from_dict(custom.to_dict())
    assert again.spec == custom.spec
    assert again.evaluate("ce", seed=0).same_outcome(custom.evaluate("ce", seed=0))


def test_evaluate_accepts_names_expressions_and_loss_objects():
    p = proxies.get("synthetic-mlp", steps=20)
    by_name = p.evaluate("ngl", seed=1)
    by_expr = p.evaluate(REFERENCE["ngl"].expr, seed=1)
    by_text = p.evaluate("exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))", seed=1)
    by_loss = p.evaluate(REFERENCE["ngl"], seed=1)
    assert by_name.status == "ok" and by_name.same_outcome(by_loss)
    # The same tree trained under its canonical name: equal in everything but the name.
    assert by_expr.accuracy == by_text.accuracy == by_name.accuracy
    ngl_text = "exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))"
    assert by_text.loss == parse(ngl_text).canonical


def test_unreadable_text_is_an_error_status_not_an_exception():
    res = proxies.get("synthetic-mlp").evaluate("exp(y_pred", seed=3)
    assert res.status == "error" and "exp(y_pred" in res.message and res.seed == 3
    res = proxies.get("synthetic-mlp").evaluate("__import__('os')", seed=0)
    assert res.status == "error"


def test_evaluate_many_keeps_order_and_isolates_failures():
    p = proxies.get("synthetic-mlp", steps=20)
    losses = ["ce", "nope((", "y_real", "ngl"]
    many = p.evaluate_many(losses, seed=2, batched=False)
    assert [r.status for r in many] == ["ok", "error", "rejected", "ok"]
    assert many[0].same_outcome(p.evaluate("ce", seed=2))
    assert many[3].same_outcome(p.evaluate("ngl", seed=2))
    with pytest.raises(ValueError, match="batched"):
        p.evaluate_many(losses, seed=2, batched="sometimes")


def test_evaluate_many_batched_agrees_with_sequential():
    p = proxies.get("synthetic-mlp", steps=30)
    losses = ["ce", "ngl", "mse", "focal"]
    seq = p.evaluate_many(losses, seed=0, batched=False)
    bat = p.evaluate_many(losses, seed=0, batched=True)
    assert [r.status for r in bat] == ["ok"] * 4
    for a, b in zip(seq, bat):
        assert a.loss == b.loss and abs(a.accuracy - b.accuracy) <= 0.01
        assert math.isclose(a.train_loss, b.train_loss, rel_tol=1e-3)


# ---------------------------------------------------------------- file-backed proxies

def _write_idx(path, array):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def test_file_backed_proxy_without_files(tmp_path):
    p = proxies.get("fashion-mnist-cnn", data_root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        p.check_data()
    res = p.evaluate("ce", seed=0)
    assert res.status == "error" and str(tmp_path) in res.message


def test_file_backed_proxy_trains_on_files_in_the_real_format(tmp_path):
    rng = np.random.RandomState(0)
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for prefix, n in (("train", 24), ("t10k", 12)):
        labels = np.arange(n) % 10
        # Class k is a bright band in row block k: learnable in a few steps.
        images = rng.randint(0, 40, (n, 28, 28))
        for i, k in enumerate(labels):
            images[i, 2 * k:2 * k + 3] = 255
        _write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    p = proxies.get("fashion-mnist-cnn", data_root=str(tmp_path), batch_size=8, steps=3)
    p.check_data()
    res = p.evaluate("ngl", seed=0)
    assert res.status == "ok" and res.steps == 3 and 0 <= res.accuracy <= 1


# ---------------------------------------------------------------- the proxies' claims

@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits-mlp", "digits-cnn", "mnist1d-cnn"])
def test_ngl_beats_ce_on_the_embedded_proxies(name):
    """The published comparison, reproduced with 5 paired seeds on each embedded proxy."""
    p = proxies.get(name)
    ce = [p.evaluate("ce", seed=s).accuracy for s in range(5)]
    ngl = [p.evaluate("ngl", seed=s).accuracy for s in range(5)]
    cmp = paired(ngl, ce)
    assert cmp["n"] == 5 and cmp["diff"] > 0 and cmp["p_value"] < 0.05, cmp


def test_eval_results_name_their_metric_and_old_json_still_reads():
    from gp_search.proxies.spec import EvalResult

    old = {"status": "ok", "accuracy": 0.9, "train_loss": 0.1, "steps": 3, "seconds": 1.0,
           "message": "", "loss": "ce", "proxy": "digits-mlp", "seed": 0, "budget": 3}
    r = EvalResult.from_dict(old)  # written before the metric was recorded
    assert r.metric == "accuracy" and r.accuracy == 0.9
    new = EvalResult.from_dict({**old, "metric": "macro_f1"})
    assert new.metric == "macro_f1" and EvalResult.from_dict(new.to_dict()) == new
    with pytest.raises(ValueError, match="metric"):
        EvalResult("ok", 0.5, metric="top5")
    got = proxies.get("synthetic-mlp", steps=2, metric="balanced_accuracy").evaluate("ce", seed=0)
    assert got.metric == "balanced_accuracy"


def test_budgets_name_the_optimiser_each_proxy_uses(cli):
    sgd = [n for n in proxies.names() if proxies.get(n).spec.optimizer == "sgd"]
    assert sgd  # the search and transfer suites hold SGD tasks
    for name in proxies.names():
        p = proxies.get(name)
        assert ("SGD" in p.budget) == (p.spec.optimizer == "sgd"), (name, p.budget)
        assert ("Adam" in p.budget) == (p.spec.optimizer == "adam"), (name, p.budget)
    listing = "\n" + cli("proxies").stdout
    for name in sgd:
        block = listing.split(f"\n{name}\n", 1)[1].split("\n  about:", 1)[0]
        assert "SGD (momentum 0.9) lr" in block and "Adam" not in block
    assert "metric: mIoU" in listing.split("\nseg-digits-unet\n", 1)[1].split("about:")[0]
