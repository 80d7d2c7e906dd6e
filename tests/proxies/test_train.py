"""The sequential training loop: batch order, common random numbers, statuses, determinism."""

import math

import pytest
import torch

from gp_search import proxies
from gp_search.lang.losses import REFERENCE, Loss, cross_entropy, resolve
from gp_search.proxies import models
from gp_search.proxies.train import (
    PARAM_LIMIT,
    batch_indices,
    dataset_for,
    one_thread,
    resolve_device,
    train_one,
)

SYN = proxies.get("synthetic-mlp").spec


@pytest.fixture(autouse=True)
def single_thread():
    """One torch thread, as every evaluation runs (Proxy.evaluate, gp_search.parallel.evaluate)."""
    with one_thread():
        yield


# ---------------------------------------------------------------- batch order

def test_batch_indices_epochs_are_permutations_and_tail_is_dropped():
    b = batch_indices(10, 4, 7, seed=3)
    assert b.shape == (7, 4) and b.dtype == torch.int64
    # 10 // 4 = 2 full batches per epoch: each pair of rows is 8 distinct samples of one epoch.
    for epoch in range(3):
        rows = b[2 * epoch: 2 * epoch + 2].flatten()
        assert len(set(rows.tolist())) == 8 and rows.min() >= 0 and rows.max() < 10
    # Epochs are drawn afresh, not one permutation repeated.
    assert not torch.equal(b[0:2], b[2:4])


def test_batch_indices_depend_on_the_seed_alone():
    torch.manual_seed(0)
    a = batch_indices(1437, 64, 50, seed=5)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, batch_indices(1437, 64, 50, seed=5))
    assert not torch.equal(a, batch_indices(1437, 64, 50, seed=6))
    assert torch.equal(a[:20], batch_indices(1437, 64, 20, seed=5))  # a shorter budget is a prefix


@pytest.mark.parametrize("bs", [0, 11])
def test_batch_indices_refuse_impossible_batch_sizes(bs):
    with pytest.raises(ValueError, match="batch_size"):
        batch_indices(10, bs, 3, seed=0)


# ---------------------------------------------------------------- common random numbers

class Recorder:
    """A real loss (CE or NGL) that also keeps what it was called with at every step."""

    def __init__(self, base: Loss):
        self.base, self.logits, self.targets = base, [], []

    def __call__(self, logits, target):
        self.logits.append(logits.detach().clone())
        self.targets.append(target.clone())
        return self.base.fn(logits, target)


def recorded(base_name, seed, steps=5):
    rec = Recorder(REFERENCE[base_name])
    res = train_one(SYN, Loss(f"rec-{base_name}", rec, "recorded"), seed, steps=steps)
    assert res.status == "ok", res
    return rec


def test_common_random_numbers_same_seed_same_start_and_batches_across_losses():
    ce, ngl = recorded("ce", seed=4), recorded("ngl", seed=4)
    # Same initial weights and first batch: identical logits at step 1, though the losses differ.
    assert torch.equal(ce.logits[0], ngl.logits[0])
    # Same batch order throughout; the trainings themselves part after the first step.
    assert all(torch.equal(a, b) for a, b in zip(ce.targets, ngl.targets))
    assert not torch.equal(ce.logits[-1], ngl.logits[-1])
    ds = dataset_for(SYN)
    idx = batch_indices(ds.n_train, SYN.batch_size, 5, seed=4)
    assert all(torch.equal(t, ds.y_train[i]) for t, i in zip(ce.targets, idx))
    other = recorded("ce", seed=5)
    assert not torch.equal(other.logits[0], ce.logits[0])


def test_initial_weights_depend_on_the_seed_only():
    a = models.build("mlp", (32,), 10, 7, hidden=(64,))
    b = models.build("mlp", (32,), 10, 7, hidden=(64,))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_same_loss_and_seed_give_the_same_outcome():
    a = train_one(SYN, REFERENCE["ngl"], seed=2, steps=40)
    b = train_one(SYN, REFERENCE["ngl"], seed=2, steps=40)
    assert a.status == "ok" and a.same_outcome(b)
    assert not a.same_outcome(train_one(SYN, REFERENCE["ngl"], seed=3, steps=40))


# ---------------------------------------------------------------- results

def test_ce_beats_chance_on_synthetic_mlp():
    res = train_one(SYN, REFERENCE["ce"], seed=0)
    assert res.status == "ok" and res.message == ""
    assert res.accuracy > 0.5  # 10 classes: chance is 0.1; a linear model reaches about 0.8
    assert (res.steps, res.budget, res.loss, res.proxy, res.seed) == (100, 100, "ce",
                                                                      "synthetic-mlp", 0)
    assert 0 < res.train_loss < math.log(10)  # below the loss of a uniform guess
    assert res.seconds > 0


def test_steps_override_and_train_loss_is_the_tail_mean():
    res = train_one(SYN, REFERENCE["ce"], seed=0, steps=7)
    assert (res.status, res.steps, res.budget) == ("ok", 7, 7)
    with pytest.raises(ValueError, match="steps"):
        train_one(SYN, REFERENCE["ce"], seed=0, steps=0)


def test_accuracy_does_not_depend_on_the_eval_chunk():
    small = proxies.get("synthetic-mlp", eval_batch=7).spec
    a = train_one(SYN, REFERENCE["ce"], seed=1, steps=30)
    b = train_one(small, REFERENCE["ce"], seed=1, steps=30)
    assert a.same_outcome(b)


def test_l2_penalty_reaches_the_training():
    heavy = Loss("ce_heavy_l2", cross_entropy, "CE + 0.5/2 ||w||^2", l2=0.5)
    plain = train_one(SYN, REFERENCE["ce"], seed=0, steps=30)
    penal = train_one(SYN, heavy, seed=0, steps=30)
    assert penal.status == "ok"
    assert penal.train_loss > plain.train_loss + 1.0  # the penalty is part of the loss trained
    # The shipped ce_l2 (λ = 5e-4) trains, and its penalty changes the numbers a little.
    ref = train_one(SYN, REFERENCE["ce_l2"], seed=0, steps=30)
    assert ref.status == "ok" and ref.train_loss != plain.train_loss


# ---------------------------------------------------------------- statuses

def test_loss_blind_to_y_pred_is_rejected_without_training():
    res = train_one(SYN, resolve("y_real * 2 + 1"), seed=0)
    assert res.status == "rejected" and res.steps == 0 and "y_pred" in res.message
    assert math.isnan(res.accuracy) and res.budget == SYN.steps


def test_non_finite_loss_is_nan_at_once():
    res = train_one(SYN, resolve("exp(exp(exp(exp(y_pred*30))))"), seed=0)
    assert res.status == "nan" and res.steps == 0 and "loss" in res.message
    assert math.isnan(res.accuracy)


def test_finite_loss_with_non_finite_gradient_is_nan():
    # exp(-inf) = 0 is a finite loss; its gradient is 0 * inf = nan.
    res = train_one(SYN, resolve("exp(0 - exp(exp(exp(y_pred*30))))"), seed=0)
    assert res.status == "nan" and res.steps == 0 and "gradient" in res.message


def test_exploding_parameters_are_diverged():
    wild = proxies.get("synthetic-mlp", lr=10 * PARAM_LIMIT).spec
    res = train_one(wild, REFERENCE["ce"], seed=0)
    assert res.status == "diverged" and res.steps == 1 and "parameter" in res.message


def test_time_limit_gives_timeout():
    hurried = proxies.get("synthetic-mlp", time_limit=1e-6).spec
    res = train_one(hurried, REFERENCE["ce"], seed=0)
    assert res.status == "timeout" and res.steps == 1 and res.budget == SYN.steps
    assert math.isfinite(res.train_loss) and math.isnan(res.accuracy)


def test_an_exception_inside_is_an_error_status(tmp_path):
    missing = proxies.get("fashion-mnist-cnn", data_root=str(tmp_path)).spec
    res = train_one(missing, REFERENCE["ce"], seed=0)
    assert res.status == "error" and "FileNotFoundError" in res.message
    assert "train-images-idx3-ubyte" in res.message

    def broken(logits, target):
        return cross_entropy(logits[:, :3], target)  # a loss that cannot take 10 classes
    res = train_one(SYN, Loss("broken", broken, "broken"), seed=0)
    assert res.status == "error" and res.message


# ---------------------------------------------------------------- devices

def test_one_thread_restores_the_setting():
    torch.set_num_threads(2)
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_device_names():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_training_matches_cpu_closely():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    assert dataset_for(SYN, "cuda").x_train.is_cuda
    gpu = train_one(SYN, REFERENCE["ngl"], seed=0, device="cuda")
    cpu = train_one(SYN, REFERENCE["ngl"], seed=0, device="cpu")
    assert gpu.status == "ok" and abs(gpu.accuracy - cpu.accuracy) <= 0.02
    assert abs(gpu.train_loss - cpu.train_loss) < 1e-2


# ---------------------------------------------------------------- SGD and the loss scale

FOUND = "0.326933*exp(y_pred*y_real + exp(y_pred) - sin(y_real))"


def test_scale_of_ce_is_one_and_scales_inversely():
    from gp_search import parse
    from gp_search.lang.losses import grad_scale, loss_scale

    assert grad_scale(cross_entropy) == pytest.approx(1.0, abs=1e-6)
    assert loss_scale(REFERENCE["ce"]) == 1.0 and loss_scale(REFERENCE["ngl"]) == 1.0
    f = parse(FOUND).to_torch()
    s = grad_scale(f)
    assert s > 1  # this found loss moves logits more gently than CE
    assert grad_scale(lambda z, t: 7 * f(z, t)) == pytest.approx(s / 7, rel=1e-9)
    assert loss_scale(resolve(FOUND)) == s


def test_no_usable_scale_is_an_error_naming_it():
    from gp_search.lang.losses import grad_scale

    with pytest.raises(ValueError, match="no usable scale"):
        grad_scale(lambda z, t: (z * 0).sum())


def test_optimizer_field_keeps_adam_keys_and_refuses_unknown_values():
    sgd = proxies.get("synthetic-mlp", optimizer="sgd", lr=0.1).spec
    assert proxies.get("synthetic-mlp").spec.key() == SYN.key()
    assert SYN.optimizer == "adam" and "optimizer" not in SYN.key()
    assert sgd.key() != proxies.get("synthetic-mlp", lr=0.1).spec.key()
    with pytest.raises(ValueError, match="'optimizer' must be 'adam' or 'sgd'; got 'rmsprop'"):
        proxies.get("synthetic-mlp", optimizer="rmsprop")


def test_sgd_training_runs_and_is_deterministic_per_seed():
    sgd = proxies.get("synthetic-mlp", optimizer="sgd", lr=0.1).spec
    a = train_one(sgd, REFERENCE["ce"], seed=1, steps=60)
    assert a.status == "ok" and a.accuracy > 0.5
    assert a.same_outcome(train_one(sgd, REFERENCE["ce"], seed=1, steps=60))
    assert not a.same_outcome(train_one(sgd, REFERENCE["ce"], seed=2, steps=60))
    adam = train_one(SYN, REFERENCE["ce"], seed=1, steps=60)
    assert adam.train_loss != a.train_loss  # another optimiser, another path


def test_sgd_trains_an_expression_times_its_scale_and_adam_does_not():
    from gp_search.lang.losses import loss_scale

    sgd = proxies.get("synthetic-mlp", optimizer="sgd", lr=0.1).spec
    found = resolve(FOUND)
    s = loss_scale(found)
    by_hand = Loss("by hand", lambda z, t: found.fn(z, t) * s, "s*f")  # no expr: scale 1
    unscaled = Loss("as found", found.fn, "f")
    got = train_one(sgd, found, seed=0, steps=30)
    assert got.train_loss == train_one(sgd, by_hand, seed=0, steps=30).train_loss
    assert got.train_loss != train_one(sgd, unscaled, seed=0, steps=30).train_loss
    assert (train_one(SYN, found, seed=0, steps=30).train_loss
            == train_one(SYN, unscaled, seed=0, steps=30).train_loss)


def test_batched_training_scales_sgd_losses_as_train_one():
    from gp_search.proxies.population import choose as batched

    sgd = proxies.get("synthetic-mlp", optimizer="sgd", lr=0.1).spec
    losses = [REFERENCE["ce"], resolve(FOUND)]
    got = batched.train_population(sgd, losses, seed=0, steps=20)
    for loss, res in zip(losses, got):
        ref = train_one(sgd, loss, seed=0, steps=20)
        assert res.status == ref.status == "ok"
        assert math.isclose(res.train_loss, ref.train_loss, rel_tol=1e-5)
