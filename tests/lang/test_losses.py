"""Reference losses: NGL against the published formula, its confidence cap, and every loss's shapes."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

import gp_search
from gp_search.lang.losses import NGL, REFERENCE, NGLLoss, resolve


def published_ngl(logits, target):
    """The authors' torch formula, written independently (softmax over the class dim)."""
    onehot = torch.nn.functional.one_hot(target, num_classes=logits.size(1)).movedim(-1, 1)
    x = torch.softmax(logits, dim=1)
    return torch.mean(torch.exp(2.4092 - x - x * onehot) - torch.cos(torch.cos(torch.sin(x))))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 2), (16, 10), (7, 100), (2, 5, 4, 3), (3, 21, 6, 6)])
def test_ngl_value_and_gradient_match_published_formula(dtype, shape):
    torch.manual_seed(shape[0] * 31 + shape[1])
    logits = (torch.randn(*shape, dtype=dtype) * 3).requires_grad_(True)
    target = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    ours = NGL.to_torch()(logits, target)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = published_ngl(logits, target)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert ours.dtype == dtype
    assert abs(ours.item() - ref.item()) <= 1e-6 * abs(ref.item())
    assert torch.allclose(g_ours, g_ref, rtol=1e-6, atol=1e-6 * g_ref.abs().max().item())


def test_ngl_module_and_registry_agree():
    logits, target = torch.randn(4, 10), torch.randint(0, 10, (4,))
    assert NGLLoss()(logits, target).item() == REFERENCE["ngl"](logits, target).item()
    assert resolve("NGL") is REFERENCE["ngl"]
    assert resolve(gp_search.NGL_PREFIX).expr.canonical == NGL.canonical


def _optimal_target_probability(k: int) -> float:
    f = NGL.elementwise

    def per_sample(q):
        p = torch.tensor([q] + [(1 - q) / (k - 1)] * (k - 1), dtype=torch.float64)
        t = torch.zeros(k, dtype=torch.float64)
        t[0] = 1
        return f(p, t).mean().item()

    return minimize_scalar(per_sample, bounds=(1e-6, 1 - 1e-6), method="bounded",
                           options={"xatol": 1e-8}).x


@pytest.mark.parametrize("k, q", [(2, 0.566), (10, 0.391), (100, 0.362)])
def test_ngl_caps_confidence(k, q):
    assert _optimal_target_probability(k) == pytest.approx(q, abs=0.005)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("shape", [(6, 10), (2, 4, 3, 3)])
def test_reference_losses_work_dense_and_flat(name, shape):
    torch.manual_seed(0)
    loss = REFERENCE[name]
    logits = torch.randn(*shape, requires_grad=True)
    idx = torch.randint(0, shape[1], (shape[0], *shape[2:]))
    onehot = torch.nn.functional.one_hot(idx, shape[1]).movedim(-1, 1).float()
    value = loss(logits, idx)
    assert value.dim() == 0 and torch.isfinite(value)
    assert value.item() == pytest.approx(loss(logits, onehot).item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_reference_losses_against_torch_builtins():
    torch.manual_seed(1)
    logits, target = torch.randn(32, 10), torch.randint(0, 10, (32,))
    F = torch.nn.functional
    ce = F.cross_entropy(logits, target)
    assert REFERENCE["ce"](logits, target).item() == pytest.approx(ce.item(), rel=1e-6)
    ls = F.cross_entropy(logits, target, label_smoothing=0.1)
    assert REFERENCE["label_smoothing"](logits, target).item() == pytest.approx(ls.item(), rel=1e-6)
    pt = torch.softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    focal = (-(1 - pt) ** 2 * torch.log(pt)).mean()
    assert REFERENCE["focal"](logits, target).item() == pytest.approx(focal.item(), rel=1e-5)
    assert REFERENCE["poly1"](logits, target).item() == pytest.approx((ce + (1 - pt).mean()).item(), rel=1e-5)
    p = torch.softmax(logits, 1)
    rce = -(p * np.log(1e-4)).sum(1) + (pt * np.log(1e-4))  # log 1 = 0 on the target
    assert REFERENCE["sce"](logits, target).item() == pytest.approx((0.1 * ce + rce.mean()).item(), rel=1e-5)
    mse = ((p - F.one_hot(target, 10)) ** 2).mean()
    assert REFERENCE["mse"](logits, target).item() == pytest.approx(mse.item(), rel=1e-6)
    assert REFERENCE["ce_l2"].l2 == 5e-4 and REFERENCE["ce"].l2 == 0


def test_resolve_reports_bad_text():
    with pytest.raises(ValueError, match="unknown name"):
        resolve("not_a_loss")
