"""The loop every population path shares: steps, finiteness checks, time limit, one result each.

A population (:class:`gp_search.proxies.population.mlp.MlpPopulation`,
:class:`gp_search.proxies.population.func.FuncPopulation`) offers what :class:`Population` lists;
:func:`run` trains it for its budget and turns it into one :class:`EvalResult` per candidate, or
``None`` for a candidate that left the stack (non-finite, or past ``train.PARAM_LIMIT``) and is
re-run alone by the caller with ``train_one`` (which stops where it failed: its status, step and
message are exactly the sequential ones).

No host sync inside a step: each step stores every candidate's loss and logit-gradient sum on the
device, and the host looks every :data:`CHECK_EVERY` steps (one small device→host copy).
"""

from __future__ import annotations

import math
import time
from typing import Protocol

import torch

from gp_search.proxies import train
from gp_search.proxies.spec import EvalResult, ProxySpec

CHECK_EVERY = 25
"""Steps between host-side finiteness checks (one small device→host copy each)."""


class Population(Protocol):
    """P candidates of one seed in one stacked training.

    Attributes:
        spec, losses, seed, budget: as given to ``train_population`` (``losses``: every candidate
            of this stack, by original slot).
        start: ``time.perf_counter()`` when the population was built (its clock and seconds).
        alive: int64 tensor, stack slot -> index into ``losses`` (shrinks as candidates leave).
        n: ``len(alive)``.
        loss_hist, grad_hist: ``(budget, len(losses))`` device tensors, written by ``step``.
        path: the :class:`~gp_search.proxies.spec.TrainPath` recorded in its results.
    """

    spec: ProxySpec
    losses: list
    seed: int
    budget: int
    start: float
    alive: torch.Tensor
    n: int
    loss_hist: torch.Tensor
    grad_hist: torch.Tensor
    path: str

    def step(self, step: int) -> None:
        """One optimiser step of every live candidate (no host sync)."""

    def param_max(self) -> torch.Tensor:
        """Largest parameter magnitude of each live slot, ``(n,)`` on the device."""

    def keep(self, slots: torch.Tensor) -> None:
        """Keep only these stack slots (int64, CPU), dropping the others from every tensor."""

    def scores(self) -> list[tuple[float, dict]]:
        """The held-out ``spec.metric`` of each live slot and its calibration figures
        (``train.slot_scores``)."""


def begin(pop, spec: ProxySpec, losses: list, seed: int, budget: int, dev, scales=None) -> None:
    """Give a new population what every one holds: its arguments, its clock and data, all slots
    alive, each candidate's ``lam`` (``loss.l2``) and SGD ``scale`` (default 1), empty loss and
    gradient histories, the seed's batch order and each step's class ids ``y (steps, B, …)``."""
    pop.spec, pop.losses, pop.seed, pop.budget, pop.dev = spec, losses, seed, budget, dev
    pop.start = time.perf_counter()
    pop.ds = ds = train.dataset_for(spec, dev)
    n = len(losses)
    pop.alive = torch.arange(n)  # stack slot -> candidate index
    pop.lam = torch.tensor([loss.l2 for loss in losses], dtype=torch.float32, device=dev)
    pop.scale = torch.tensor(scales if scales is not None else [1.0] * n, dtype=torch.float32,
                             device=dev)
    pop.loss_hist = torch.full((budget, n), math.nan, dtype=torch.float32, device=dev)
    pop.grad_hist = torch.zeros((budget, n), dtype=torch.float32, device=dev)
    pop.batches = train.batch_indices(ds.n_train, spec.batch_size, budget, seed).to(dev)
    pop.y = ds.y_train.index_select(0, pop.batches.flatten()).view(
        budget, spec.batch_size, *ds.y_train.shape[1:])


def fn_grad(loss, logits: torch.Tensor, y: torch.Tensor):
    """Value and logit gradient of one candidate's ``loss.fn`` on its slice, by autograd.

    Returns:
        ``(value, grad)`` detached, or None when the loss raised (a NaN drops the candidate at the
        next check and ``train_one`` then reports its error as a status).
    """
    z = logits.detach().requires_grad_(True)
    try:
        with torch.enable_grad():
            v = loss.fn(z, y)
            (g,) = torch.autograd.grad(v, z)
    except Exception as exc:  # noqa: BLE001 - see Returns
        if train.device_fault(exc):
            raise
        return None
    return v.detach(), g


def healthy(pop: Population, s0: int, s1: int) -> torch.Tensor:
    """Which live slots stayed finite in steps ``s0 .. s1 - 1`` and within ``PARAM_LIMIT`` (CPU)."""
    cols = pop.alive.to(pop.loss_hist.device)
    finite = torch.isfinite(pop.loss_hist[s0:s1].index_select(1, cols)).all(0) & \
        torch.isfinite(pop.grad_hist[s0:s1].index_select(1, cols)).all(0)
    return (finite & (pop.param_max() <= train.PARAM_LIMIT)).cpu()  # NaN compares False


def run(pop: Population) -> list[EvalResult | None]:
    """Train ``pop`` for its budget; a ``None`` entry means 'evaluate this one with train_one'.

    ``seconds`` of each result is its share of the population's wall time; ``timeout`` when the
    wall time passed ``spec.time_limit`` (checked every :data:`CHECK_EVERY` steps).
    """
    spec, s0, status, done = pop.spec, 0, "ok", pop.budget
    for step in range(pop.budget):
        pop.step(step)
        if (step + 1) % CHECK_EVERY == 0 or step + 1 == pop.budget:
            ok = healthy(pop, s0, step + 1)
            if not bool(ok.all()):
                pop.keep(torch.nonzero(ok).flatten())
            s0 = step + 1
            if pop.n == 0:
                break
            if time.perf_counter() - pop.start > spec.time_limit:
                status, done = "timeout", step + 1
                break
    score = pop.scores() if status == "ok" and pop.n else None
    tail = pop.loss_hist[:done][-train.tail_length(done):]
    tail = tail.double().mean(0).cpu()
    seconds = (time.perf_counter() - pop.start) / len(pop.losses)
    msg = "" if status == "ok" else train.timeout_message(spec, done, pop.budget) + " (population)"
    out: list[EvalResult | None] = [None] * len(pop.losses)
    for s, c in enumerate(pop.alive.tolist()):
        out[c] = EvalResult(status, math.nan if score is None else float(score[s][0]),
                            float(tail[c]), done, seconds, msg, pop.losses[c].name, spec.name,
                            int(pop.seed), pop.budget, spec.metric, path=pop.path,
                            **({} if score is None else score[s][1]))
    return out
