"""The short training loop for one loss (sequential path): a proxy's budget in, an EvalResult out.

One evaluation builds the proxy's model from the seed, trains it with the spec's optimiser on
batches drawn from the seed, and measures held-out accuracy. The same seed gives every candidate the same initial
weights (:func:`gp_search.proxies.models.build`) and the same batch order (:func:`batch_indices`): common
random numbers, so candidates are compared on equal terms.

Failure is a status (see :mod:`gp_search.proxies.spec`), decided by these rules:

* ``rejected`` — the loss is an expression that does not depend on ``y_pred``, or that cannot
  be compiled for float32 (a constant outside its range); nothing trains (:func:`refusal`).
* ``nan`` — the loss value, or some gradient entry, is non-finite at some step; stops there
  (``steps`` counts the steps completed before it).
* ``diverged`` — after an optimiser step with finite gradients, some parameter is non-finite or
  larger in magnitude than :data:`PARAM_LIMIT`; stops there.
* ``timeout`` — the wall time since the evaluation started passed ``spec.time_limit`` (checked
  after every step). The clock, and ``seconds`` in the result, start once the data are in place:
  data are loaded once per process for all evaluations (:func:`dataset_for`).
* ``error`` — any exception (the message says which); nothing is raised for a bad loss. A
  device fault is not a property of the loss and is raised, never cached as a status
  (:func:`device_fault`: out of device memory, a sticky CUDA error, a device that cannot be used).

Precision on CUDA is chosen, not inherited: TF32 is off unless ``GP_SEARCH_TF32=1``
(:func:`gp_search.core.environment.tf32_enabled`; off keeps float32 arithmetic, as on the CPU), set at the start of each
training (:func:`apply_tf32`) and recorded in the cache key and ``env.json``.

The checks cost one fused max-norm over the parameters and one host synchronisation per step
(loss and norm fetched together): Adam turns a non-finite gradient entry into a non-finite
parameter, so a finite parameter norm proves the gradients were finite, and the gradients are
only inspected (to tell ``nan`` from ``diverged``) once the norm is bad (SGD likewise: a
non-finite gradient makes its parameter non-finite).

Optimiser (``spec.optimizer``): ``"adam"`` — ``torch.optim.Adam`` (fused), the loss as it is;
every registered proxy. ``"sgd"`` — ``torch.optim.SGD`` with momentum :data:`SGD_MOMENTUM`, no
weight decay, and an expression loss multiplied by its scale s
(:func:`gp_search.lang.losses.loss_scale`: CE's logit-gradient norm on a fixed probe; reference
losses keep s = 1), because under SGD the scale of a loss is its learning rate; ``train_loss``
is then the scaled loss. A loss with no usable scale is ``rejected``. SGD needs a larger ``lr``
than Adam: :data:`SGD_LR` was chosen with CE from {0.01, 0.03, 0.1, 0.3} (benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import time
from collections.abc import Callable, Iterator

import torch

from gp_search.core import environment
from gp_search.lang import ExprError, Loss, loss_scale
from gp_search.proxies import calibration, metrics, models
from gp_search.proxies.data import Dataset, load, mix, mixup_plan, transform, validation_split
from gp_search.proxies.spec import TRANSFORM_DEFAULTS, EvalResult, ProxySpec

PARAM_LIMIT = 1e4
"""Largest parameter magnitude a healthy training reaches. Initial weights are below 1 and Adam
moves a parameter by about ``lr`` (at most ~3·lr) per step, so with the registered budgets
(lr ≤ 3e-3, ≤ 1000 steps) no parameter can honestly get past a few units; 1e4 means blow-up."""

SGD_MOMENTUM = 0.9
SGD_LR = 0.1
"""Learning rate to give a proxy with ``optimizer="sgd"`` (``proxies.get(name, optimizer="sgd",
lr=SGD_LR)``): the best of {0.01, 0.03, 0.1, 0.3} for CE on digits-mlp and mnist1d-cnn."""

TAIL_FRACTION = 0.1
"""``train_loss`` is the mean loss over this last fraction of the steps taken."""

_DATA: dict[tuple, Dataset] = {}


def apply_tf32(device: str | torch.device) -> None:
    """Set torch's TF32 switches to ``environment.tf32_enabled()`` before a training on CUDA (torch's own
    defaults differ between matmuls and cuDNN convolutions); nothing on other devices."""
    if torch.device(device).type == "cuda":
        on = environment.tf32_enabled()
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on


def device_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the device's fault, not the loss's: out of device memory or a
    (sticky) accelerator error. Trainings raise these instead of caching them as ``error``."""
    return isinstance(exc, (torch.OutOfMemoryError, torch.AcceleratorError))


def free_device_memory() -> None:
    """Collect garbage and return the CUDA caching allocator's unused blocks (after an
    out-of-memory error, before a smaller retry)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread, then restore the previous setting.

    Every evaluation runs this way (``Proxy.evaluate``, ``gp_search.parallel.evaluate`` in-process and in
    workers): results then do not depend on the process's thread count (it changes reduction
    order), and parallelism comes from evaluating candidates side by side. The proxies' nets are
    too small to gain from intra-op threads; on a shared 2-core machine two threads made a
    100-step training about 100x slower than one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str | torch.device = "auto") -> str:
    """A device name torch accepts, with ``"auto"`` meaning CUDA when available, else CPU.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, … or a ``torch.device``.

    Returns:
        The device as text (what crosses process boundaries), e.g. ``"cpu"``.

    Raises:
        ValueError: an unknown device, CUDA asked for where there is none, or ``cuda:N`` past
            the devices torch sees.
    """
    if str(device) == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} asked for, but CUDA is not available here; "
                         f"use cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {str(device)!r} asked for, but torch sees "
                         f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 .. "
                         f"cuda:{torch.cuda.device_count() - 1}); use one of those, cuda or auto")
    return str(dev)


def dataset_for(spec: ProxySpec, device: str | torch.device = "cpu") -> Dataset:
    """The proxy's dataset as tensors on ``device``, loaded once per process.

    Args:
        spec: the proxy (its ``dataset``, ``data_root`` and ``split``: with ``"val"`` the
            training split cut by :func:`gp_search.proxies.data.dataset.validation_split`; then its task
            transform, :func:`gp_search.proxies.data.transforms.transform`).
        device: where the tensors live.

    Returns:
        The cached :class:`gp_search.proxies.data.dataset.Dataset`; treat it as read-only.

    Raises:
        FileNotFoundError: a file-backed dataset is not under ``spec.data_root``.
    """
    task = {name: getattr(spec, name) for name in TRANSFORM_DEFAULTS}
    key = (spec.dataset, spec.data_root, str(torch.device(device)), spec.split,
           tuple(task.items()))
    if key not in _DATA:
        if spec.split == "val":
            untouched = dataclasses.replace(spec, split="test", **TRANSFORM_DEFAULTS)
            full = dataset_for(untouched, device)
            base = validation_split(full)
        else:
            base = load(spec.dataset, spec.data_root).to(device)
        # After the validation cut: noise and subsampling touch only what trains.
        _DATA[key] = transform(base, **task)
    return _DATA[key]


def batch_indices(n_train: int, batch_size: int, steps: int, seed: int) -> torch.Tensor:
    """The batch order of one training: a fresh permutation per epoch, drawn from ``seed``.

    Each epoch is cut into ``n_train // batch_size`` consecutive batches; the incomplete tail
    batch is dropped, so every batch has exactly ``batch_size`` samples.

    Args:
        n_train: training-set size.
        batch_size: samples per batch (at most ``n_train``).
        steps: number of batches.
        seed: seeds a private ``torch.Generator``; the global RNG is untouched.

    Returns:
        int64 tensor ``(steps, batch_size)`` of training-sample indices (on CPU).

    Raises:
        ValueError: ``batch_size`` outside ``1 .. n_train`` or negative ``steps``.

    Example:
        >>> batch_indices(10, 4, 3, seed=0).shape
        torch.Size([3, 4])
    """
    if not 1 <= batch_size <= n_train:
        raise ValueError(f"batch_size must lie in 1..n_train={n_train}, got {batch_size}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    per_epoch = n_train // batch_size
    epochs = -(-steps // per_epoch)
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    perms = [torch.randperm(n_train, generator=gen)[:per_epoch * batch_size]
             for _ in range(epochs)]
    if not perms:
        return torch.empty(0, batch_size, dtype=torch.int64)
    return torch.cat(perms).view(-1, batch_size)[:steps]


@torch.no_grad()
def held_out_score(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int,
                   num_classes: int, metric: str = "accuracy",
                   kept: list | None = None) -> float:
    """``metric`` of the model's predictions of ``x`` against ``y`` (eval mode, ``chunk`` samples
    at a time, one confusion matrix over all of them: :mod:`gp_search.proxies.metrics`); each
    chunk's logits are appended to ``kept`` (on the CPU) when a list is given."""
    model.eval()
    return metrics.score(metric, metrics.chunked_confusion(model, x, y, num_classes, chunk,
                                                           kept=kept))


def slot_scores(spec: ProxySpec, cms: torch.Tensor, kept: list | None,
                y: torch.Tensor) -> list[tuple[float, dict]]:
    """A population's held-out results: per slot, ``spec.metric`` of its confusion matrix
    (``cms[slot]``) and the calibration figures of its logits (``kept``: per chunk, ``(n, B,
    C)``; None: not measured)."""
    logits = torch.cat(kept, dim=1) if kept else None
    return [(metrics.score(spec.metric, cm),
             calibration.measure(logits[slot], y) if logits is not None else {})
            for slot, cm in enumerate(cms)]


def calibrates(spec: ProxySpec, ds: Dataset) -> bool:
    """Whether a training measures calibration (:mod:`gp_search.proxies.calibration`): on a
    test split of one label per sample. A search's fitness trainings (the validation split)
    skip it: the temperature fit would cost up to 40 % of a 100-class proxy's training and
    decides nothing there."""
    return spec.split == "test" and ds.y_test.dim() == 1


def train_one(spec: ProxySpec, loss: Loss, seed: int, steps: int | None = None,
              device: str | torch.device = "cpu", dataset: Dataset | None = None,
              on_trained: Callable[[torch.nn.Module, Dataset], None] | None = None
              ) -> EvalResult:
    """Train the proxy's model with ``loss`` for the budget and score it on its held-out split
    (``spec.split``: the test split, or the validation part of the training split).

    Args:
        spec: the proxy task.
        loss: the loss (``loss.fn(logits, target)``; ``loss.l2`` adds ``λ/2·Σ‖w‖²`` over weight
            matrices and kernels, not biases).
        seed: decides the initial weights and the batch order.
        steps: optimiser steps (default ``spec.steps``); successive halving asks for fewer.
        device: ``"cpu"``, ``"cuda"``, ``"auto"``, …; the data and the model live there.
        dataset: the data to use instead of :func:`dataset_for` (already on ``device``).
        on_trained: called as ``on_trained(model, dataset)`` after a training that finished
            its budget, before scoring (e.g. to collect test probabilities for calibration).

    Returns:
        An :class:`EvalResult`; ``steps`` is the steps taken, ``budget`` the steps asked for.
        Never raises for a bad loss (see the module docstring for the status rules).

    Raises:
        ValueError: ``steps < 1`` or an unusable device (caller errors, not properties of the
            loss).
        torch.OutOfMemoryError, torch.AcceleratorError: device faults (:func:`device_fault`).

    Example:
        >>> from gp_search.proxies import get
        >>> from gp_search.lang.losses import REFERENCE
        >>> train_one(get("synthetic-mlp").spec, REFERENCE["ce"], seed=0).status
        'ok'
    """
    budget = spec.steps if steps is None else int(steps)
    device = resolve_device(device)
    if budget < 1:
        raise ValueError(f"steps must be >= 1, got {budget}")
    report = _Report(loss=loss.name, proxy=spec.name, seed=int(seed), budget=budget,
                     metric=spec.metric)
    try:
        why = refusal(loss)
        if why:
            return report("rejected", 0, why)
        ds = dataset if dataset is not None else dataset_for(spec, device)
        report.restart()  # data load once per process for every evaluation: not this one's time
        apply_tf32(device)
        return _train(spec, loss, seed, budget, torch.device(device), ds, report, on_trained)
    except Exception as exc:  # noqa: BLE001 - a bad loss (or data) is a status, never a crash
        if device_fault(exc):  # the device's fault: caching it would blame the loss
            raise
        return report("error", 0, f"{type(exc).__name__}: {exc}")


def refusal(loss: "Loss") -> str | None:
    """Why ``loss`` is ``rejected`` before any training, or None: its expression cannot be
    compiled for float32 (a constant outside float32's range) or does not depend on ``y_pred``.

    Raises:
        ExprError: the expression's constants do not fold to finite numbers (SymPy's view).
    """
    if loss.expr is None:
        return None
    try:
        loss.expr.elementwise  # noqa: B018 - compiling refuses what float32 cannot hold
    except ExprError as exc:
        return f"the loss {loss.name!r} cannot train in float32: {exc}"
    if not loss.expr.depends_on_pred:
        return f"the loss {loss.name!r} does not depend on y_pred"
    return None


class _Report:
    """Makes the EvalResult of one training; ``seconds`` counts from the last :meth:`restart`."""

    def __init__(self, **common):
        self.common = common
        self.start = time.perf_counter()

    def restart(self) -> None:
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, status: str, done: int, message: str = "", acc: float = math.nan,
                 train_loss: float = math.nan, **figures: float) -> EvalResult:
        return EvalResult(status, acc, train_loss, done, self.elapsed(), message, **self.common,
                          **figures)


def _train(spec: ProxySpec, loss: Loss, seed: int, budget: int, device: torch.device,
           ds: Dataset, report: _Report, on_trained=None) -> EvalResult:
    model = models.build(spec.model, ds.input_shape, ds.num_classes, seed,
                         **dict(spec.model_kw)).to(device)
    params = list(model.parameters())
    weights = [p for p in params if p.dim() > 1]
    scale = 1.0
    if spec.optimizer == "sgd":
        try:
            scale = loss_scale(loss)
        except ValueError as exc:
            return report("rejected", 0, str(exc))
        opt = torch.optim.SGD(params, lr=spec.lr, momentum=SGD_MOMENTUM)
    else:
        # Fused Adam: one kernel for all parameters, where torch has one for the device.
        opt = torch.optim.Adam(params, lr=spec.lr, fused=device.type in ("cpu", "cuda") or None)
    batches = batch_indices(ds.n_train, spec.batch_size, budget, seed).to(device)
    x, y = ds.x_train, ds.y_train
    if spec.mixup:
        if y.dim() > 1:
            raise ValueError(f"mixup needs one label per sample; {ds.name} has per-pixel labels")
        lam, partner = (t.to(device) for t in mixup_plan(spec.batch_size, budget,
                                                                spec.mixup, seed))
    history = []
    for step in range(budget):
        idx = batches[step]
        if spec.mixup:  # probability targets: every loss takes (N, C) targets as well as ids
            xb, yb = mix(x[idx], y[idx], ds.num_classes, lam[step], partner[step])
            value = loss.fn(model(xb), yb)
        else:
            value = loss.fn(model(x[idx]), y[idx])
        if scale != 1.0:  # SGD only: the loss's scale is its learning rate (module docstring)
            value = value * scale
        if loss.l2 > 0:  # ce_l2: the penalty needs the weights, which only the training has
            value = value + loss.l2 / 2 * sum(w.square().sum() for w in weights)
        opt.zero_grad(set_to_none=True)
        value.backward()
        opt.step()
        # Adam turns any non-finite gradient into a non-finite parameter, so one fused norm of
        # the parameters, fetched with the loss in one host sync, watches all three.
        param_max = torch.nn.utils.get_total_norm(params, norm_type=math.inf)
        v, pmax = torch.stack([value.detach(), param_max]).tolist()
        if not math.isfinite(v):
            return report("nan", step, f"non-finite loss {v} at step {step + 1}")
        if not pmax <= PARAM_LIMIT:  # also true for NaN
            if not all(torch.isfinite(p.grad).all() for p in params if p.grad is not None):
                return report("nan", step, f"non-finite gradient at step {step + 1}")
            return report("diverged", step + 1, f"parameter magnitude {pmax:.3g} after step "
                                                f"{step + 1} (limit {PARAM_LIMIT:g})")
        history.append(v)
        if report.elapsed() > spec.time_limit:
            return report("timeout", step + 1, timeout_message(spec, step + 1, budget),
                          train_loss=_tail_mean(history))
    if on_trained is not None:
        on_trained(model, ds)
    kept: list | None = [] if calibrates(spec, ds) else None
    acc = held_out_score(model, ds.x_test, ds.y_test, spec.eval_batch, ds.num_classes,
                         spec.metric, kept)
    figures = calibration.measure(torch.cat(kept), ds.y_test) if kept else {}
    return report("ok", budget, acc=acc, train_loss=_tail_mean(history), **figures)


def tail_length(steps: int) -> int:
    """How many of the last of ``steps`` losses ``train_loss`` averages (:data:`TAIL_FRACTION`)."""
    return max(1, math.ceil(TAIL_FRACTION * steps))


def timeout_message(spec: ProxySpec, done: int, budget: int) -> str:
    """The message of a training stopped by ``spec.time_limit`` after ``done`` steps."""
    return f"passed the time limit of {spec.time_limit:g} s after {done} of {budget} steps"


def _tail_mean(history: list[float]) -> float:
    tail = history[-tail_length(len(history)):]
    return sum(tail) / len(tail) if tail else math.nan
