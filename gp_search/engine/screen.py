"""Rejection before training: structural, numeric and behavioural checks that cost milliseconds.

Most random trees cannot teach a network anything. A candidate is rejected — status
``rejected``, worst fitness, no training — when it fails, in order:

1. **structural**: it must depend on ``y_pred`` (else no gradient reaches the network) and on
   ``y_real`` (else it cannot know the right class); its constants must fold to finite numbers
   that float32 can hold (it compiles).
2. **numeric**: in float32, as it will train, its value and its gradient w.r.t. the logits must be
   finite on a probe batch that includes extreme probabilities (softmax of logits up to ±60, so
   p from ~1e-26 to 1), and the gradient must not vanish (norm ≥ ``GRAD_FLOOR``), at every class
   count of :data:`CLASSES`.
3. **behavioural** (the rejection protocol of EvoMAL / AutoLoss-Zero, our constants): optimise a
   free batch of logits directly with the loss — 64 samples, logits from N(0, 1) (fixed
   generator), random targets, Adam lr 0.1, up to 40 steps (checked every 10) — and require the
   accuracy of the argmax to reach at least 0.8 at every class count of :data:`CLASSES` (chance
   is 1/K; CE and NGL reach 1.0). A loss that does not pull predictions towards the target is
   useless as a training signal.

Not a rejection, a bar for the hall of fame: **hard examples** (:func:`hard_examples`). On a
long-tailed label set (frequencies falling 20:1), class biases optimised with the loss must keep
every class at a third of its frequency or more. A loss whose logit gradient vanishes on hard
examples (a bounded loss of the target's probability, e.g.
``exp(-8.24*y_pred*y_real*cos(y_real))``, which won short balanced proxies and lost 24 points to
CE on a long-tailed training set) lets the common classes' push drive the rare ones'
probability towards 0. The search may breed from such losses, but its hall of fame (so its top
5, the transfer stage and ``best.py``) admits none (:class:`gp_search.engine.hall_of_fame.HallOfFame`).
Why not reject them here by default: it turns away most of the initial trees that pass checks
1-3 (4 of 5 of the quick preset's, 0 of 300 random extended-set trees pass all four), so
initialisation needs ten times the draws (``SearchConfig.screen_hard_examples`` makes it a
rejection: no training is spent on such a loss and selection never breeds from one). ``benchmarks/bench_hard_examples.py`` measures its cost and what it
rejects.

Why several class counts: a loss of ``y_pred`` and ``y_real`` sees K only through the softmax,
and what pulls the right class up at K = 10 can push it down at K = 2 (where p_t > 0.5 is
common) — e.g. ``0.326933*exp(y_pred*y_real + exp(y_pred) - sin(y_real))``, found by a
10-class search, passes here at K = 10 and reaches accuracy 0.14 at K = 2. Each check runs all class counts
in one pass: the loss is elementwise, so the probes of every K are flattened into one tensor and
the loss is evaluated once per step; Adam is elementwise too, so each K's logits follow exactly
the path they would alone. ``benchmarks/bench_screen.py`` measures the cost and what it rejects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gp_search.lang import GRAD_FLOOR, ExprError, LossExpr

CLASSES = (2, 3, 10, 100)
"""Class counts at which the numeric and behavioural checks run; a loss must pass at every one."""
BEHAVIOUR_SAMPLES, BEHAVIOUR_STEPS, BEHAVIOUR_LR = 64, 40, 0.1
BEHAVIOUR_MIN_ACCURACY = 0.8
TAIL_RATIO, TAIL_STEPS, TAIL_MIN_SHARE = 20.0, 100, 0.33
"""The hard-examples check (:func:`hard_examples`): frequencies falling 20:1 (the long-tailed
held-out task's), 100 Adam steps, and the share of its frequency every class must keep (CE
keeps 0.97, NGL 0.71, issue 15's paper best 0.67; ``exp(-c*y_pred*y_real*cos(y_real))``
0.02-0.11 for c = 4.9 ... 13.4)."""


@dataclass(frozen=True)
class Verdict:
    """Outcome of screening: ``passed``, else the check that failed and why."""

    passed: bool
    check: str = ""
    message: str = ""


def _numeric_probes(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """68 rows of K logits: N(0, s²) rows for s in 0.1, 1, 5, 20, and 4 extreme rows."""
    g = torch.Generator().manual_seed(1234)
    rows = [torch.randn(16, k, generator=g) * s for s in (0.1, 1.0, 5.0, 20.0)]
    extreme = torch.zeros(4, k)
    extreme[0, 0], extreme[1, 3 % k], extreme[2, :] = 60.0, -60.0, torch.linspace(-30, 30, k)
    extreme[3, 5 % k] = 30.0
    logits = torch.cat(rows + [extreme])
    target = torch.randint(0, k, (logits.shape[0],), generator=g)
    target[-4:] = torch.tensor([0, 0, k - 1, 2 % k])  # extreme rows with right and wrong targets
    return logits, target


def _behaviour_batch(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(4321)
    logits = torch.randn(BEHAVIOUR_SAMPLES, k, generator=g)
    target = torch.randint(0, k, (BEHAVIOUR_SAMPLES,), generator=g)
    return logits, target


class _Probes:
    """Probe batches of several class counts, evaluated by an elementwise loss in one call.

    ``f(p, t)`` is elementwise, so the probabilities and one-hot targets of every K are
    flattened into one vector: one evaluation of the tree per step instead of one per K. The
    loss is the sum of each K's mean, so each K's logits get exactly the gradient of its own mean.
    """

    def __init__(self, make, classes: tuple[int, ...]):
        self.classes = classes
        batches = [make(k) for k in classes]
        self.logits = [z for z, _ in batches]
        self.target = [t for _, t in batches]
        self.onehot = torch.cat([torch.nn.functional.one_hot(t, k).float().flatten()
                                 for (_, t), k in zip(batches, classes)])
        self.sizes = [z.numel() for z in self.logits]

    def losses(self, f, zs: list[torch.Tensor]) -> torch.Tensor:
        """Each K's mean of ``f`` over its probe batch, as a vector of len(classes)."""
        p = torch.cat([torch.softmax(z, dim=1).flatten() for z in zs])
        out = f(p, self.onehot).expand_as(p)
        return torch.stack([part.mean() for part in out.split(self.sizes)])


_CACHE: dict[tuple, _Probes] = {}


def _probes(make, classes: tuple[int, ...]) -> _Probes:
    key = (make.__name__, tuple(classes))
    if key not in _CACHE:
        _CACHE[key] = _Probes(make, tuple(classes))
    return _CACHE[key]


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


def numeric(expr: LossExpr, classes: tuple[int, ...] = CLASSES) -> Verdict:
    probes = _probes(_numeric_probes, classes)
    zs = [z.clone().requires_grad_(True) for z in probes.logits]
    with torch.enable_grad():
        values = probes.losses(expr.elementwise, zs)
        finite = torch.isfinite(values)
        if not finite.all():
            k = classes[int((~finite).nonzero()[0])]
            return Verdict(False, "numeric", f"loss is {values[~finite][0].item()} on the probes "
                                             f"at K = {k} classes (float32)")
        if not values.requires_grad:
            return Verdict(False, "numeric", "loss has no gradient w.r.t. the logits")
        grads = torch.autograd.grad(values.sum(), zs)
    for k, grad in zip(classes, grads):
        if not torch.isfinite(grad).all():
            return Verdict(False, "numeric", f"gradient is not finite on the probes at K = {k} "
                                             "classes (float32)")
        if grad.norm() < GRAD_FLOOR:
            return Verdict(False, "numeric", f"gradient vanishes on the probes at K = {k} classes")
    return Verdict(True)


def _accuracy(z: torch.Tensor, target: torch.Tensor) -> float:
    return (z.argmax(1) == target).float().mean().item()


def behavioural(expr: LossExpr, classes: tuple[int, ...] = CLASSES) -> Verdict:
    probes = _probes(_behaviour_batch, classes)
    zs = [z.clone() for z in probes.logits]
    ms, vs = [torch.zeros_like(z) for z in zs], [torch.zeros_like(z) for z in zs]
    f = expr.elementwise
    b1, b2 = 0.9, 0.999
    reached = [False] * len(classes)  # a K passes once its accuracy reaches the bar at a check
    for step in range(1, BEHAVIOUR_STEPS + 1):
        # Adam written out: torch.optim's per-step overhead is 10x this whole check.
        zs = [z.detach().requires_grad_(True) for z in zs]
        with torch.enable_grad():
            value = probes.losses(f, zs).sum()
            if not torch.isfinite(value):
                return Verdict(False, "behavioural", "loss became non-finite while optimising logits")
            grads = torch.autograd.grad(value, zs)
        for i, (g, m, v) in enumerate(zip(grads, ms, vs)):
            m.mul_(b1).add_(g, alpha=1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat, v_hat = m / (1 - b1**step), v / (1 - b2**step)
            zs[i] = zs[i].detach() - BEHAVIOUR_LR * m_hat / (v_hat.sqrt() + 1e-8)
        if step % 10 == 0:
            reached = [r or _accuracy(z, t) >= BEHAVIOUR_MIN_ACCURACY
                       for r, z, t in zip(reached, zs, probes.target)]
            if all(reached):
                return Verdict(True)  # good losses get there early; no need to run all steps
    k, acc = next((k, _accuracy(z, t)) for k, z, t, r in zip(classes, zs, probes.target, reached)
                  if not r)
    return Verdict(False, "behavioural",
                   f"optimising logits with it reaches accuracy {acc:.2f} < "
                   f"{BEHAVIOUR_MIN_ACCURACY} at K = {k} classes (it does not pull predictions "
                   "to the target)")


def _long_tail(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class frequencies falling geometrically by :data:`TAIL_RATIO` (normalised) and the one-hot
    targets of one row per class."""
    freq = torch.logspace(0, -torch.log10(torch.tensor(TAIL_RATIO)).item(), k, dtype=torch.float64)
    return (freq / freq.sum()).float(), torch.eye(k)


def hard_examples(expr, k: int = 10) -> Verdict:
    """Does the pull of the rare class's (hard) examples survive the push of the common ones?

    The model is one shared logit vector (the class biases, what a network learns first),
    started at 0 and optimised with Adam (lr ``BEHAVIOUR_LR``, :data:`TAIL_STEPS` steps) on a
    long-tailed label set: ``k`` classes whose frequencies fall by :data:`TAIL_RATIO` from the
    first to the last. Each example of class ``c`` pushes the other classes' logits down by a
    force proportional to their probability; CE's pull on the true logit, ``1 - p_c``, does not
    shrink as ``p_c`` does, so every class settles at its frequency. A loss whose logit gradient
    vanishes on hard examples (``p_c`` small: a bounded loss of ``p_c`` alone, such as
    ``exp(-8.24*y_pred*y_real*cos(y_real))``) loses that tug of war: the rare classes' probability
    keeps falling, which on a long-tailed training set is a classifier that never predicts them.
    Required: every class keeps at least :data:`TAIL_MIN_SHARE` of its frequency.

    Args:
        expr: a :class:`LossExpr` or any ``loss(logits, target) -> scalar`` (the reference losses).
        k: the number of classes.
    """
    freq, onehot = _long_tail(k)
    f = expr.elementwise if isinstance(expr, LossExpr) else None
    target = torch.arange(k)
    z = torch.zeros(k)
    m, v = torch.zeros(k), torch.zeros(k)
    for step in range(1, TAIL_STEPS + 1):
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = z.expand(k, k)
            if f is not None:  # rows weighted by frequency: the mean over a long-tailed batch
                per_row = f(torch.softmax(logits, dim=1), onehot).expand(k, k).mean(dim=1)
            else:
                per_row = torch.stack([expr(logits[c:c + 1], target[c:c + 1]) for c in range(k)])
            value = (freq * per_row).sum()
            if not torch.isfinite(value):
                return Verdict(False, "hard-examples", "loss became non-finite on the long tail")
            (g,) = torch.autograd.grad(value, z)
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        z = z.detach() - BEHAVIOUR_LR * (m / (1 - 0.9**step)) / ((v / (1 - 0.999**step)).sqrt() + 1e-8)
    share = torch.softmax(z.detach(), dim=0) / freq
    worst = int(share.argmin())
    if share[worst] >= TAIL_MIN_SHARE:
        return Verdict(True)
    return Verdict(False, "hard-examples",
                   f"on a long tail ({TAIL_RATIO:g}:1, K = {k}) class {worst} keeps "
                   f"{share[worst]:.2f} of its frequency < {TAIL_MIN_SHARE} (its examples' "
                   "logit gradient vanishes as they get hard)")


def screen(expr: LossExpr, classes: tuple[int, ...] = CLASSES, hard: bool = False) -> Verdict:
    """Run the checks in order of cost; the first failure decides.

    Args:
        expr: the candidate loss.
        classes: class counts at which the numeric and behavioural checks run (each at least
            2); ``(10,)`` is the screening as it was before class counts were checked.
        hard: run :func:`hard_examples` last, as a rejection (the config's
            ``screen_hard_examples``) rather than a bar for the hall of fame.

    Returns:
        A :class:`Verdict`; never raises for a bad expression.

    Example:
        >>> from gp_search import NGL
        >>> screen(NGL).passed
        True
    """
    classes = tuple(classes)
    if not classes or any(isinstance(k, bool) or not isinstance(k, int) or k < 2 for k in classes):
        raise ValueError(f"classes must be a non-empty tuple of integers >= 2, got {classes!r}")
    try:
        for check in (structural, numeric, behavioural):
            verdict = check(expr) if check is structural else check(expr, classes)
            if not verdict.passed:
                return verdict
        if hard:
            return hard_examples(expr)
    except (ExprError, RuntimeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        return Verdict(False, "error", f"{type(exc).__name__}: {exc}")
    return Verdict(True)
