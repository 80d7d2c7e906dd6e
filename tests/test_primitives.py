"""Every row of the primitive table: torch ≡ SymPy ≡ math on probes, finite gradients, DEAP view."""

import math
import random

import numpy as np
import pytest
import sympy
import torch
from deap import gp

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
