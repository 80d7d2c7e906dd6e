"""The convolution stack (CPU path of cnn1d and cnn2d): equality with the sequential path for
both optimisers, NaN isolation, chunking, the layer plan and its refusals."""

import dataclasses
import math

import pytest
import torch
from torch import nn
from population_checks import (BAD, LOSSES, assert_nan_isolated, built, sequential_reference,
                               sgd)

from gp_search import proxies
from gp_search.lang.expr import parse
from gp_search.lang.losses import from_expr
from gp_search.proxies import models
from gp_search.proxies.population import choose as batched
from gp_search.proxies.population.conv import ConvPopulation
from gp_search.proxies.population.conv_layers import plan
from gp_search.proxies.spec import ProxySpec
from gp_search.proxies.train import dataset_for, train_one

KINDS = {
    "cnn1d": proxies.get("mnist1d-cnn", steps=5, batch_size=32).spec,
    "cnn2d": proxies.get("digits-cnn", steps=5, batch_size=32).spec,
    # Channel counts that fill no vector register.
    "cnn2d-narrow": ProxySpec("digits-narrow-cnn", "digits", "cnn2d",
                           (("image_shape", (1, 8, 8)), ("channels", (6, 10))), steps=5,
                           batch_size=16),
}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _population(spec, losses, seed, steps):
    return built(ConvPopulation, spec, losses, seed, steps)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_parameters_and_losses_equal_sequential_after_4_steps(kind, optimizer):
    """The first step's gradients to 1e-5 of their scale and every step's loss to 1e-5 (both
    optimisers); SGD: every parameter within 1e-5. Adam: 99.5 % of the parameters within 1e-5
    and none beyond 2·lr per step (an entry whose gradient is rounding noise moves by ±lr whichever
    way the noise points, in any two implementations: test_batched_func.py says more)."""
    spec = KINDS[kind] if optimizer == "adam" else sgd(KINDS[kind])
    steps = 4
    pop = _population(spec, LOSSES, 0, steps)
    pop.step(0)
    first = [pop.parameters(k, grad=True) for k in range(len(LOSSES))]
    first = [[g.clone() for g in gs] for gs in first]
    for s in range(1, steps):
        pop.step(s)
    for k, loss in enumerate(LOSSES):
        params, values, grads = sequential_reference(spec, loss, 0, steps)
        for mine, ref in zip(first[k], grads, strict=True):
            assert mine.shape == ref.shape
            assert (mine - ref).abs().max() <= 1e-5 * max(1.0, ref.abs().max()), loss.name
        assert torch.allclose(pop.loss_hist[:, k].double(), torch.tensor(values).double(),
                              rtol=1e-5, atol=1e-6), loss.name
        diffs = torch.cat([(m - r).abs().flatten()
                           for m, r in zip(pop.parameters(k), params, strict=True)])
        if optimizer == "sgd":
            assert diffs.max() <= 1e-5, (kind, loss.name)
        else:
            assert (diffs <= 1e-5).double().mean() >= 0.995, (kind, loss.name)
            assert diffs.max() <= 2 * spec.lr * steps, (kind, loss.name)


@pytest.mark.parametrize("kind", ["cnn1d", "cnn2d"])
def test_results_equal_train_one_and_record_the_path(kind):
    spec = dataclasses.replace(KINDS[kind], steps=8)
    assert batched.path_for(spec, "cpu") == "conv-stack"
    got = batched.train_population(spec, LOSSES[:3], seed=1)
    n_test = dataset_for(spec).n_test
    for loss, r in zip(LOSSES[:3], got):
        ref = train_one(spec, loss, seed=1)
        assert (r.status, r.steps, r.loss, r.seed, r.path) == (ref.status, ref.steps, loss.name,
                                                               1, "conv-stack")
        assert r.status == "ok" and abs(r.accuracy - ref.accuracy) <= 2 / n_test + 1e-12
        assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-5, abs_tol=1e-6)


def test_a_nan_candidate_never_touches_the_others():
    spec = dataclasses.replace(KINDS["cnn2d"], steps=30, lr=0.01)
    assert_nan_isolated(spec, LOSSES[:2], BAD, lambda losses, n: _population(spec, losses, 0, n), 5)


def test_chunks_and_dropped_slots_give_the_same_results():
    spec = dataclasses.replace(KINDS["cnn1d"], steps=30)
    # exp(800 p) overflows at once: that slot leaves the stack at the first check, which shrinks.
    losses = [*LOSSES[:4], from_expr(parse("sub(1, exp(mul(y_pred, 800)))"))]
    whole = batched.train_population(spec, losses, seed=3)
    tiny = batched.train_population(spec, losses, seed=3, max_stack_mb=0.01)  # one per chunk
    assert [r.status for r in whole] == ["ok"] * 4 + ["nan"]
    for a, b in zip(whole, tiny):
        assert a.same_outcome(b)


def test_plan_reads_the_catalogue_cnns_and_swaps_relu_and_pool():
    ds = dataset_for(KINDS["cnn2d"])
    model = models.build("cnn2d", ds.input_shape, ds.num_classes, 0, image_shape=(1, 8, 8))
    kinds = [k for k, _, _ in plan(model)]
    assert kinds == ["conv", "maxpool", "relu", "conv", "relu", "gap", "flatten", "linear"]
    model = models.build("cnn1d", (1, 40), 10, 0)
    assert [k for k, _, _ in plan(model)] == ["conv", "relu"] * 3 + ["flatten", "linear"]
    assert plan(model)[2][2] == (1, 20, 32)  # second conv sees (H, W, C) = (1, 20, 32)


@pytest.mark.parametrize("model, why", [
    (models.build("resnet", (1, 8, 8), 10, 0, widths=(8, 8, 8)), "unsupported convolution"),
    (models.build("mlp", (64,), 10, 0), "not a sequential CNN"),
    (nn.Sequential(models._View((1, 8, 8)), nn.Conv2d(1, 4, 3, dilation=2), nn.Flatten(),
                   nn.Linear(64, 10)), "unsupported convolution"),
    (nn.Sequential(models._View((1, 8, 8)), nn.Conv2d(1, 4, 3, bias=False), nn.Flatten(),
                   nn.Linear(144, 10)), "unsupported convolution"),
    (nn.Sequential(models._View((1, 8, 8)), nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(3),
                   nn.Flatten(), nn.Linear(16, 10)), "unsupported pooling"),
])
def test_plan_refuses_what_it_cannot_train(model, why):
    got = plan(model)
    assert isinstance(got, str) and why in got
    with pytest.raises(ValueError, match=why):
        spec = KINDS["cnn2d"]
        ConvPopulation(spec, LOSSES[:1], 0, 1, torch.device("cpu"), model)


def test_other_models_keep_their_cpu_path():
    resnet = ProxySpec("digits-resnet", "digits", "resnet",
                       (("widths", (8, 8, 8)), ("image_shape", (1, 8, 8))))
    assert batched.path_for(resnet, "cpu") == "sequential"
    assert batched.path_for(KINDS["cnn2d"], "cuda") == "func-stack"
    mixup = dataclasses.replace(KINDS["cnn2d"], mixup=0.2)
    assert batched.path_for(mixup, "cpu") == "sequential"
