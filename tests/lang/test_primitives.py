"""Every row of the primitive table: torch ≡ SymPy ≡ math on probes, its gradient column ≡ torch
autograd ≡ SymPy's derivative, its NumPy derivatives, finite gradients, the DEAP view."""

import math
import random

import numpy as np
import pytest
import sympy
import torch
from deap import gp

from gp_search.lang import derivatives as D
from gp_search.lang import primitives as P

PROBES = [0.0, 1e-12, 0.3, 0.5, 1.0, -0.7, -3.0, 2.5, 10.0, 50.0]


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_torch_equals_sympy_and_math(prim):
    rng = np.random.default_rng(0)
    x, y = sympy.symbols("x y", real=True)
    sym = prim.sympy_fn(*(x, y)[: prim.arity])
    for _ in range(40):
        vals = [float(rng.choice(PROBES)) for _ in range(prim.arity)]
        args_t = [torch.tensor(v, dtype=torch.float64) for v in vals]
        got = float(prim.torch_fn(*args_t))
        want_sym = float(sym.subs(dict(zip((x, y), vals))).evalf())
        want_math = prim.math_fn(*vals)
        assert got == pytest.approx(want_sym, rel=1e-9, abs=1e-12), (prim.name, vals)
        assert got == pytest.approx(want_math, rel=1e-9, abs=1e-12), (prim.name, vals)


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_gradients_finite_at_probes(prim):
    probes = torch.tensor([0.0, 1e-8, 0.25, 0.5, 0.75, 1.0, -1.0, -5.0, 5.0, 20.0],
                          dtype=torch.float64)
    a = probes.clone().requires_grad_(True)
    b = probes.flip(0).clone().requires_grad_(True)
    out = prim.torch_fn(*(a, b)[: prim.arity])
    out.sum().backward()
    assert torch.isfinite(out).all(), prim.name
    assert torch.isfinite(a.grad).all(), prim.name
    if prim.arity == 2:
        assert torch.isfinite(b.grad).all(), prim.name


# Zeros, ties (min/max), negatives, large values; every pair of them for two-argument rows.
GRAD_PROBES = [0.0, 1e-9, 0.3, 1.0, -0.7, -4.0, 2.5, 12.0, 40.0]


def _probe_args(arity: int) -> list[torch.Tensor]:
    """Each argument as a float64 tensor over the probes (all pairs for two arguments)."""
    if arity == 1:
        return [torch.tensor(GRAD_PROBES, dtype=torch.float64)]
    a, b = zip(*[(u, v) for u in GRAD_PROBES for v in GRAD_PROBES])
    return [torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)]


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_torch_out_equals_torch_fn(prim):
    args = _probe_args(prim.arity)
    out = torch.empty_like(args[0])
    prim.torch_out(*args, out=out)
    assert torch.equal(out, prim.torch_fn(*args)), prim.name


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_gradient_column_equals_autograd_and_sympy(prim):
    args = _probe_args(prim.arity)
    g = torch.linspace(0.5, 2.0, len(args[0]), dtype=torch.float64)  # a non-trivial upstream grad
    leaves = [a.clone().requires_grad_(True) for a in args]
    want = torch.autograd.grad(prim.torch_fn(*leaves), leaves, g)
    got = D.gradients(prim.name, g, *args)
    xs = sympy.symbols("x y", real=True)[: prim.arity]
    expr = prim.sympy_fn(*xs)
    for j, (mine, auto) in enumerate(zip(got, want)):
        assert torch.isfinite(mine).all(), (prim.name, j)
        torch.testing.assert_close(mine, auto, rtol=1e-12, atol=0, msg=f"{prim.name} arg {j}")
        d = sympy.diff(expr, xs[j])
        for k in range(len(g)):
            point = {x: float(a[k]) for x, a in zip(xs, args)}
            sym = float(d.subs(point).evalf()) * float(g[k])
            assert float(mine[k]) == pytest.approx(sym, rel=1e-9, abs=1e-12), \
                (prim.name, j, point, sym)


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_gradient_column_honours_need_and_into(prim):
    args = _probe_args(prim.arity)
    y = prim.torch_fn(*args)
    g = torch.ones_like(y)
    full = prim.torch_grad(g, *args, y, (True,) * prim.arity, (None,) * prim.arity)
    for j in range(prim.arity):
        need = tuple(i == j for i in range(prim.arity))
        into = tuple(torch.full_like(y, math.nan) for _ in range(prim.arity))
        got = prim.torch_grad(g, *args, y, need, into)
        assert all(got[i] is None for i in range(prim.arity) if i != j), prim.name
        assert torch.equal(got[j], full[j]), (prim.name, j)


DERIVED = {"exp": 2, "sin": 2, "cos": 2, "tanh": 2, "neg": 2, "square": 2, "abs": 1}


@pytest.mark.parametrize("name,order", DERIVED.items())
def test_numpy_derivatives_equal_torch_autograd(name, order):
    fns = D.numpy_derivatives(name, order)
    x = torch.tensor(GRAD_PROBES, dtype=torch.float64, requires_grad=True)
    y, want = P.BY_NAME[name].torch_fn(x), []
    for _ in range(order + 1):
        want.append(y.detach().numpy())
        (y,) = torch.autograd.grad(y.sum(), x, create_graph=True, allow_unused=True) \
            if y.requires_grad else (torch.zeros_like(x),)
    for k, (fn, w) in enumerate(zip(fns, want)):
        got = np.broadcast_to(fn(np.array(GRAD_PROBES)), w.shape)
        np.testing.assert_allclose(got, w, rtol=1e-9, atol=1e-12, err_msg=f"{name}^({k})")


def test_paper_unary_derivatives_are_the_textbook_ones():
    p = np.array(GRAD_PROBES)
    assert [np.array_equal(f(p), r) for f, r in zip(D.numpy_derivatives("cos"),
                                                     (np.cos(p), -np.sin(p), -np.cos(p)))] == [True] * 3
    assert all(np.array_equal(f(p), np.exp(p)) for f in D.numpy_derivatives("exp"))


def test_numpy_derivatives_refuse_what_has_no_numpy_form():
    with pytest.raises(ValueError, match="derivative 2 of 'abs'.*no NumPy form; use order < 2"):
        D.numpy_derivatives("abs", 2)
    with pytest.raises(ValueError, match="'plog' has no NumPy form"):
        D.numpy_derivatives("plog")
    with pytest.raises(ValueError, match="one-argument primitive; 'mul' has 2"):
        D.numpy_derivatives("mul")
    with pytest.raises(ValueError, match="unknown primitive 'log'"):
        D.numpy_derivatives("log")


@pytest.mark.parametrize("prim", P.TABLE, ids=lambda p: p.name)
def test_source_templates_cover_every_target(prim):
    for target in ("torch", "numpy", "jax"):
        text = prim.source[target].format(*("a", "b")[: prim.arity])
        assert "a" in text


def test_paper_set_is_the_papers_operators():
    assert P.names("paper") == ("add", "sub", "mul", "exp", "cos", "sin")
    ext = P.names("extended")
    assert set(P.names("paper")) < set(ext)
    assert {"plog", "pdiv", "psqrt", "tanh", "abs", "min", "max", "neg", "square"} <= set(ext)


def test_pset_views_the_table_and_is_cached():
    ps = P.pset("paper")
    assert ps is P.pset("paper")
    assert set(ps.mapping) >= {"y_pred", "y_real", "add", "sub", "mul", "exp", "cos", "sin", "1"}
    assert "tanh" not in ps.mapping and "tanh" in P.pset("extended").mapping


def test_ephemeral_constants_uniform_in_range_with_4_decimals():
    random.seed(1)
    ps = P.pset("paper", 3.0)
    eph = next(t for t in ps.terminals[ps.ret] if isinstance(t, type))
    values = [eph().value for _ in range(2000)]
    assert min(values) >= -3.0 and max(values) <= 3.0
    assert min(values) < -2.8 and max(values) > 2.8
    assert all(round(v, 4) == v for v in values)


def test_bad_set_and_range_are_refused():
    with pytest.raises(ValueError, match="unknown primitive set 'fancy'"):
        P.pset("fancy")
    with pytest.raises(ValueError, match="const_range must be a positive"):
        P.pset("paper", -1.0)


def test_constant_terminal_keeps_value_and_round_trips():
    ps = P.pset("paper")
    assert isinstance(type(P.constant_terminal(1.0, ps)), gp.MetaEphemeral)
    assert str(P.constant_terminal(1.0, ps).format()) == "1.0"
    node = P.constant_terminal(2.4092, ps)
    assert isinstance(type(node), gp.MetaEphemeral) and node.value == 2.4092
    assert math.isfinite(node.value)
