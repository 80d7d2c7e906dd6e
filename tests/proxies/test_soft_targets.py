"""How people train: long-tailed training splits, mixup's soft targets, probability targets."""

import dataclasses

import numpy as np
import pytest
import torch

import gp_search
from gp_search import proxies
from gp_search.lang.losses import REFERENCE, resolve
from gp_search.proxies.population import choose as batched
from gp_search.proxies.data import dataset as data
from gp_search.proxies.data import transforms as tasks
from gp_search.proxies.spec import ProxySpec
from gp_search.proxies.train import dataset_for

DIGITS = data.load("digits")
PAPER_BEST = "(y_real - sin(y_pred) - cos(y_pred) + 1.33446)*cos(2.07459*sin(y_pred) + 2.07459)"


# --- long-tailed training splits -------------------------------------------------------------

def test_long_tail_keeps_geometric_class_counts_in_training_and_a_balanced_test_split():
    ds = tasks.transform(DIGITS, long_tail=20.0, data_seed=0)
    counts = np.bincount(ds.y_train.numpy(), minlength=10)
    smallest = np.bincount(DIGITS.y_train.numpy()).min()
    want = np.round(smallest * 20.0 ** (-np.arange(10) / 9))
    assert counts.tolist() == want.astype(int).tolist()
    assert counts[0] / counts[-1] == pytest.approx(20, rel=0.05)
    assert all(counts[:-1] > counts[1:])  # falling with the class id
    assert torch.equal(ds.y_test, DIGITS.y_test)  # the test split is untouched (balanced)
    test = np.bincount(ds.y_test.numpy())
    assert test.max() - test.min() <= 2
    # The kept samples are the dataset's own, deterministic per data seed.
    again = tasks.transform(DIGITS, long_tail=20.0, data_seed=0)
    other = tasks.transform(DIGITS, long_tail=20.0, data_seed=1)
    assert torch.equal(again.x_train, ds.x_train)
    assert not torch.equal(other.x_train, ds.x_train)
    assert ds.name.endswith("|lt20|seed0")


def test_the_registered_long_tailed_tasks_score_balanced_accuracy():
    for name in ("t-digits-lt-mlp", "t-tabular20-lt-mlp"):
        spec = proxies.get(name).spec
        assert spec.long_tail == 20.0 and spec.metric == "balanced_accuracy"
        counts = np.bincount(dataset_for(spec).y_train.numpy())
        assert counts[0] / counts[-1] == pytest.approx(20, rel=0.1)


@pytest.mark.parametrize("bad", [0.5, -1, 1e6, True, "20"])
def test_bad_long_tail_is_refused(bad):
    with pytest.raises(ValueError, match="'long_tail' must be"):
        tasks.check_transform(long_tail=bad)


def test_new_fields_enter_the_cache_key_only_when_set():
    spec = proxies.get("digits-mlp").spec
    assert ProxySpec(**{**spec.__dict__, "long_tail": 0.0, "mixup": 0.0}).key() == spec.key()
    keys = {ProxySpec(**{**spec.__dict__, **kw}).key()
            for kw in ({}, {"long_tail": 20.0}, {"mixup": 0.4})}
    assert len(keys) == 3


# --- mixup ---------------------------------------------------------------------------------------

def test_mixup_targets_are_convex_combinations_and_deterministic_per_seed():
    lam, partner = tasks.mixup_plan(16, 5, 0.4, seed=3)
    assert lam.shape == (5,) and partner.shape == (5, 16)
    assert bool(((lam >= 0) & (lam <= 1)).all()) and len(set(lam.tolist())) == 5
    for row in partner:
        assert sorted(row.tolist()) == list(range(16))  # a permutation of the batch
    x, y = DIGITS.x_train[:16], DIGITS.y_train[:16]
    xm, t = tasks.mix(x, y, 10, lam[0], partner[0])
    onehot = torch.nn.functional.one_hot(y, 10).float()
    assert torch.allclose(t, lam[0] * onehot + (1 - lam[0]) * onehot[partner[0]])
    assert torch.allclose(t.sum(1), torch.ones(16)) and bool((t >= 0).all())
    assert torch.allclose(xm, lam[0] * x + (1 - lam[0]) * x[partner[0]])
    same = tasks.mixup_plan(16, 5, 0.4, seed=3)
    other = tasks.mixup_plan(16, 5, 0.4, seed=4)
    assert torch.equal(same[0], lam) and torch.equal(same[1], partner)
    assert not torch.equal(other[0], lam)


def test_a_mixup_task_trains_every_loss_sequentially_and_says_so():
    proxy = proxies.get("t-digits-mixup-mlp", steps=20)
    assert not batched.pays_off(proxy.spec, 8, "cpu")
    got = proxy.evaluate_many(["ce", "ngl", PAPER_BEST], seed=0, batched=True)
    assert [r.status for r in got] == ["ok"] * 3
    assert all(r.message == batched.MIXUP_ALONE for r in got)
    alone = proxy.evaluate(PAPER_BEST, seed=0)  # the same training as train_one's
    assert alone.same_outcome(dataclasses.replace(got[2], message=""))
    # Mixup changes the training: the same seed without it scores otherwise.
    plain = proxies.get("t-digits-mixup-mlp", steps=20, mixup=0.0).evaluate("ce", seed=0)
    assert plain.train_loss != got[0].train_loss


@pytest.mark.parametrize("bad", [-0.1, 101, True])
def test_bad_mixup_is_refused(bad):
    with pytest.raises(ValueError, match="'mixup' must be"):
        proxies.get("digits-mlp", mixup=bad)


# --- probability targets -----------------------------------------------------------------------

def _targets():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(12, 5, generator=g, dtype=torch.float64)
    ids = torch.randint(0, 5, (12,), generator=g)
    soft = torch.distributions.Dirichlet(torch.ones(5)).sample((12,)).double()
    return logits, ids, soft


@pytest.mark.parametrize("name", sorted(REFERENCE) + ["paper-best", "expression"])
def test_every_loss_takes_probability_targets_and_agrees_on_one_hot(name):
    loss = {"paper-best": resolve(PAPER_BEST),
            "expression": resolve("exp(-y_pred*y_real) + y_pred**2")}.get(name) or REFERENCE[name]
    logits, ids, soft = _targets()
    onehot = torch.nn.functional.one_hot(ids, 5).double()
    assert float(loss.fn(logits, onehot)) == pytest.approx(float(loss.fn(logits, ids)), rel=1e-12)
    z = logits.clone().requires_grad_(True)
    value = loss.fn(z, soft)
    value.backward()
    assert torch.isfinite(value) and bool(torch.isfinite(z.grad).all())
    # The soft target counts: another value than on the class ids.
    assert float(value.detach()) != pytest.approx(float(loss.fn(logits, ids)))


def test_ce_on_probability_targets_is_torchs():
    logits, _, soft = _targets()
    want = torch.nn.functional.cross_entropy(logits, soft)
    assert float(REFERENCE["ce"].fn(logits, soft)) == pytest.approx(float(want), rel=1e-12)
    assert gp_search.parse(PAPER_BEST).to_torch()(logits, soft).shape == ()
