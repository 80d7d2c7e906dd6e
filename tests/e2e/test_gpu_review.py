"""Findings of the CUDA-path review (shared/reviews/gpu-path.md) that a CPU can exercise: device
faults raised, never cached (7); out of memory halves the stack and retries (6d); cuda:N and
CUDA checked before a run directory is written (10); TF32 chosen and recorded (5); no host sync
in a loss call (3)."""

import json
import sys
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from gp_search import proxies
from gp_search.core import environment
from gp_search.engine.config import SearchConfig
from gp_search.engine.runner import run_search
from gp_search.lang import IGNORE_INDEX, REFERENCE, Loss, masked_mean, resolve
from gp_search.lang.apply import prepare
from gp_search.proxies import train
from gp_search.proxies.population import train_population

SPEC = proxies.get("digits-mlp").spec
EXPRS = ["ngl", "mul(-1, mul(y_real, cos(y_pred)))", "focal"]


def _raising(kind: type, after: int = 0, times: int = 10 ** 9) -> Loss:
    """CE that raises ``kind`` on its calls ``after + 1 .. after + times`` (a device fault met
    inside a training), named and spelt like CE so that its results compare with CE's."""
    calls = [0]

    def fn(logits, target):
        calls[0] += 1
        if after < calls[0] <= after + times:
            raise kind("injected device fault")
        return REFERENCE["ce"].fn(logits, target)

    return Loss("ce", fn, "ce", None, 0.0, "ce")


# -- 7: device faults are raised, never cached as a candidate's 'error' ---------------------------

@pytest.mark.parametrize("kind", [torch.OutOfMemoryError, torch.AcceleratorError])
def test_train_one_raises_device_faults(kind):
    with pytest.raises(kind):
        train.train_one(SPEC, _raising(kind), 0, 5)
    def fault(model, ds):
        raise kind("after training")

    with pytest.raises(kind):  # through the on_trained hook too
        train.train_one(SPEC, REFERENCE["ce"], 0, 3, on_trained=fault)
    # Any other failure stays a status of that candidate.
    got = train.train_one(SPEC, _raising(RuntimeError), 0, 5)
    assert got.status == "error" and "injected" in got.message


def test_train_population_raises_a_sticky_device_error():
    losses = [resolve(t) for t in EXPRS] + [_raising(torch.AcceleratorError, after=2)]
    with pytest.raises(torch.AcceleratorError):
        train_population(SPEC, losses, 0, 5)


# -- 6d: out of memory in a stack: free it, halve the chunk, retry --------------------------------

def test_out_of_memory_halves_the_chunk_and_retries(one_torch_thread):
    plain = train_population(SPEC, [resolve(t) for t in EXPRS] + [REFERENCE["ce"]], 0, 30)
    flaky = [resolve(t) for t in EXPRS] + [_raising(torch.OutOfMemoryError, after=3, times=1)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = train_population(SPEC, flaky, 0, 30)
    said = [str(w.message) for w in seen if "out of device memory" in str(w.message)]
    assert said == ["out of device memory with 4 candidates in one stack; retrying in chunks of 2"]
    # The retried halves give the same results (the path does not depend on the stack size).
    assert all(a.same_outcome(b) for a, b in zip(got, plain)), (got, plain)
    with pytest.raises(torch.OutOfMemoryError):  # one candidate that does not fit: raised
        train_population(SPEC, [_raising(torch.OutOfMemoryError)], 0, 5)


# -- 10: a device that cannot be used is refused before anything is written -----------------------

def test_cuda_index_is_checked_against_the_device_count(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            train.resolve_device("cuda:3")
    # The index rule itself, as on a machine with one GPU (torch's answers replaced, not torch).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert train.resolve_device("cuda:0") == "cuda:0"
    with pytest.raises(ValueError, match=r"torch sees 1 CUDA device\(s\) \(cuda:0 \.\. cuda:0\)"):
        train.resolve_device("cuda:3")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_run_refuses_cuda_before_the_run_directory(tmp_path):
    cfg = SearchConfig(population=4, generations=1, proxies=("synthetic-mlp",), steps=5,
                       seeds=1, device="cuda", out=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_search(cfg, quiet=True)
    assert not (tmp_path / "runs").exists()


# -- 5: TF32 chosen explicitly, recorded in env.json and the cache key ----------------------------

def test_tf32_is_off_unless_asked_and_recorded(monkeypatch, tmp_path):
    monkeypatch.delenv(environment.TF32_ENV, raising=False)
    assert not environment.tf32_enabled()
    env = json.loads(environment.write_env(tmp_path, ["gp-search", "x"]).read_text())
    assert env["accelerator"]["tf32"] is False and env["accelerator"]["cuda"] == \
        torch.cuda.is_available()
    assert "fingerprint" in env  # additive: the old keys stay
    monkeypatch.setenv(environment.TF32_ENV, "1")
    assert environment.tf32_enabled()
    assert json.loads(environment.write_env(tmp_path).read_text())["accelerator"]["tf32"]
    before = torch.backends.cudnn.allow_tf32
    train.apply_tf32("cpu")  # nothing to set off CUDA
    assert torch.backends.cudnn.allow_tf32 == before


# -- 3: no host sync in a loss call; the unconditional mask keeps results bit for bit ------------

class _Syncs(TorchDispatchMode):
    """Counts the aten ops that make the host wait for the device (item(), bool(), nonzero),
    except ``F.one_hot``'s range checks of the class ids, which torch makes on the CPU only (on
    CUDA it relies on a device-side assert)."""

    SYNCS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default,
             torch.ops.aten.nonzero.default}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.SYNCS:
            frame = sys._getframe()  # called from lang.expr.prepare: its one_hot (a C++ op)
            while frame and frame.f_code is not prepare.__code__:
                frame = frame.f_back
            self.count += frame is None
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_a_loss_call_makes_no_host_sync(name):
    gen = torch.Generator().manual_seed(0)
    for shape, target in (((8, 10), torch.randint(0, 10, (8,), generator=gen)),
                          ((2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4), generator=gen))):
        logits = torch.randn(shape, generator=gen, requires_grad=True)
        with _Syncs() as syncs:
            value = REFERENCE[name].fn(logits, target)
            value.backward()
        assert syncs.count == 0, (name, shape)


def test_masked_mean_with_nothing_ignored_is_the_plain_mean_bit_for_bit():
    gen = torch.Generator().manual_seed(1)
    for shape in ((64, 10), (4, 3, 16, 16), (3, 5, 7)):
        values = torch.randn(shape, generator=gen, requires_grad=True)
        keep = torch.ones((shape[0], *shape[2:]), dtype=torch.bool)
        (g_plain,) = torch.autograd.grad(values.mean(), values)
        masked = masked_mean(values, keep)
        (g_masked,) = torch.autograd.grad(masked, values)
        assert torch.equal(masked, values.mean()) and torch.equal(g_masked, g_plain)
    assert IGNORE_INDEX == 255
