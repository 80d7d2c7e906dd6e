"""Population training: P candidate losses of one seed trained together, and when that pays.

:func:`train_population` trains one copy of the proxy's model per candidate, all at once, with
the same initial weights and batch order as the sequential
:func:`gp_search.proxies.train.train_one` (common random numbers), each with its own loss, and
scores each with ``spec.metric``. Two paths, same contract:

* ``mlp`` models trained with Adam: the hand-written stack of
  :mod:`gp_search.proxies.population.mlp` (one flat buffer, GEMMs written out, fused Adam);
* every other model and optimiser (``cnn1d``, ``cnn2d``, ``resnet``, dense models, a user's module;
  Adam or SGD): :mod:`gp_search.proxies.population.func` (``torch.func.stack_module_state`` +
  ``vmap(functional_call)``, autograd, ``torch.optim`` over the stacked tensors). A model with
  buffers (BatchNorm running statistics) cannot stack: it trains one candidate at a time and each
  result's message says why. So does a task with soft targets (``spec.mixup``): the stacks
  train on class ids, so mixup tasks are routed to ``train_one``, one candidate at a time
  (:data:`MIXUP_ALONE` in each result's message; :func:`pays_off` says False for them).

Results equal ``train_one``'s to rounding (``tests/proxies/population/test_batched.py``, ``tests/proxies/population/test_batched_func.py``:
parameters and losses within 1e-5 after a few steps, every model kind, Adam and SGD). A candidate
that goes non-finite leaves its stack and is re-run alone by ``train_one`` (its status, step and
message are then exactly the sequential ones); the others are untouched, bit for bit
(:mod:`gp_search.proxies.population.loop`).

Memory: a population is cut into balanced chunks of at most ``max_stack_mb`` MiB, from the bytes
one candidate adds to a stack, measured on a probe step
(:func:`gp_search.proxies.population.func.bytes_per_candidate`); default :func:`default_stack_mb`.
Chunking never changes a result (no operation mixes candidates).

When it pays (:func:`pays_off`): on CUDA always (n ≥ 2). On CPU, from
``benchmarks/bench_proxies.py`` on this 2-core machine (figures in ``benchmarks/README.md``):
:data:`CPU_MIN_POPULATION` gives, per model kind, the smallest population that trained faster
stacked than one at a time; MLPs larger than :data:`CPU_MAX_MLP_PARAMS` parameters never did.
An MLP trained with SGD takes the ``torch.func`` path, which ran at 0.5-0.74 of the hand-written
stack's speed on ``digits-mlp`` (per-round medians, ``benchmarks/bench_mlp_paths.py`` paths (c)
and (f)), still several times one at a time; its threshold is the MLP's.
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from gp_search.lang import Loss, loss_scale
from gp_search.proxies import models, train
from gp_search.proxies.population import mlp as batched_mlp
from gp_search.proxies.spec import EvalResult, ProxySpec
from gp_search.proxies.population.func import FuncPopulation, bytes_per_candidate, unstackable
from gp_search.proxies.population.mlp import MlpPopulation
from gp_search.proxies.population.loop import CHECK_EVERY, run

__all__ = ["CHECK_EVERY", "CPU_MAX_MLP_PARAMS", "CPU_MIN_POPULATION", "CPU_STACK_MB",
           "MIXUP_ALONE", "default_stack_mb", "pays_off", "train_population"]

CPU_MIN_POPULATION: dict[str, int] = {"mlp": 2, "cnn1d": 2, "cnn2d": 4, "resnet": 8}
"""Smallest population that :func:`pays_off` batches on CPU, per built-in model kind (a kind not
listed, e.g. a user's, trains one at a time on CPU). One thread, 100 steps, population / one at
a time (``benchmarks/README.md``, a loaded machine): cnn1d 1.2x at P = 2, 2.1-2.3x at 8-128;
cnn2d 1.1x at 2, 1.2x at 4, 1.4-1.8x at 8-128; resnet 1.0-1.1x at 2-4, 1.2-2.0x at 8-128; MLP
5.9-7.2x at 8-128."""
CPU_MAX_MLP_PARAMS = 100_000
"""Largest MLP (parameters per candidate) that :func:`pays_off` batches on CPU."""
CPU_STACK_MB = 64
"""Default memory budget of one stack on CPU (MiB): the stack's working set near the cache
beats one large stack. 64 candidates, 50 steps, one thread, load ~12 (one run each): digits-cnn
(2.0 MiB per candidate) 2.71 cand/s in one stack, 4.25 in chunks of 32, 3.81 in chunks of 16;
digits-resnet (6.7 MiB) 1.68, 1.72, 1.88 (``benchmarks/README.md``)."""
MIXUP_ALONE = ("mixup: soft targets train one candidate at a time (the population stacks "
               "take class ids)")
"""Why a mixup task's candidates trained one at a time (recorded in each result's message)."""
CUDA_STACK_FRACTION = 0.5
"""Default memory budget of one stack on CUDA: this fraction of the device's free memory."""


def default_stack_mb(device: str | torch.device) -> float:
    """The memory budget of one stack on ``device`` when none is given (MiB).

    Returns:
        :data:`CPU_STACK_MB` on CPU; on CUDA :data:`CUDA_STACK_FRACTION` of the free memory.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return CUDA_STACK_FRACTION * free / 2 ** 20
    return float(CPU_STACK_MB)


def pays_off(spec: ProxySpec, n: int, device: str | torch.device) -> bool:
    """Whether :func:`train_population` is the faster way to evaluate ``n`` candidates.

    Args:
        spec: the proxy.
        n: candidates that would train together (same seed).
        device: where they would train.

    Returns:
        True for ``n >= 2`` on CUDA; on CPU for ``n >= CPU_MIN_POPULATION[spec.model]`` and, for
        MLPs, at most :data:`CPU_MAX_MLP_PARAMS` parameters per candidate (module docstring).
    """
    if n < 2 or spec.mixup:  # mixup: soft targets, trained by train_one (MIXUP_ALONE)
        return False
    if torch.device(device).type == "cuda":
        return True
    if n < CPU_MIN_POPULATION.get(spec.model, n + 1):
        return False
    if spec.model != "mlp":
        return True
    try:
        return batched_mlp.params(spec) <= CPU_MAX_MLP_PARAMS
    except Exception:  # noqa: BLE001 - missing files: train_one reports them as a status
        return False


def train_population(spec: ProxySpec, losses: list[Loss], seed: int, steps: int | None = None,
                     device: str = "cpu", *, bf16: bool = False,
                     max_stack_mb: float | None = None) -> list[EvalResult]:
    """Train one copy of the proxy's model per loss, all at once, and score each.

    Args:
        spec: the proxy task.
        losses: the candidates; each trains its own copy of the model.
        seed: initial weights and batch order, shared by every candidate (common random numbers).
        steps: optimiser steps (default ``spec.steps``).
        device: ``"cpu"`` or ``"cuda"``; the data are moved there once and stay.
        bf16: MLP path only: the matrix products in bfloat16 (parameters, Adam, loss in float32).
        max_stack_mb: memory budget of one stack in MiB (default :func:`default_stack_mb`);
            larger populations train in balanced chunks, with the same results.

    Returns:
        One :class:`EvalResult` per loss, in order; equal to ``train_one``'s up to rounding.

    Raises:
        ValueError: ``steps < 1`` or ``max_stack_mb <= 0`` (caller errors, as in ``train_one``).

    Example:
        >>> from gp_search.proxies import get
        >>> from gp_search.lang.losses import REFERENCE
        >>> rs = train_population(get("synthetic-mlp").spec, [REFERENCE["ngl"], REFERENCE["ce"]], 0)
        >>> [r.status for r in rs]
        ['ok', 'ok']
    """
    budget = spec.steps if steps is None else int(steps)
    if budget < 1:
        raise ValueError(f"steps must be >= 1, got {budget}")
    if max_stack_mb is not None and not max_stack_mb > 0:
        raise ValueError(f"max_stack_mb must be > 0 (MiB), got {max_stack_mb!r}")
    losses = list(losses)
    results: list[EvalResult | None] = [None] * len(losses)
    alone = lambda i: train.train_one(spec, losses[i], seed, budget, device)  # noqa: E731
    todo = []
    for i, loss in enumerate(losses):
        try:
            why = train.refusal(loss)
        except Exception:  # noqa: BLE001 - e.g. a constant that folds to inf: train_one says so
            why = "error"
        if why:  # train_one's own 'rejected' / 'error' result, given before any data is loaded
            results[i] = alone(i)
        else:
            todo.append(i)
    dev = torch.device(device)
    try:
        ds = train.dataset_for(spec, dev)
        model = models.build(spec.model, ds.input_shape, ds.num_classes, seed,
                             **dict(spec.model_kw)).to(dev)
        why = MIXUP_ALONE if spec.mixup else unstackable(model)
    except Exception:  # noqa: BLE001 - e.g. missing data files: train_one makes it a status
        model, why = None, None
    if model is None or len(todo) < 2 or why:
        for i in todo:
            res = alone(i)
            results[i] = dataclasses.replace(res, message="; ".join(filter(None, (
                res.message, why)))) if why else res
        return results
    scales = dict.fromkeys(todo, 1.0)
    if spec.optimizer == "sgd":
        for i in list(todo):
            try:
                scales[i] = loss_scale(losses[i])
            except ValueError:  # train_one rejects it, with its message
                results[i] = alone(i)
                todo.remove(i)
        if not todo:
            return results
    mlp = spec.model == "mlp" and spec.optimizer == "adam"
    try:
        per = bytes_per_candidate(model, ds.x_train[:spec.batch_size], spec.optimizer)
        size = int((max_stack_mb or default_stack_mb(dev)) * 2 ** 20 // per)
        if mlp and dev.type == "cpu":  # the hand-written path's cache rule (batched_mlp)
            size = min(size, batched_mlp.CPU_MAX_STACK // batched_mlp.params(spec))
        size = max(1, min(size, len(todo)))
        size = -(-len(todo) // -(-len(todo) // size))  # balanced chunks
    except Exception:  # noqa: BLE001 - the population itself then fails and falls back
        size = max(1, len(todo))
    for chunk in (todo[s:s + size] for s in range(0, len(todo), size)):
        try:
            cands = [losses[i] for i in chunk]
            pop = MlpPopulation(spec, cands, seed, budget, dev, bf16) if mlp else \
                FuncPopulation(spec, cands, seed, budget, dev, model, [scales[i] for i in chunk])
            out = run(pop) if len(chunk) > 1 else [None]
        except Exception as exc:  # noqa: BLE001 - train_one turns each failure into a status
            warnings.warn(f"batched training failed ({type(exc).__name__}: {exc}); training "
                          f"these {len(chunk)} candidates one by one", RuntimeWarning, stacklevel=2)
            out = [None] * len(chunk)
        for i, r in zip(chunk, out):
            results[i] = r if r is not None else alone(i)
    return results
