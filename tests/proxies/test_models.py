"""Tests for gp_search.proxies.models: output shapes, seed determinism, RNG isolation, learnability."""

import pytest
import torch
import torch.nn.functional as F

from gp_search.proxies import models
from gp_search.proxies.data import dataset as data

CASES = [  # kind, input_shape, num_classes, kw
    ("mlp", (64,), 10, {}),
    ("mlp", (1, 40), 10, {"hidden": (32, 16)}),
    ("mlp", (3, 32, 32), 100, {"hidden": ()}),
    ("cnn2d", (64,), 10, {}),
    ("cnn2d", (1, 28, 28), 10, {}),
    ("cnn2d", (64,), 10, {"image_shape": (1, 8, 8), "channels": (8, 16)}),
    ("cnn1d", (1, 40), 10, {}),
    ("cnn1d", (40,), 10, {"channels": 8}),
    ("resnet", (3, 32, 32), 10, {}),
    ("resnet", (3, 32, 32), 100, {"widths": (8, 16, 32)}),
]
IDS = [f"{k}-{'x'.join(map(str, s))}-{c}-{i}" for i, (k, s, c, _) in enumerate(CASES)]


@pytest.mark.parametrize("kind, input_shape, num_classes, kw", CASES, ids=IDS)
def test_output_shape(kind, input_shape, num_classes, kw):
    model = models.build(kind, input_shape, num_classes, seed=0, **kw)
    assert isinstance(model, torch.nn.Module)
    assert model(torch.randn(3, *input_shape)).shape == (3, num_classes)
    # Flattened samples are accepted as well.
    flat = torch.randn(2, torch.Size(input_shape).numel())
    assert model(flat).shape == (2, num_classes)
    for p in model.parameters():
        assert p.device.type == "cpu" and torch.isfinite(p).all()


@pytest.mark.parametrize("kind, name", [("mlp", "digits"), ("cnn2d", "digits"),
                                        ("cnn1d", "mnist1d"), ("mlp", "synthetic")])
def test_models_fit_embedded_datasets(kind, name):
    ds = data.load(name)
    model = models.build(kind, ds.input_shape, ds.num_classes, seed=1)
    assert model(ds.x_test[:16]).shape == (16, ds.num_classes)


@pytest.mark.parametrize("kind, input_shape, num_classes, kw", CASES, ids=IDS)
def test_same_seed_same_parameters(kind, input_shape, num_classes, kw):
    torch.manual_seed(1)
    first = models.build(kind, input_shape, num_classes, seed=5, **kw)
    torch.manual_seed(2)
    torch.rand(17)
    second = models.build(kind, input_shape, num_classes, seed=5, **kw)
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind, input_shape, num_classes, kw", CASES, ids=IDS)
def test_different_seed_different_parameters(kind, input_shape, num_classes, kw):
    a = models.build(kind, input_shape, num_classes, seed=0, **kw).state_dict()
    b = models.build(kind, input_shape, num_classes, seed=1, **kw).state_dict()
    # Every randomly initialised tensor differs; norm scales/shifts are constants.
    random_keys = [k for k in a if a[k].unique().numel() > 1]
    assert random_keys
    assert not any(torch.equal(a[k], b[k]) for k in random_keys)


def test_build_leaves_global_rng_alone():
    torch.manual_seed(1234)
    before = torch.get_rng_state()
    for kind, input_shape, num_classes, kw in CASES:
        models.build(kind, input_shape, num_classes, seed=3, **kw)
    assert torch.equal(before, torch.get_rng_state())


def test_resnet_has_no_running_statistics():
    model = models.build("resnet", (3, 32, 32), 10, seed=0)
    assert not list(model.buffers())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        train_out = model.train()(x)
        eval_out = model.eval()(x)
    torch.testing.assert_close(train_out, eval_out)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown model kind"):
        models.build("transformer", (64,), 10, seed=0)
    with pytest.raises(ValueError, match="image"):
        models.build("cnn2d", (40,), 10, seed=0)
    with pytest.raises(ValueError, match="does not match"):
        models.build("cnn2d", (64,), 10, seed=0, image_shape=(1, 4, 4))
    with pytest.raises(ValueError, match="cnn1d"):
        models.build("cnn1d", (3, 32, 32), 10, seed=0)
    assert set(models.KINDS) == {"mlp", "cnn2d", "cnn1d", "resnet", "unet"}


def train(model, ds, steps, lr, batch_size=100, seed=0):
    """Plain Adam + cross-entropy on random minibatches; returns test accuracy."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, ds.n_train, (batch_size,), generator=generator)
        loss = F.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()


def test_mlp_learns_synthetic():
    ds = data.load("synthetic")
    accuracy = train(models.build("mlp", ds.input_shape, ds.num_classes, seed=0), ds, steps=100, lr=1e-2)
    assert accuracy > 0.5  # chance is 0.1


@pytest.mark.slow
def test_cnn1d_reaches_reference_accuracy_on_mnist1d():
    ds = data.load("mnist1d")
    accuracy = train(models.build("cnn1d", ds.input_shape, ds.num_classes, seed=0), ds, steps=3000, lr=1e-3)
    assert accuracy > 0.75


def test_a_registered_prefix_builds_its_kinds():
    def builder(kind, input_shape, num_classes, seed, **kw):
        return models.build("mlp", input_shape, num_classes, seed, hidden=(kw["width"],))

    with pytest.raises(ValueError, match="unknown model kind 'tiny:x'"):
        models.build("tiny:x", (4,), 3, 0)
    models.register_builder("tiny:", builder)
    try:
        net = models.build("tiny:x", (4,), 3, 0, width=5)
        assert net(torch.zeros(2, 4)).shape == (2, 3) and net[1].out_features == 5
    finally:
        models._PREFIXED.pop("tiny:")
