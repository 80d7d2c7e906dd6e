"""Shared checks of the population paths (the MLP stack, the convolution stack and the
torch.func stack), and the losses they are checked with."""

import dataclasses

import torch

from gp_search.lang.expr import parse
from gp_search.lang.losses import REFERENCE, from_expr, loss_scale
from gp_search.proxies import models, train
from gp_search.proxies.population import choose as batched
from gp_search.proxies.train import batch_indices, dataset_for, train_one

LOSSES = [REFERENCE["ngl"], REFERENCE["ce"], REFERENCE["focal"], REFERENCE["ce_l2"],
          from_expr(parse("mul(sub(y_pred, y_real), sub(y_pred, y_real))")),
          from_expr(parse("neg(mul(y_real, plog(add(y_pred, 0.01))))"))]
BAD = from_expr(parse("sub(1, exp(mul(y_pred, 200)))"))  # exp(200 p) overflows after 2 steps


def sgd(spec):
    """``spec`` trained with SGD at ``train.SGD_LR``."""
    return dataclasses.replace(spec, optimizer="sgd", lr=train.SGD_LR)


def built(stack, spec, losses, seed, steps):
    """A population of class ``stack`` (``ConvPopulation``, ``FuncPopulation``) built as
    ``train_population`` builds it, to step by hand."""
    ds = dataset_for(spec)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, seed, **dict(spec.model_kw))
    scales = [loss_scale(c) for c in losses] if spec.optimizer == "sgd" else None
    return stack(spec, losses, seed, steps, torch.device("cpu"), model, scales)


def assert_nan_isolated(spec, good, bad, population, steps):
    """A candidate whose loss goes NaN leaves the others bit for bit unchanged and gets exactly
    the sequential path's result (status, step, message); inside the check interval the NaN
    stays in its own slice. ``population(losses, steps)`` builds a population to step by hand."""
    with_bad = batched.train_population(spec, [good[0], bad, *good[1:]], seed=0)
    without = batched.train_population(spec, good, seed=0)
    assert [r.status for r in with_bad] == ["ok", "nan"] + ["ok"] * (len(good) - 1)
    for r, ref in zip([with_bad[0], *with_bad[2:]], without):
        assert r.same_outcome(ref)  # bit for bit: no operation mixes candidates
    ref = train_one(spec, bad, seed=0)
    assert with_bad[1].same_outcome(ref) and ref.status == "nan" and ref.steps == 2
    pop, alone = population([good[0], bad], steps), population([good[0], good[0]], steps)
    for s in range(steps):
        pop.step(s)
        alone.step(s)
    assert not all(torch.isfinite(t).all() for t in pop.parameters(1))
    for a, b in zip(pop.parameters(0), alone.parameters(0)):
        assert torch.equal(a, b)


def sequential_reference(spec, loss, seed, steps):
    """The sequential training written out as train_one does it; returns the parameters, the
    losses and the gradients of the first step."""
    ds = dataset_for(spec)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, seed, **dict(spec.model_kw))
    params = list(model.parameters())
    weights = [w for w in params if w.dim() > 1]
    scale = 1.0
    if spec.optimizer == "sgd":
        scale = loss_scale(loss)
        opt = torch.optim.SGD(params, lr=spec.lr, momentum=train.SGD_MOMENTUM)
    else:
        opt = torch.optim.Adam(params, lr=spec.lr, fused=True)
    batches = batch_indices(ds.n_train, spec.batch_size, steps, seed)
    values = []
    for s in range(steps):
        v = loss.fn(model(ds.x_train[batches[s]]), ds.y_train[batches[s]])
        if scale != 1.0:
            v = v * scale
        if loss.l2 > 0:
            v = v + loss.l2 / 2 * sum(w.square().sum() for w in weights)
        opt.zero_grad()
        v.backward()
        opt.step()
        values.append(v.item())
        if s == 0:
            first = [p.grad.clone() for p in params]
    return [p.detach() for p in params], values, first
