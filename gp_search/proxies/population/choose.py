"""Population training: P candidate losses of one seed trained together, and when that pays.

:func:`train_population` trains one copy of the proxy's model per candidate, all at once, with
the same initial weights and batch order as the sequential
:func:`gp_search.proxies.train.train_one` (common random numbers), each with its own loss, and
scores each with ``spec.metric``. Three paths, same contract:

* ``mlp`` models trained with Adam: the hand-written stack of
  :mod:`gp_search.proxies.population.mlp` (one flat buffer, GEMMs written out, fused Adam);
* ``cnn1d`` and ``cnn2d`` on the CPU (Adam or SGD): the hand-written convolution stack of
  :mod:`gp_search.proxies.population.conv` (im2col GEMMs, channels last, the first layer one
  wide GEMM);
* every other model and optimiser (``resnet``, dense models, a user's module; the CNNs on CUDA):
  :mod:`gp_search.proxies.population.func` (``torch.func.stack_module_state`` +
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

Which path (:func:`path_for`): by proxy and device alone, never by how many candidates train
together, so that a loss's result for a given (proxy, seed, budget, device) does not depend on
its neighbours or on ``--jobs`` (``tests/proxies/population/test_neighbours.py``: bit for bit alone, beside others
and split across workers). A population of one trains through the stack when that is the path.
On CUDA: the stacks. On CPU, only where a stack was measured never slower than one at a time:
MLPs of at most :data:`CPU_MAX_MLP_PARAMS` parameters trained with Adam take the MLP stack (6-7x
at P = 8-128, ``benchmarks/README.md``; 1.4-2.8x already at P = 1: digits-mlp and synthetic-mlp,
NGL and CE, 3 seeds each, one thread, 300 steps); the :data:`CPU_CONV_MODELS` take the
convolution stack (end to end through ``gp-search evaluate``, 16 losses x 2 seeds, one job:
``benchmarks/bench_conv_paths.py``, figures in ``benchmarks/README.md``; already faster at P = 1);
every other model trains sequentially on CPU (the ``torch.func`` stacks ran at 0.9-1.3x one at a
time there: issue 21, ``bench_conv_paths.py --extra unet,user``; the ``torch.func`` MLP path for
SGD at P = 1 is not measured to pay). :func:`result_key` puts the path, the device kind and TF32 into
the cache key.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import torch

from gp_search.core import environment
from gp_search.lang import Loss, loss_scale
from gp_search.proxies import models, train
from gp_search.proxies.population import mlp as batched_mlp
from gp_search.proxies.spec import EvalResult, ProxySpec, TrainPath
from gp_search.proxies.population.conv import ConvPopulation
from gp_search.proxies.population.conv_layers import plan as conv_plan
from gp_search.proxies.population.func import FuncPopulation, bytes_per_candidate, unstackable
from gp_search.proxies.population.mlp import MlpPopulation
from gp_search.proxies.population.loop import CHECK_EVERY, run

__all__ = ["CHECK_EVERY", "CPU_CONV_MODELS", "CPU_MAX_MLP_PARAMS", "CPU_STACK_MB", "MIXUP_ALONE",
           "default_stack_mb", "path_for", "pays_off", "result_key", "train_population"]

CPU_MAX_MLP_PARAMS = 100_000
"""Largest MLP (parameters per candidate) that takes the stack on CPU (:func:`path_for`); at
~300k parameters stacking gained nothing beyond noise (:mod:`~gp_search.proxies.population.mlp`)."""
CPU_CONV_MODELS = ("cnn1d", "cnn2d")
"""Model kinds that take the hand-written convolution stack on CPU (:mod:`~gp_search.proxies.
population.conv`; Adam or SGD): 2-4x one at a time on ``mnist1d-cnn``, 1.4-1.7x on
``digits-cnn``, from P = 1 (``benchmarks/README.md``)."""
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
        :data:`CPU_STACK_MB` on CPU; on CUDA :data:`CUDA_STACK_FRACTION` of the free memory
        (with this process's cached but unused blocks counted as free).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        # mem_get_info counts this process's cached, unused blocks as used (review 6a).
        free += torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
        # Stays (review 6b, 6c): processes sharing one GPU each take this fraction of the same
        # free memory, and bytes_per_candidate misses the loss program's rows; an OOM halves
        # the chunk and retries (_chunks).
        return CUDA_STACK_FRACTION * free / 2 ** 20
    return float(CPU_STACK_MB)


def path_for(spec: ProxySpec, device: str | torch.device) -> TrainPath:
    """How every candidate of ``spec`` trains on ``device``: by proxy and device alone.

    Args:
        spec: the proxy.
        device: where it trains (``"cpu"``, ``"cuda"``, ``"cuda:N"``).

    Returns:
        :attr:`TrainPath.SEQUENTIAL` for mixup tasks (:data:`MIXUP_ALONE`) and for a model that
        cannot stack (buffers, or data that cannot load: ``train_one`` reports it); on CUDA
        :attr:`TrainPath.MLP_STACK` for an MLP trained with Adam, else
        :attr:`TrainPath.FUNC_STACK`; on CPU the MLP stack for an MLP trained with Adam of at most
        :data:`CPU_MAX_MLP_PARAMS` parameters, the convolution stack for the
        :data:`CPU_CONV_MODELS` that :func:`~gp_search.proxies.population.conv_layers.plan`
        reads, else sequential (module docstring).

    Example:
        >>> from gp_search.proxies import get
        >>> str(path_for(get("digits-mlp").spec, "cpu")), str(path_for(get("digits-cnn").spec, "cpu"))
        ('mlp-stack', 'conv-stack')
    """
    if spec.mixup:  # soft targets, trained by train_one (MIXUP_ALONE)
        return TrainPath.SEQUENTIAL
    mlp = spec.model == "mlp" and spec.optimizer == "adam"
    try:
        if torch.device(device).type == "cuda":
            if mlp:
                return TrainPath.MLP_STACK
            return TrainPath.SEQUENTIAL if _unstackable(spec) else TrainPath.FUNC_STACK
        if mlp and batched_mlp.params(spec) <= CPU_MAX_MLP_PARAMS:
            return TrainPath.MLP_STACK
        if spec.model in CPU_CONV_MODELS and _conv_plan(spec) is None:
            return TrainPath.CONV_STACK
    except Exception:  # noqa: BLE001 - missing files: train_one reports them as a status
        pass
    return TrainPath.SEQUENTIAL


def _unstackable(spec: ProxySpec) -> str | None:
    """Why the proxy's model cannot stack (built on the CPU from seed 0), or None."""
    ds = train.dataset_for(spec)
    return unstackable(models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                                    **dict(spec.model_kw)))


@functools.lru_cache(maxsize=256)
def _conv_plan_cached(key: str, spec: ProxySpec) -> str | None:
    ds = train.dataset_for(spec)
    got = conv_plan(models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                                 **dict(spec.model_kw)))
    return got if isinstance(got, str) else None


def _conv_plan(spec: ProxySpec) -> str | None:
    """Why the proxy's CNN cannot take the convolution stack (``conv.plan``), or None."""
    return _conv_plan_cached(spec.key(), spec)


def pays_off(spec: ProxySpec, n: int, device: str | torch.device) -> bool:
    """Whether ``spec``'s candidates train as a population on ``device``.

    Kept for callers of the proxies' face: ``n`` no longer decides (a loss's result must not
    depend on how many train beside it); this is ``path_for(spec, device) != "sequential"``.

    Args:
        spec: the proxy.
        n: candidates that would train together (ignored).
        device: where they would train.
    """
    return path_for(spec, device) != TrainPath.SEQUENTIAL


def result_key(spec: ProxySpec, device: str | torch.device) -> str:
    """The cache key of ``spec``'s results on ``device``: ``spec.key()``, with the path, the
    device kind and (on CUDA) TF32 appended unless the path is sequential on CPU, so that every
    key written before paths were recorded (CPU, sequential) still hits.

    Example:
        >>> from gp_search.proxies import get
        >>> spec = get("digits-mlp").spec
        >>> result_key(spec, "cpu") == spec.key() + "/mlp-stack-cpu"
        True
    """
    path, kind = path_for(spec, device), torch.device(device).type
    if (path, kind) == (TrainPath.SEQUENTIAL, "cpu"):
        return spec.key()
    tf32 = f"-tf32{'on' if environment.tf32_enabled() else 'off'}" if kind == "cuda" else ""
    return f"{spec.key()}/{path}-{kind}{tf32}"


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
    train.apply_tf32(dev)
    try:
        ds = train.dataset_for(spec, dev)
        model = models.build(spec.model, ds.input_shape, ds.num_classes, seed,
                             **dict(spec.model_kw)).to(dev)
        why = MIXUP_ALONE if spec.mixup else unstackable(model)
    except Exception:  # noqa: BLE001 - e.g. missing data files: train_one makes it a status
        model, why = None, None
    if model is None or not todo or why:  # a population of one still trains as a stack
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
    conv = path_for(spec, dev) == TrainPath.CONV_STACK
    try:
        per = bytes_per_candidate(model, ds.x_train[:spec.batch_size], spec.optimizer)
        size = int((max_stack_mb or default_stack_mb(dev)) * 2 ** 20 // per)
        if mlp and dev.type == "cpu":  # the hand-written path's cache rule (batched_mlp)
            size = min(size, batched_mlp.CPU_MAX_STACK // batched_mlp.params(spec))
        size = max(1, min(size, len(todo)))
        size = -(-len(todo) // -(-len(todo) // size))  # balanced chunks
    except Exception:  # noqa: BLE001 - the population itself then fails and falls back
        size = max(1, len(todo))

    def build(chunk: list[int]):
        cands = [losses[i] for i in chunk]
        if mlp:
            return MlpPopulation(spec, cands, seed, budget, dev, bf16)
        stack = ConvPopulation if conv else FuncPopulation
        return stack(spec, cands, seed, budget, dev, model, [scales[i] for i in chunk])

    for chunk, out in _chunks(todo, size, build):
        for i, r in zip(chunk, out):
            results[i] = r if r is not None else alone(i)
    return results


def _chunks(todo: list[int], size: int, build):
    """Train ``todo`` in chunks of at most ``size`` through ``build(chunk) -> population``:
    yields ``(chunk, results)`` (``None`` entries train alone).

    Out of device memory, the chunk's population is freed and the chunk halved and retried (down
    to one candidate, where the error is raised: the device cannot hold one copy). A device fault
    (:func:`gp_search.proxies.train.device_fault`) is raised, never turned into statuses; any
    other failure trains that chunk one candidate at a time, with a warning.
    """
    queue = [todo[s:s + size] for s in range(0, len(todo), size)]
    while queue:
        chunk = queue.pop(0)
        try:
            out = run(build(chunk))
        except torch.OutOfMemoryError:
            if len(chunk) == 1:
                raise
            out = None
        except Exception as exc:  # noqa: BLE001 - train_one turns each failure into a status
            if train.device_fault(exc):
                raise
            warnings.warn(f"batched training failed ({type(exc).__name__}: {exc}); training "
                          f"these {len(chunk)} candidates one by one", RuntimeWarning, stacklevel=3)
            out = [None] * len(chunk)
        if out is None:  # freed here, once the error's traceback no longer holds the stack
            train.free_device_memory()
            half = -(-len(chunk) // 2)
            warnings.warn(f"out of device memory with {len(chunk)} candidates in one stack; "
                          f"retrying in chunks of {half}", RuntimeWarning, stacklevel=3)
            queue[:0] = [chunk[:half], chunk[half:]]
            continue
        yield chunk, out
