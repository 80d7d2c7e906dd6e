"""Reference losses by name (NGL, CE, focal, SCE, …) and the one ``Loss`` record a proxy trains.

Every loss takes ``(logits, target)``: logits ``(N, C)`` or dense ``(N, C, *spatial)``; target
as class indices ``(N, *spatial)`` or as one-hot/probabilities shaped like the logits. Every loss
honours the ignore label: positions whose target is 255 (:data:`gp_search.lang.expr.IGNORE_INDEX`,
when C <= 255) count nowhere, and "mean over samples" means over the kept positions (CE then equals
``F.cross_entropy(..., ignore_index=255)``).

Conventions (our documented choices where the literature leaves one):

* ``ngl`` — the published Next Generation Loss, mean over batch × classes (× positions).
* ``ce`` — cross-entropy, mean over samples (and positions).
* ``focal`` — ``-(1 - p_t)^γ log p_t``, γ = 2 (Lin et al. 2017), mean over samples.
* ``sce`` — symmetric CE, ``α·CE + β·RCE`` with α = 0.1, β = 1.0 and log 0 clipped to
  log 1e-4 = −9.21 in the reverse term (Wang et al. 2019, their CIFAR-10 setting).
* ``label_smoothing`` — CE against targets smoothed with ε = 0.1.
* ``poly1`` — PolyLoss-1, ``CE + ε(1 − p_t)`` with ε = 1 (Leng et al. 2022).
* ``mse`` — ``mean((p − t)^2)`` over all elements (Brier-style; also a tree in the language).
* ``dice`` — soft Dice over classes (Milletari et al. 2016, the multi-class form):
  ``1 − mean_k (2·Σ p_k t_k + s) / (Σ p_k + Σ t_k + s)``, the sums over the whole batch and every
  kept position, ``p`` the softmax, every class (background included) averaged, smoothing
  s = 1 (:data:`DICE_SMOOTH`), so a class absent from the batch's targets scores 1 only when
  it is not predicted either.
* ``ce_l2`` — CE plus ``λ/2·Σ‖w‖²`` with λ = 5e-4. The penalty needs the weights, so the loss
  carries ``l2 = 5e-4`` and the proxy training adds the penalty over all weight matrices and
  kernels (not biases) to the loss before the backward pass (plain L2, not decoupled decay).

Scale (:func:`grad_scale`, :func:`loss_scale`). Under Adam a loss's scale is invisible; under SGD
it is the learning rate. A found loss gets the positive factor

    s = median over K in (2, 10, 100) of ||∇CE|| / ||∇f||

(gradients of the batch loss w.r.t. the logits, Frobenius norms, on a fixed probe: 256 rows of
K logits ~ N(0, 1) and uniform random targets from ``torch.Generator().manual_seed(0)``, in
float64), so that ``s·f`` moves the logits as hard as CE on the probe. CE's own scale is 1 by
construction. Reference losses keep the scale they were published with, s = 1 exactly (NGL, MSE
and every name of :data:`REFERENCE`, also when NGL or MSE is given as its tree): they are
compared as their authors defined them. The export (:func:`gp_search.lang.export.export`)
multiplies by s, and SGD trainings (``ProxySpec.optimizer == "sgd"``) train ``s·f``; Adam
trainings ignore it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import math
import statistics

import torch

from gp_search.lang.apply import masked_mean, prepare_masked
from gp_search.lang.expr import LossExpr, parse

NGL_PREFIX = "sub(exp(sub(2.4092, mul(y_pred, add(1, y_real)))), cos(cos(sin(y_pred))))"
"""The NGL tree in the paper's primitive set (Akhmedova & Körber 2024)."""

NGL: LossExpr = parse(NGL_PREFIX, "paper")
"""NGL as the reference individual: ``mean(exp(2.4092 − p·(1+t)) − cos(cos(sin(p))))``."""

FOCAL_GAMMA = 2.0
SCE_ALPHA, SCE_BETA, SCE_LOG_CLIP = 0.1, 1.0, 1e-4
LABEL_SMOOTHING = 0.1
POLY1_EPSILON = 1.0
CE_L2_LAMBDA = 5e-4
DICE_SMOOTH = 1.0


def _per_position(logits: torch.Tensor, target: torch.Tensor):
    """Log-probabilities, probabilities and float targets, all shaped like the logits, and the
    kept positions (None: all; :func:`gp_search.lang.expr.prepare_masked`)."""
    p, t, keep = prepare_masked(logits, target)
    return torch.log_softmax(logits, dim=1), p, t, keep


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logp, _, t, keep = _per_position(logits, target)
    return masked_mean(-(t * logp).sum(1), keep)


def focal(logits: torch.Tensor, target: torch.Tensor, gamma: float = FOCAL_GAMMA) -> torch.Tensor:
    logp, p, t, keep = _per_position(logits, target)
    return masked_mean(-(t * (1 - p) ** gamma * logp).sum(1), keep)


def sce(logits: torch.Tensor, target: torch.Tensor, alpha: float = SCE_ALPHA,
        beta: float = SCE_BETA) -> torch.Tensor:
    logp, p, t, keep = _per_position(logits, target)
    ce = -(t * logp).sum(1)
    rce = -(p * torch.log(t.clamp(min=SCE_LOG_CLIP, max=1.0))).sum(1)
    return masked_mean(alpha * ce + beta * rce, keep)


def label_smoothing(logits: torch.Tensor, target: torch.Tensor,
                    eps: float = LABEL_SMOOTHING) -> torch.Tensor:
    logp, _, t, keep = _per_position(logits, target)
    smooth = t * (1 - eps) + eps / logits.shape[1]
    return masked_mean(-(smooth * logp).sum(1), keep)


def poly1(logits: torch.Tensor, target: torch.Tensor, eps: float = POLY1_EPSILON) -> torch.Tensor:
    logp, p, t, keep = _per_position(logits, target)
    return masked_mean(-(t * logp).sum(1) + eps * (1 - (t * p).sum(1)), keep)


def dice(logits: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    _, p, t, keep = _per_position(logits, target)
    if keep is not None:  # ignored positions add to no class's sums
        w = keep.unsqueeze(1).to(p.dtype)
        p, t = p * w, t * w
    dims = [0, *range(2, p.dim())]  # all but the class dimension
    score = (2 * (p * t).sum(dims) + smooth) / (p.sum(dims) + t.sum(dims) + smooth)
    return 1 - score.mean()


MSE: LossExpr = parse("(y_pred - y_real)**2", "paper")


@dataclass(frozen=True)
class Loss:
    """What a proxy trains with: a name, the function, and an optional L2 weight penalty.

    Attributes:
        name: reference name (``"ngl"``) or the expression's canonical key.
        fn: ``(logits, target) -> scalar tensor``.
        formula: human-readable formula.
        expr: the :class:`LossExpr`, when the loss is a tree of the language.
        l2: coefficient λ of ``λ/2·Σ‖w‖²`` that the training adds (0 for none).
        spec: the text that rebuilds this loss with :func:`resolve` (a name or prefix form) —
            what crosses process boundaries.
    """

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    formula: str
    expr: LossExpr | None = None
    l2: float = 0.0
    spec: str = ""

    def __call__(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(logits, target)


def _ref(name: str, fn: Callable, formula: str, expr: LossExpr | None = None,
         l2: float = 0.0) -> Loss:
    return Loss(name, fn, formula, expr, l2, name)


REFERENCE: dict[str, Loss] = {ref.name: ref for ref in (
    _ref("ngl", NGL.to_torch(), "mean(exp(2.4092 - p*(1+t)) - cos(cos(sin(p))))", NGL),
    _ref("ce", cross_entropy, "mean_n(-sum_k t_k log p_k)"),
    _ref("focal", focal, f"mean_n(-sum_k t_k (1-p_k)^{FOCAL_GAMMA:g} log p_k)"),
    _ref("sce", sce, f"mean_n({SCE_ALPHA:g}*CE + {SCE_BETA:g}*(-sum_k p_k log max(t_k, "
                     f"{SCE_LOG_CLIP:g})))"),
    _ref("label_smoothing", label_smoothing,
         f"mean_n(-sum_k ((1-{LABEL_SMOOTHING:g}) t_k + {LABEL_SMOOTHING:g}/K) log p_k)"),
    _ref("poly1", poly1, f"mean_n(CE + {POLY1_EPSILON:g}*(1 - p_t))"),
    _ref("mse", MSE.to_torch(), "mean((p - t)^2)", MSE),
    _ref("dice", dice, f"1 - mean_k((2 sum p_k t_k + {DICE_SMOOTH:g}) / (sum p_k + sum t_k + "
                       f"{DICE_SMOOTH:g})), sums over batch and positions"),
    _ref("ce_l2", cross_entropy, f"CE + {CE_L2_LAMBDA:g}/2 * sum ||w||^2 (added by the training)",
         l2=CE_L2_LAMBDA),
)}


def from_expr(expr: LossExpr) -> Loss:
    """The :class:`Loss` of a searched expression."""
    return Loss(expr.canonical, expr.to_torch(), expr.canonical, expr, 0.0, expr.prefix)


def resolve(spec: "str | Loss | LossExpr") -> Loss:
    """A reference name (``"ngl"``, ``"ce"`` …) or an expression (prefix or infix) as a Loss.

    Raises:
        ExprError: the text is neither a known name nor a valid expression.
    """
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, LossExpr):
        return from_expr(spec)
    if isinstance(spec, str) and spec.strip().lower() in REFERENCE:
        return REFERENCE[spec.strip().lower()]
    return from_expr(parse(spec))


class NGLLoss(torch.nn.Module):
    """NGL as a ``torch.nn.Module``: ``NGLLoss()(logits, target)``."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return REFERENCE["ngl"].fn(logits, target)


SCALE_CLASSES = (2, 10, 100)
SCALE_ROWS = 256
SCALE_SEED = 0


def _scale_probes() -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(SCALE_SEED)
    return [(torch.randn(SCALE_ROWS, k, generator=g, dtype=torch.float64),
             torch.randint(0, k, (SCALE_ROWS,), generator=g)) for k in SCALE_CLASSES]


def _grad_norm(fn: Callable, logits: torch.Tensor, target: torch.Tensor) -> float:
    z = logits.clone().requires_grad_(True)
    with torch.enable_grad():
        value = fn(z, target)
        if not value.requires_grad:
            return 0.0
        (grad,) = torch.autograd.grad(value, z)
    return float(grad.norm())


def grad_scale(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
    """The factor s that gives ``fn`` CE's mean logit-gradient norm on the fixed probe.

    Args:
        fn: a loss ``(logits, target) -> scalar`` (any :class:`Loss` or ``LossExpr.to_torch()``).

    Returns:
        ``s = median over K in SCALE_CLASSES of ||∇CE|| / ||∇fn||`` (see the module docstring);
        ``grad_scale(cross_entropy) == 1`` and ``grad_scale(7·f) == grad_scale(f) / 7``.

    Raises:
        ValueError: the gradient of ``fn`` is zero or not finite at some K of the probe (such a
            loss has no usable scale; screening rejects it).

    Example:
        >>> grad_scale(cross_entropy)
        1.0
    """
    ratios = []
    for (logits, target), k in zip(_scale_probes(), SCALE_CLASSES):
        norm = _grad_norm(fn, logits, target)
        if not (math.isfinite(norm) and norm > 0):
            raise ValueError(f"the loss has no usable scale: its logit gradient norm is {norm} "
                             f"on the scale probe at K = {k} (it must be finite and > 0)")
        ratios.append(_grad_norm(cross_entropy, logits, target) / norm)
    return statistics.median(ratios)


_SCALES: dict[str, float] = {}


def loss_scale(loss: "Loss | LossExpr") -> float:
    """The scale an SGD training and the export give ``loss``: 1.0 for reference losses.

    Args:
        loss: a :class:`Loss` or a :class:`LossExpr`.

    Returns:
        ``1.0`` exactly for a name of :data:`REFERENCE` or a tree equal to a reference's (NGL,
        MSE); else :func:`grad_scale` of its function (cached per canonical form).

    Raises:
        ValueError: see :func:`grad_scale`.
    """
    if isinstance(loss, Loss):
        if loss.expr is None or loss.name in REFERENCE:
            return 1.0
        loss = loss.expr
    key = loss.canonical
    if key in _REFERENCE_CANONICAL:
        return 1.0
    if key not in _SCALES:
        _SCALES[key] = grad_scale(loss.to_torch())
    return _SCALES[key]


_REFERENCE_CANONICAL = {ref.expr.canonical for ref in REFERENCE.values() if ref.expr is not None}
