"""The general population path (torch.func): equality with the sequential path for every model
kind and both optimisers, NaN isolation, chunking, metrics, and the fallback for BatchNorm."""

import dataclasses
import math

import pytest
import torch
from population_checks import (BAD, LOSSES, assert_nan_isolated, built, sequential_reference,
                               sgd)

from gp_search import proxies
from gp_search.lang.expr import parse
from gp_search.lang.losses import REFERENCE, from_expr
from gp_search.proxies import models
from gp_search.proxies.population import choose as batched
from gp_search.proxies.spec import ProxySpec
from gp_search.proxies.population.func import FuncPopulation, bytes_per_candidate, unstackable
from gp_search.proxies.train import dataset_for, train_one

RESNET = ProxySpec("digits-resnet", "digits", "resnet",
                   (("widths", (8, 8, 16)), ("image_shape", (1, 8, 8))), steps=5, batch_size=32)
KINDS = {
    "mlp": proxies.get("digits-mlp", steps=5).spec,
    "cnn1d": proxies.get("mnist1d-cnn", steps=5, batch_size=32).spec,
    "cnn2d": proxies.get("digits-cnn", steps=5, batch_size=32).spec,
    "resnet": RESNET,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _population(spec, losses, seed, steps):
    return built(FuncPopulation, spec, losses, seed, steps)


def _compared(spec, losses, steps):
    """Train ``losses`` as one population for ``steps`` and each alone as train_one does; check
    the first step's gradients (to 1e-5 of their scale) and every step's loss (to 1e-5); return
    per loss the absolute differences of all parameters at the end."""
    pop = _population(spec, losses, 0, steps)
    pop.step(0)
    first = [[p.grad[k].clone() for p in pop.params.values()] for k in range(len(losses))]
    for s in range(1, steps):
        pop.step(s)
    out = []
    for k, loss in enumerate(losses):
        params, values, grads = sequential_reference(spec, loss, 0, steps)
        for mine, ref in zip(first[k], grads):
            assert (mine - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max()), loss.name
        assert torch.allclose(pop.loss_hist[:, k].double(), torch.tensor(values).double(),
                              rtol=1e-5, atol=1e-6), loss.name
        out.append(torch.cat([(m - r).abs().flatten() for m, r in zip(pop.parameters(k), params)]))
    return out


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parameters_and_losses_equal_sequential_after_4_steps(kind, optimizer):
    """SGD: every parameter within 1e-5. Adam divides each gradient entry by its own running
    magnitude, so an entry whose gradient is rounding noise (~1e-9: a conv weight no sample
    reaches) moves by up to ±lr whichever way the noise points, in any two implementations
    (here a grouped conv against a plain one); for Adam the losses of every step agree to 1e-5,
    the gradients of the first step to 1e-5 of their scale, and 99.5 % of the parameters to 1e-5."""
    spec = KINDS[kind] if optimizer == "adam" else sgd(KINDS[kind])
    for loss, diffs in zip(LOSSES, _compared(spec, LOSSES, 4)):
        if optimizer == "sgd":
            assert diffs.max() <= 1e-5, (kind, loss.name)
        else:
            assert (diffs <= 1e-5).double().mean() >= 0.995, (kind, loss.name)
            assert diffs.max() <= 2 * spec.lr * 4, (kind, loss.name)


@pytest.mark.parametrize("kind", ["cnn1d", "resnet"])
def test_results_equal_train_one(kind):
    spec = dataclasses.replace(KINDS[kind], steps=8)
    got = batched.train_population(spec, LOSSES[:3], seed=1)
    n_test = dataset_for(spec).n_test
    for loss, r in zip(LOSSES[:3], got):
        ref = train_one(spec, loss, seed=1)
        assert (r.status, r.steps, r.loss, r.seed) == (ref.status, ref.steps, loss.name, 1)
        assert r.status == "ok" and abs(r.accuracy - ref.accuracy) <= 2 / n_test + 1e-12
        assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-5, abs_tol=1e-6)


def test_every_metric_is_scored_like_the_sequential_path():
    for metric in ("balanced_accuracy", "macro_f1", "miou"):
        spec = dataclasses.replace(KINDS["cnn2d"], steps=10, metric=metric)
        got = batched.train_population(spec, LOSSES[:2], seed=0)
        for loss, r in zip(LOSSES[:2], got):
            ref = train_one(spec, loss, seed=0)
            assert 0 < r.accuracy < 1 and abs(r.accuracy - ref.accuracy) <= 0.01, metric


def test_a_nan_candidate_never_touches_the_others():
    spec = dataclasses.replace(KINDS["cnn2d"], steps=30, lr=0.01)
    assert_nan_isolated(spec, LOSSES[:2], BAD, lambda losses, n: _population(spec, losses, 0, n), 5)


def test_chunks_give_the_same_results():
    spec = dataclasses.replace(KINDS["cnn1d"], steps=12)
    losses = LOSSES[:4]
    whole = batched.train_population(spec, losses, seed=3)
    ds = dataset_for(spec)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, 3, **dict(spec.model_kw))
    per = bytes_per_candidate(model, ds.x_train[:spec.batch_size], "adam")
    assert per > 4 * 4 * sum(p.numel() for p in model.parameters())  # saved activations count
    split = batched.train_population(spec, losses, seed=3, max_stack_mb=2.5 * per / 2 ** 20)
    for a, b in zip(whole, split):
        assert (a.status, a.accuracy) == (b.status, b.accuracy)
        assert math.isclose(a.train_loss, b.train_loss, rel_tol=1e-6)
    with pytest.raises(ValueError, match="max_stack_mb"):
        batched.train_population(spec, losses, seed=3, max_stack_mb=0)


def test_a_batchnorm_model_trains_one_at_a_time_and_says_why():
    spec = dataclasses.replace(RESNET, model_kw=RESNET.model_kw + (("norm", "batch"),))
    ds = dataset_for(spec)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, 0, **dict(spec.model_kw))
    assert "running_mean" in unstackable(model)
    assert unstackable(models.build("resnet", ds.input_shape, 10, 0, image_shape=(1, 8, 8))) \
        is None
    got = batched.train_population(spec, LOSSES[:2], seed=0)
    for loss, r in zip(LOSSES[:2], got):
        ref = train_one(spec, loss, seed=0)
        assert r.status == ref.status == "ok" and "BatchNorm" in r.message and not ref.message
        assert (r.accuracy, r.train_loss) == (ref.accuracy, ref.train_loss)


def test_sgd_rejects_a_loss_without_a_scale_as_train_one_does():
    spec = dataclasses.replace(sgd(KINDS["mlp"]), steps=20)
    flat = from_expr(parse("mul(y_pred, 0.0001)"))  # no usable scale, or refused before
    losses = [REFERENCE["ce"], flat, REFERENCE["ngl"]]
    got = batched.train_population(spec, losses, seed=0)
    for loss, r in zip(losses, got):
        ref = train_one(spec, loss, seed=0)
        assert (r.status, r.message) == (ref.status, ref.message)
        if r.ok:
            assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-5)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", list(KINDS))
def test_cuda_population_equals_sequential(kind):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    spec = dataclasses.replace(KINDS[kind], steps=10)
    got = batched.train_population(spec, LOSSES, seed=0, device="cuda")
    for loss, r in zip(LOSSES, got):
        ref = train_one(spec, loss, seed=0, device="cuda")
        assert r.status == ref.status == "ok"
        assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-4, abs_tol=1e-5), loss.name


def test_a_dense_unet_population_equals_sequential_with_ignored_pixels():
    """Dense (N, C, H, W) logits through the population path: the segmentation proxy's U-Net,
    scored by mIoU, a few pixels of every target set to the ignore label 255."""
    spec = proxies.get("seg-digits-unet", steps=3, batch_size=8).spec
    ds = dataset_for(spec)
    ds.y_train[:, 0, :4] = 255  # the loader caches per process: restore below
    try:
        losses = [REFERENCE["ce"], REFERENCE["ngl"], REFERENCE["dice"]]
        # As in the test above; Adam's parameters only bounded (it turns rounding noise into ±lr).
        for loss, diffs in zip(losses, _compared(spec, losses, 3)):
            assert diffs.max() <= 2 * spec.lr * 3, loss.name
    finally:
        from gp_search.proxies.data import dataset as data

        data.clear_cache()
