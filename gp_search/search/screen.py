"""Rejection before training: structural, numeric and behavioural checks that cost milliseconds.

Most random trees cannot teach a network anything. A candidate is rejected — status
``rejected``, worst fitness, no training — when it fails, in order:

1. **structural**: it must depend on ``y_pred`` (else no gradient reaches the network) and on
   ``y_real`` (else it cannot know the right class); its constants must fold to finite numbers
   that float32 can hold (it compiles).
2. **numeric**: in float32, as it will train, its value and its gradient w.r.t. the logits must be
   finite on a probe batch that includes extreme probabilities (softmax of logits up to ±60, so
   p from ~1e-26 to 1), and the gradient must not vanish (norm ≥ ``GRAD_FLOOR``).
3. **behavioural** (the rejection protocol of EvoMAL / AutoLoss-Zero, our constants): optimise a
   free batch of logits directly with the loss — 64 samples, 10 classes, logits from N(0, 1)
   (fixed generator), random targets, Adam lr 0.1, up to 40 steps (checked every 10) — and
   require the accuracy of the argmax to reach at least 0.8 (chance is 0.1; CE and NGL reach 1.0). A loss that does not pull
   predictions towards the target is useless as a training signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gp_search.lang.expr import GRAD_FLOOR, ExprError, LossExpr

BEHAVIOUR_SAMPLES, BEHAVIOUR_CLASSES, BEHAVIOUR_STEPS, BEHAVIOUR_LR = 64, 10, 40, 0.1
BEHAVIOUR_MIN_ACCURACY = 0.8


@dataclass(frozen=True)
class Verdict:
    """Outcome of screening: ``passed``, else the check that failed and why."""

    passed: bool
    check: str = ""
    message: str = ""


def _numeric_probes() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    k = 10
    rows = [torch.randn(16, k, generator=g) * s for s in (0.1, 1.0, 5.0, 20.0)]
    extreme = torch.zeros(4, k)
    extreme[0, 0], extreme[1, 3], extreme[2, :] = 60.0, -60.0, torch.linspace(-30, 30, k)
    extreme[3, 5] = 30.0
    logits = torch.cat(rows + [extreme])
    target = torch.randint(0, k, (logits.shape[0],), generator=g)
    target[-4:] = torch.tensor([0, 0, 9, 2])  # extreme rows with right and wrong targets
    return logits, target


_NUMERIC = _numeric_probes()


def _behaviour_batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(4321)
    logits = torch.randn(BEHAVIOUR_SAMPLES, BEHAVIOUR_CLASSES, generator=g)
    target = torch.randint(0, BEHAVIOUR_CLASSES, (BEHAVIOUR_SAMPLES,), generator=g)
    return logits, target


_BEHAVIOUR = _behaviour_batch()
_BEHAVIOUR_ONEHOT = torch.nn.functional.one_hot(_BEHAVIOUR[1], BEHAVIOUR_CLASSES).float()


def structural(expr: LossExpr) -> Verdict:
    try:
        pred, real = expr.depends_on_pred, expr.depends_on_target
        expr.elementwise  # noqa: B018 - compiling refuses constants outside float32's range
    except ExprError as exc:
        return Verdict(False, "structural", str(exc))
    if not pred:
        return Verdict(False, "structural", "does not depend on y_pred: no gradient reaches the network")
    if not real:
        return Verdict(False, "structural", "does not depend on y_real: cannot know the right class")
    return Verdict(True)


def numeric(expr: LossExpr) -> Verdict:
    logits, target = _NUMERIC
    z = logits.clone().requires_grad_(True)
    with torch.enable_grad():
        value = expr.to_torch()(z, target)
        if not torch.isfinite(value):
            return Verdict(False, "numeric", f"loss is {value.item()} on the probes (float32)")
        if not value.requires_grad:
            return Verdict(False, "numeric", "loss has no gradient w.r.t. the logits")
        (grad,) = torch.autograd.grad(value, z)
    if not torch.isfinite(grad).all():
        return Verdict(False, "numeric", "gradient is not finite on the probes (float32)")
    if grad.norm() < GRAD_FLOOR:
        return Verdict(False, "numeric", "gradient vanishes on the probes")
    return Verdict(True)


def _accuracy(z: torch.Tensor, target: torch.Tensor) -> float:
    return (z.argmax(1) == target).float().mean().item()


def behavioural(expr: LossExpr) -> Verdict:
    logits, target = _BEHAVIOUR
    z = logits.clone()
    m, v = torch.zeros_like(z), torch.zeros_like(z)
    f, t = expr.elementwise, _BEHAVIOUR_ONEHOT
    b1, b2 = 0.9, 0.999
    for step in range(1, BEHAVIOUR_STEPS + 1):
        # Adam written out: torch.optim's per-step overhead is 10x this whole check.
        zz = z.requires_grad_(True)
        with torch.enable_grad():
            value = f(torch.softmax(zz, dim=1), t).mean()
            if not torch.isfinite(value):
                return Verdict(False, "behavioural", "loss became non-finite while optimising logits")
            (g,) = torch.autograd.grad(value, zz)
        m.mul_(b1).add_(g, alpha=1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
        z = (z.detach() - BEHAVIOUR_LR * m_hat / (v_hat.sqrt() + 1e-8))
        if step % 10 == 0 and _accuracy(z, target) >= BEHAVIOUR_MIN_ACCURACY:
            return Verdict(True)  # good losses get there early; no need to run all steps
    acc = _accuracy(z, target)
    if acc < BEHAVIOUR_MIN_ACCURACY:
        return Verdict(False, "behavioural",
                       f"optimising logits with it reaches accuracy {acc:.2f} < "
                       f"{BEHAVIOUR_MIN_ACCURACY} (it does not pull predictions to the target)")
    return Verdict(True)


def screen(expr: LossExpr) -> Verdict:
    """Run the checks in order of cost; the first failure decides.

    Returns:
        A :class:`Verdict`; never raises for a bad expression.

    Example:
        >>> from gp_search import NGL
        >>> screen(NGL).passed
        True
    """
    try:
        for check in (structural, numeric, behavioural):
            verdict = check(expr)
            if not verdict.passed:
                return verdict
    except (ExprError, RuntimeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        return Verdict(False, "error", f"{type(exc).__name__}: {exc}")
    return Verdict(True)
