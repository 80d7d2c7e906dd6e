"""User objectives for the tests: a real, short torch training on generated data, and ones
that raise, return NaN or hang. Imported by name (``/abs/tests/engine/objective_fns.py:train``) in
loky, Dask and killable worker processes."""

import time
import zlib
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
NOT_A_FUNCTION = 42

_g = torch.Generator().manual_seed(0)
_X = torch.randn(400, 10, generator=_g)
_Y = (_X @ torch.randn(10, 3, generator=_g)).argmax(1)
STEPS = 40


def path(name: str) -> str:
    """The import path of one of this module's objectives, by file (workers need no sys.path)."""
    return f"{HERE / 'objective_fns.py'}:{name}"


def train(loss, seed: int, budget: float = 1.0) -> float:
    """A two-layer MLP trained with ``loss`` for ``budget`` of 40 Adam steps on 300 samples;
    accuracy on the 100 held out."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    order = torch.randperm(300, generator=torch.Generator().manual_seed(seed))
    for step in range(max(1, round(STEPS * budget))):
        idx = order[(step * 32) % 300:][:32]
        opt.zero_grad()
        loss(model(_X[idx]), _Y[idx]).backward()
        opt.step()
    with torch.no_grad():
        return (model(_X[300:]).argmax(1) == _Y[300:]).float().mean().item()


def full_only(loss, seed: int) -> float:
    """:func:`train` without a ``budget`` parameter (so no halving)."""
    return train(loss, seed)


def metrics(loss, seed: int, budget: float = 1.0) -> dict:
    """A dict of named metrics."""
    acc = train(loss, seed, budget)
    return {"accuracy": acc, "error": 1 - acc}


def flaky(loss, seed: int, budget: float = 1.0) -> float:
    """By the loss's text: raises, returns NaN, hangs or trains (one in four each)."""
    kind = zlib.crc32(loss.name.encode()) % 4
    if kind == 0:
        raise RuntimeError("the recipe broke")
    if kind == 1:
        return float("nan")
    if kind == 2:
        time.sleep(3600)
    return train(loss, seed, budget)


def paced(loss, seed: int, budget: float = 1.0) -> float:
    """:func:`train`, a quarter of a second slower (so that a test can kill a run midway)."""
    time.sleep(0.25)
    return train(loss, seed, budget)
