"""The general population path: P copies of any stackable ``nn.Module`` trained by ``torch.func``.

For one seed, the proxy's model (``models.build(spec.model, …, seed)``: the same initial weights
as the sequential :func:`gp_search.proxies.train.train_one`) is copied P times with
``torch.func.stack_module_state``; one ``vmap(functional_call)`` runs the P copies on the shared
batch (same batch order, ``train.batch_indices``), autograd does one backward pass over the
stack, and one optimiser step updates the stacked tensors: ``torch.optim.Adam`` (fused where
torch has the kernel, as ``train_one``) or ``torch.optim.SGD`` with momentum
``train.SGD_MOMENTUM``, an expression loss multiplied by its scale as ``train_one`` does. Every
optimiser update is element-wise, so one step over the stack is P independent steps.

Losses, per candidate: with class logits ``(N, C)``, candidates with an expression go through one
:class:`~gp_search.proxies.population.programs.LossProgram` (its value and logit gradient, no autograd
graph); the others (``ce``, ``focal``, …, and every candidate of a dense model whose logits are
``(N, C, H, W)``, where the loss decides what to do with ignored pixels) call ``loss.fn`` on their
own slice (:func:`gp_search.proxies.population.loop.fn_grad`). The logit gradients of all candidates
then flow back through the stack in one ``backward``. ``loss.l2`` adds ``λ/2·Σ‖W‖²`` over the
candidate's weight tensors (dimension ≥ 2), as ``train_one``.

Which models stack (:func:`unstackable`): any module whose forward is a function of its
parameters and input. A module with buffers (BatchNorm's running statistics, or any state updated
in place during a forward) does not: the caller trains it one candidate at a time and says why in
each result's message.

Memory: :func:`bytes_per_candidate` measures, on a probe step of two stacked copies, the bytes
autograd saves for the backward pass plus the parameter-sized state (parameters, gradients and
the optimiser's moments); the caller chunks P to its budget (``max_stack_mb``).
"""

from __future__ import annotations

import copy
import math

import torch

from gp_search.proxies import metrics, train
from gp_search.proxies.spec import TrainPath
from gp_search.proxies.population.programs import split
from gp_search.proxies.population.loop import begin, fn_grad


def unstackable(model: torch.nn.Module) -> str | None:
    """Why P copies of ``model`` cannot train as one ``torch.func`` stack, or None when they can.

    Args:
        model: the proxy's model as built (``models.build`` or a user's module).

    Returns:
        A sentence for the results' messages, or None.
    """
    buffers = [name for name, _ in model.named_buffers()]
    if buffers:
        shown = ", ".join(buffers[:3]) + (", …" if len(buffers) > 3 else "")
        return (f"trained one at a time: the model has buffers ({shown}), e.g. BatchNorm running "
                f"statistics, updated in place during training, which a stacked population "
                f"cannot share")
    return None


def bytes_per_candidate(model: torch.nn.Module, x: torch.Tensor, optimizer: str) -> int:
    """Device memory one more candidate adds to a stack, measured on one probe step.

    Two stacked copies of ``model`` run forward on ``x`` (a training batch); the bytes of the
    distinct tensors autograd saves for the backward pass are counted and halved, then the
    parameter-sized state is added: parameters and gradients, and Adam's two moments (SGD: one
    momentum buffer), plus the logits and their gradient.

    Args:
        model: the proxy's model, on ``x``'s device.
        x: one training batch.
        optimizer: ``"adam"`` or ``"sgd"``.

    Returns:
        Bytes per candidate.
    """
    params, _ = torch.func.stack_module_state([model, model])
    skeleton = copy.deepcopy(model).to("meta")
    saved: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[(t.untyped_storage().data_ptr(), t.storage_offset(), t.shape)] = t.nbytes
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        logits = torch.func.vmap(lambda p: torch.func.functional_call(skeleton, p, (x,)))(params)
    n_params = sum(p.numel() for p in model.parameters())
    state = (2 + (2 if optimizer == "adam" else 1)) * n_params * 4
    return int(sum(saved.values()) / 2 + state + logits[0].nbytes * 2)


class FuncPopulation:
    """The stacked state of one ``torch.func`` training: parameters, optimiser, histories.

    Args:
        spec, losses, seed, budget: the proxy, the candidates (none refused), the seed and steps.
        dev: the device; the data live there (``train.dataset_for``).
        model: the proxy's model built from ``seed`` (CPU or ``dev``); :func:`unstackable` None.
        scales: per candidate, the SGD scale of its loss (``lang.losses.loss_scale``; 1 for Adam).
    """

    path = TrainPath.FUNC_STACK

    def __init__(self, spec, losses, seed, budget, dev, model, scales=None):
        begin(self, spec, losses, seed, budget, dev, scales)
        ds = self.ds
        model = model.to(dev)
        self.skeleton = copy.deepcopy(model).to("meta")
        self.weights = {name for name, p in model.named_parameters() if p.dim() > 1}
        params, _ = torch.func.stack_module_state([model] * len(losses))
        self.forward = torch.func.vmap(self._call, in_dims=(0, None))
        self._set(params, {})
        # One-hot targets of every step, classes first like the program's (P, C, B) stack; only
        # class labels (not dense ones) go through the program.
        self.t = None if self.y.dim() != 2 else \
            torch.nn.functional.one_hot(self.y, ds.num_classes).transpose(1, 2).float()
        self._compile()

    def _call(self, params: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(self.skeleton, params, (x,))

    # -- state -----------------------------------------------------------------------------------
    def _set(self, params: dict, state: dict) -> None:
        """New stacked leaf parameters and an optimiser over them carrying ``state`` (by name)."""
        self.params, self.n = params, len(self.alive)
        plist = list(params.values())
        if self.spec.optimizer == "sgd":
            self.opt = torch.optim.SGD(plist, lr=self.spec.lr, momentum=train.SGD_MOMENTUM)
        else:
            self.opt = torch.optim.Adam(plist, lr=self.spec.lr,
                                        fused=self.dev.type in ("cpu", "cuda") or None)
        for name, p in params.items():
            if name in state:
                self.opt.state[p] = state[name]

    def keep(self, slots: torch.Tensor) -> None:
        """Keep only these stack slots (their parameters and optimiser state)."""
        idx = slots.to(self.dev)
        pick = lambda t: t.index_select(0, idx) if t.dim() > 0 else t.clone()  # noqa: E731
        state = {name: {k: pick(v) for k, v in self.opt.state[p].items()}
                 for name, p in self.params.items() if p in self.opt.state}
        params = {name: pick(p.detach()).requires_grad_(True) for name, p in self.params.items()}
        self.alive = self.alive[slots]
        self.lam, self.scale = pick(self.lam), pick(self.scale)
        self._set(params, state)
        self._compile()

    def _compile(self) -> None:
        """Split the live slots into the expression program and per-candidate ``loss.fn`` calls."""
        self.program, self.expr_idx, self.fn_slots = split(
            [self.losses[int(c)] for c in self.alive], self.dev, exprs=self.t is not None)
        self.l2 = bool((self.lam > 0).any())
        self.sgd_scaled = bool((self.scale != 1).any())
        self.hist_cols = self.alive.to(self.dev)

    # -- one step ----------------------------------------------------------------------------------
    def _loss_grad(self, logits: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-candidate loss ``(n,)`` and its gradient w.r.t. the logits ``(n, N, C, …)``."""
        y = self.y[step]
        if self.program is not None and self.expr_idx is None:  # all expressions: no copies
            p = torch.softmax(logits.transpose(1, 2), dim=1)
            value = self.program.losses(p, self.t[step])
            dl = torch._softmax_backward_data(self.program.backward(), p, 1, p.dtype)
            return value, dl.transpose(1, 2)
        value = torch.empty(self.n, dtype=logits.dtype, device=logits.device)
        dlogits = torch.empty_like(logits)
        if self.program is not None:
            p = torch.softmax(logits.index_select(0, self.expr_idx).transpose(1, 2), dim=1)
            value.index_copy_(0, self.expr_idx, self.program.losses(p, self.t[step]))
            dl = torch._softmax_backward_data(self.program.backward(), p, 1, p.dtype)
            dlogits.index_copy_(0, self.expr_idx, dl.transpose(1, 2))
        for s in self.fn_slots:
            got = fn_grad(self.losses[int(self.alive[s])], logits[s], y)
            value[s], dlogits[s] = (math.nan, 0.0) if got is None else got
        return value, dlogits

    def step(self, step: int) -> None:
        """One optimiser step of every live candidate (no host sync)."""
        x = self.ds.x_train.index_select(0, self.batches[step])
        logits = self.forward(self.params, x)
        value, dlogits = self._loss_grad(logits.detach(), step)
        if self.sgd_scaled:  # SGD: the loss times its scale, as train_one
            value = value * self.scale
            dlogits = dlogits * self.scale.view(-1, *[1] * (dlogits.dim() - 1))
        # Non-finite logit gradients make this sum non-finite (checked every CHECK_EVERY steps).
        self.grad_hist[step].index_copy_(0, self.hist_cols, dlogits.flatten(1).sum(1))
        outputs, grads = [logits], [dlogits]
        if self.l2:  # λ/2·Σ‖W‖² per candidate (λ = 0 adds exact zeros to the others)
            penalty = sum(self.params[name].square().flatten(1).sum(1) for name in self.weights)
            penalty = self.lam / 2 * penalty
            value = value + penalty.detach()
            outputs.append(penalty.sum())
            grads.append(None)
        self.opt.zero_grad(set_to_none=True)
        torch.autograd.backward(outputs, grads)
        self.opt.step()
        self.loss_hist[step].index_copy_(0, self.hist_cols, value.detach())

    # -- checks, evaluation ------------------------------------------------------------------------
    @torch.no_grad()
    def param_max(self) -> torch.Tensor:
        """Largest parameter magnitude of each live slot, ``(n,)``."""
        return torch.stack([p.flatten(1).abs().amax(1) for p in self.params.values()]).amax(0)

    @torch.no_grad()
    def scores(self) -> list[tuple[float, dict]]:
        """``spec.metric`` of each live slot on the held-out split (one confusion matrix each,
        as ``train.held_out_score``) and its calibration figures; chunks of the training batch
        size keep memory within what training used."""
        x, y, classes = self.ds.x_test, self.ds.y_test, self.ds.num_classes
        chunk = max(1, min(self.spec.eval_batch, self.spec.batch_size))
        self.skeleton.eval()  # as held_out_score (the same for every module that stacks)
        kept = [] if train.calibrates(self.spec, self.ds) else None
        cms = metrics.chunked_confusion(lambda xb: self.forward(self.params, xb), x, y, classes,
                                        chunk, population=self.n, kept=kept)  # logits (n, B, C)
        self.skeleton.train()
        return train.slot_scores(self.spec, cms, kept, y)

    def parameters(self, slot: int) -> list[torch.Tensor]:
        """Slot ``slot``'s parameters in ``model.parameters()`` order (for tests and inspection)."""
        return [p[slot].detach() for p in self.params.values()]
