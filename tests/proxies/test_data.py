"""Tests for gp_search.proxies.data.dataset: embedded datasets, idx and CIFAR readers, the unpickler allow-list."""

import gzip
import io
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

from gp_search.proxies.data import dataset as data
from gp_search.proxies.data import embedded

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---------------------------------------------------------------- embedded datasets


@pytest.mark.parametrize("name, n_train, n_test, input_shape", [
    ("digits", 1437, 360, (64,)),
    ("mnist1d", 4000, 1000, (1, 40)),
    ("synthetic", 1000, 500, (32,)),
])
def test_embedded_shapes_and_dtypes(name, n_train, n_test, input_shape):
    ds = data.load(name)
    assert ds.name == name
    assert (ds.n_train, ds.n_test) == (n_train, n_test)
    assert ds.input_shape == input_shape
    assert ds.x_train.shape == (n_train, *input_shape)
    assert ds.x_test.shape == (n_test, *input_shape)
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32
    assert ds.y_train.dtype == ds.y_test.dtype == torch.int64
    assert ds.y_train.shape == (n_train,) and ds.y_test.shape == (n_test,)
    assert ds.num_classes == 10
    # Every class appears in both splits.
    assert set(ds.y_train.tolist()) == set(ds.y_test.tolist()) == set(range(10))
    assert torch.isfinite(ds.x_train).all() and torch.isfinite(ds.x_test).all()
    assert ds.x_train.device.type == "cpu"


def test_digits_scaled_and_stratified():
    ds = data.load("digits")
    assert ds.x_train.min() == 0 and ds.x_train.max() == 1
    assert ds.x_test.min() >= 0 and ds.x_test.max() <= 1
    # Pixels were integers 0..16 before scaling.
    assert torch.equal(ds.x_train * 16, (ds.x_train * 16).round())
    assert ds.image_shape == (1, 8, 8)
    # Stratified 80/20: each class has about a fifth of its samples in test.
    train_counts, test_counts = ds.y_train.bincount(), ds.y_test.bincount()
    frac = test_counts.double() / (train_counts + test_counts).double()
    assert ((frac - 0.2).abs() < 0.01).all()


def test_digits_split_is_fixed():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    _, x_te, _, y_te = train_test_split(bunch.data, bunch.target, test_size=0.2,
                                        stratify=bunch.target, random_state=0)
    ds = data.load("digits")
    assert torch.equal(ds.y_test, torch.as_tensor(y_te))
    assert torch.equal(ds.x_test, torch.as_tensor(x_te / 16.0, dtype=torch.float32))


def test_mnist1d_standardised_with_train_stats():
    ds = data.load("mnist1d")
    assert abs(ds.x_train.mean().item()) < 1e-4
    assert abs(ds.x_train.std().item() - 1) < 1e-3
    # Test split uses the train statistics, so it is only roughly standard.
    assert abs(ds.x_test.mean().item()) < 0.1
    assert ds.image_shape is None


def test_mnist1d_leaves_global_rngs_alone():
    data.clear_cache()  # force make_dataset to run again, it reseeds numpy/random
    np.random.seed(7)
    random.seed(7)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(7)
    random.seed(7)
    data.load("mnist1d")
    assert np.random.rand() == expected_np
    assert random.random() == expected_py


def test_synthetic_is_deterministic_and_balanced():
    ds = data.load("synthetic")
    assert ds.y_train.bincount().tolist() == [100] * 10
    assert ds.y_test.bincount().tolist() == [50] * 10
    again = embedded.load_synthetic()
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_test, again.y_test)


def test_load_is_cached():
    first = data.load("digits")
    second = data.load("digits")
    assert second is first  # the same object: nothing was read again (no clock: a speed claim)
    assert data.load("DIGITS") is first


def test_a_registered_prefix_claims_its_names_and_is_cached_per_name():
    calls = []

    def loader(name, root):
        calls.append((name, root))
        return embedded.load_synthetic()

    with pytest.raises(ValueError, match="unknown dataset 'mine:a'"):
        data.load("mine:a")
    data.register_source("mine:", loader)
    try:
        first = data.load("mine:a")
        assert data.load("mine:a") is first and data.load("mine:b") is not first
        assert calls == [("mine:a", None), ("mine:b", None)]  # once per name, no data root
    finally:
        data._SOURCES.pop("mine:")
        data.clear_cache()


def test_to_device_copies_only_when_needed():
    ds = data.load("synthetic")
    assert ds.to("cpu") is ds
    meta = data.load("synthetic", device="meta")
    assert meta.x_train.device.type == "meta" and meta.y_test.device.type == "meta"
    assert meta.x_train.shape == ds.x_train.shape
    assert data.load("synthetic") is ds  # the cache still holds the CPU copy


@pytest.mark.parametrize("name", ["digits", "mnist1d", "synthetic"])
def test_validation_split_is_a_fixed_stratified_fifth_of_train(name):
    ds = data.load(name)
    val = data.validation_split(ds)
    assert val.name == f"{name}:val" and val.n_train + val.n_test == ds.n_train
    assert abs(val.n_test - 0.2 * ds.n_train) <= ds.num_classes  # rounding per class
    # Every held-out and every remaining sample is a training sample, none in both.
    rows = {tuple(r) for r in ds.x_train.reshape(ds.n_train, -1).tolist()}
    held = [tuple(r) for r in val.x_test.reshape(val.n_test, -1).tolist()]
    kept = {tuple(r) for r in val.x_train.reshape(val.n_train, -1).tolist()}
    assert set(held) <= rows and kept <= rows and not (set(held) & kept)
    # Stratified: each class keeps its share to within one sample.
    full = torch.bincount(ds.y_train, minlength=ds.num_classes).numpy()
    got = torch.bincount(val.y_test, minlength=ds.num_classes).numpy()
    assert np.all(np.abs(got - 0.2 * full) <= 0.5 + 1e-9)
    again = data.validation_split(ds)
    assert torch.equal(again.x_test, val.x_test) and torch.equal(again.y_train, val.y_train)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("imagenet")


def test_datasets_listing_covers_all_loaders():
    assert set(data.DATASETS) == {"digits", "mnist1d", "synthetic", "mnist",
                                  "fashion-mnist", "cifar10", "cifar100", "tabular-2",
                                  "tabular-3", "tabular-20", "synthetic-100", "seg-digits",
                                  "seg-digits-imbalanced", "voc"}
    assert all(isinstance(v, str) and v for v in data.DATASETS.values())


# ---------------------------------------------------------------- idx files


def write_idx(path, array, gz=False):
    """Write ``array`` (uint8) in the idx format: magic 0x0000_08_<ndim>, big-endian uint32 dims."""
    array = np.asarray(array, dtype=np.uint8)
    payload = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def write_mnist(directory, seed=0, n_train=20, n_test=10, gz=False):
    """Write a tiny MNIST-format set; return the arrays written."""
    rng = np.random.RandomState(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.randint(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.randint(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.randint(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.randint(0, 10, n_test),
    }
    for fname, array in arrays.items():
        write_idx(directory / fname, array, gz=gz)
    return arrays


def assert_idx_roundtrip(ds, arrays):
    assert ds.x_train.shape == (20, 1, 28, 28) and ds.x_test.shape == (10, 1, 28, 28)
    assert ds.input_shape == ds.image_shape == (1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert 0 <= ds.x_train.min() and ds.x_train.max() <= 1
    pixels = (ds.x_train * 255).round().to(torch.int64)
    assert torch.equal(pixels[:, 0], torch.as_tensor(arrays["train-images-idx3-ubyte"]))
    pixels = (ds.x_test * 255).round().to(torch.int64)
    assert torch.equal(pixels[:, 0], torch.as_tensor(arrays["t10k-images-idx3-ubyte"]))
    assert torch.equal(ds.y_train, torch.as_tensor(arrays["train-labels-idx1-ubyte"]))
    assert torch.equal(ds.y_test, torch.as_tensor(arrays["t10k-labels-idx1-ubyte"]))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("layout", ["{name}", "{name}/raw", "."])
def test_idx_roundtrip(tmp_path, name, gz, layout):
    arrays = write_mnist(tmp_path / layout.format(name=name), gz=gz)
    ds = data.load(name, data_root=tmp_path)
    assert ds.name == name and ds.num_classes == 10
    assert_idx_roundtrip(ds, arrays)


def test_idx_torchvision_layout_and_mixed_compression(tmp_path):
    arrays = write_mnist(tmp_path / "FashionMNIST" / "raw")
    raw = tmp_path / "FashionMNIST" / "raw"
    # Compress one file only: each file may be plain or gzipped independently.
    payload = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with gzip.open(raw / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(payload)
    assert_idx_roundtrip(data.load("fashion_mnist", data_root=str(tmp_path)), arrays)


def test_idx_first_complete_directory_wins(tmp_path):
    write_mnist(tmp_path, seed=1)  # data_root itself: searched last
    arrays = write_mnist(tmp_path / "mnist" / "raw", seed=2)
    assert_idx_roundtrip(data.load("mnist", data_root=tmp_path), arrays)


def test_idx_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load("mnist", data_root=tmp_path)
    msg = str(info.value)
    for fname in IDX_FILES:
        assert fname in msg
    assert str(tmp_path / "mnist" / "raw") in msg and "never downloaded" in msg


def test_idx_incomplete_directory_is_reported(tmp_path):
    write_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="missing: t10k-labels-idx1-ubyte"):
        data.load("mnist", data_root=tmp_path)


def corrupt_and_load(tmp_path, fname, mutate):
    write_mnist(tmp_path / "mnist")
    path = tmp_path / "mnist" / fname
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(ValueError) as info:
        data.load("mnist", data_root=tmp_path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_idx_bad_magic(tmp_path):
    msg = corrupt_and_load(tmp_path, "train-images-idx3-ubyte", lambda b: b"\x00\x00\x08\x01" + b[4:])
    assert "magic" in msg


def test_idx_truncated(tmp_path):
    msg = corrupt_and_load(tmp_path, "t10k-images-idx3-ubyte", lambda b: b[:-5])
    assert "truncated" in msg


def test_idx_trailing_bytes(tmp_path):
    msg = corrupt_and_load(tmp_path, "train-labels-idx1-ubyte", lambda b: b + b"\x00")
    assert "trailing" in msg


def test_idx_label_count_mismatch(tmp_path):
    # A valid idx labels file with the wrong count for its images.
    corrupt_and_load(tmp_path, "train-labels-idx1-ubyte",
                     lambda b: struct.pack(">II", 0x801, 3) + b"\x01\x02\x03")


def test_idx_corrupt_gzip(tmp_path):
    write_mnist(tmp_path / "mnist", gz=True)
    path = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        data.load("mnist", data_root=tmp_path)


# ---------------------------------------------------------------- CIFAR pickles


def cifar_batch(rng, n, label_key, num_classes, index):
    batch = {
        b"batch_label": f"batch {index}".encode(),
        label_key.encode(): [int(v) for v in rng.randint(0, num_classes, n)],
        b"data": rng.randint(0, 256, (n, 3072)).astype(np.uint8),
        b"filenames": [f"img_{index}_{i}.png".encode() for i in range(n)],
    }
    if label_key == "fine_labels":
        batch[b"coarse_labels"] = [int(v) for v in rng.randint(0, 20, n)]
    return batch


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 wrote its str (BINSTRING), like the real CIFAR files."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_str


def dump(obj, path, protocol):
    """Pickle like Python 3 at ``protocol``, or, for "py2", like the real files (numpy 1.x, Python 2)."""
    if protocol != "py2":
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        return
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    blob = buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct" in blob and b"_codecs" not in blob
    path.write_bytes(blob)


def write_cifar10(root, protocol=2, n=8, seed=0):
    rng = np.random.RandomState(seed)
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    batches = {}
    for i, fname in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        batches[fname] = cifar_batch(rng, n, "labels", 10, i)
        dump(batches[fname], directory / fname, protocol)
    return batches


def expected_cifar(train_data, test_data):
    """Reference normalisation, computed independently of the loader (float64)."""
    train = train_data.reshape(-1, 3, 32, 32) / 255.0
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    norm = lambda d: torch.as_tensor((d.reshape(-1, 3, 32, 32) / 255.0 - mean) / std, dtype=torch.float32)
    return norm(train_data), norm(test_data)


PROTOCOLS = ["py2"] + sorted({2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL})


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cifar10_roundtrip(tmp_path, protocol):
    batches = write_cifar10(tmp_path, protocol=protocol)
    ds = data.load("cifar10", data_root=tmp_path)
    train = [batches[f"data_batch_{k}"] for k in range(1, 6)]
    x_tr, x_te = expected_cifar(np.concatenate([b[b"data"] for b in train]), batches["test_batch"][b"data"])
    assert ds.x_train.shape == (40, 3, 32, 32) and ds.x_test.shape == (8, 3, 32, 32)
    assert ds.input_shape == (3, 32, 32) and ds.num_classes == 10
    torch.testing.assert_close(ds.x_train, x_tr)
    torch.testing.assert_close(ds.x_test, x_te)
    assert ds.y_train.tolist() == sum((b[b"labels"] for b in train), [])
    assert ds.y_test.tolist() == batches["test_batch"][b"labels"]
    per_channel = ds.x_train.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_cifar100_uses_fine_labels(tmp_path, protocol):
    rng = np.random.RandomState(3)
    directory = tmp_path / "cifar100" / "cifar-100-python"
    directory.mkdir(parents=True)
    batches = {}
    for i, (fname, n) in enumerate([("train", 12), ("test", 6)]):
        batches[fname] = cifar_batch(rng, n, "fine_labels", 100, i)
        dump(batches[fname], directory / fname, protocol)
    ds = data.load("cifar100", data_root=tmp_path)
    assert ds.num_classes == 100 and ds.n_train == 12 and ds.n_test == 6
    assert ds.y_train.tolist() == batches["train"][b"fine_labels"]
    assert ds.y_test.tolist() == batches["test"][b"fine_labels"]
    x_tr, x_te = expected_cifar(batches["train"][b"data"], batches["test"][b"data"])
    torch.testing.assert_close(ds.x_train, x_tr)
    torch.testing.assert_close(ds.x_test, x_te)


def test_cifar_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        data.load("cifar10", data_root=tmp_path)
    msg = str(info.value)
    for fname in ["data_batch_1", "data_batch_5", "test_batch"]:
        assert fname in msg
    assert str(tmp_path / "cifar-10-batches-py") in msg and "never downloaded" in msg


class _RunsCommand:
    """Pickles as a call to ``func(*args)``, like a booby-trapped download would."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("make_payload", [
    lambda target: _RunsCommand(os.system, f"touch {target}"),
    lambda target: _RunsCommand(eval, f"__import__('os').system('touch {target}')"),
    lambda target: _RunsCommand(exec, f"open({str(target)!r}, 'w').close()"),
], ids=["os.system", "builtins.eval", "builtins.exec"])
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_hostile_pickle_is_refused(tmp_path, make_payload, protocol):
    write_cifar10(tmp_path)
    target = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch = cifar_batch(np.random.RandomState(0), 4, "labels", 10, 1)
    batch[b"data"] = make_payload(target)
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=protocol)
    with pytest.raises(pickle.UnpicklingError) as info:
        data.load("cifar10", data_root=tmp_path)
    assert "forbidden global" in str(info.value) and str(path) in str(info.value)
    assert isinstance(info.value, ValueError)  # also caught as "malformed data"
    assert not target.exists()


def test_codecs_encode_only_for_latin1(tmp_path):
    import codecs

    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch = cifar_batch(np.random.RandomState(0), 4, "labels", 10, 1)
    batch[b"batch_label"] = _RunsCommand(codecs.encode, "x" * 10, "rot13")
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="latin1"):
        data.load("cifar10", data_root=tmp_path)


@pytest.mark.parametrize("problem, mutate", [
    ("garbage", lambda b: b"not a pickle at all"),
    ("truncated", lambda b: b[: len(b) // 2]),
    ("wrong dtype", lambda b: {**b, b"data": b[b"data"].astype(np.int32)}),
    ("wrong width", lambda b: {**b, b"data": b[b"data"][:, :100]}),
    ("label range", lambda b: {**b, b"labels": [10] * len(b[b"labels"])}),
    ("label count", lambda b: {**b, b"labels": b[b"labels"][:-1]}),
    ("no labels", lambda b: {k: v for k, v in b.items() if k != b"labels"}),
    ("not a dict", lambda b: [b]),
])
def test_malformed_cifar_batch(tmp_path, problem, mutate):
    batches = write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    if problem in ("garbage", "truncated"):
        path.write_bytes(mutate(path.read_bytes()))
    else:
        with open(path, "wb") as f:
            pickle.dump(mutate(batches["data_batch_2"]), f, protocol=2)
    with pytest.raises(ValueError, match="data_batch_2"):
        data.load("cifar10", data_root=tmp_path)
