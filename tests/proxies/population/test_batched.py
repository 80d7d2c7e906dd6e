"""Population-batched training: equality with the sequential path, NaN isolation, batched loss."""

import math
import random
import warnings

import pytest
import torch
from deap import gp
from population_checks import assert_nan_isolated, sequential_reference

from gp_search import proxies
from gp_search.lang import primitives as P
from gp_search.lang.expr import ExprError, from_tree, parse
from gp_search.lang.losses import REFERENCE, Loss, from_expr
from gp_search.engine.screen import screen
from gp_search.proxies.population import choose as batched
from gp_search.proxies.population import mlp as batched_mlp
from gp_search.proxies.population.programs import LossProgram
from gp_search.proxies.spec import ProxySpec
from gp_search.proxies.train import train_one

DIGITS = proxies.get("digits-mlp", steps=5).spec
SYN = proxies.get("synthetic-mlp").spec
REFS = ["ngl", "ce", "focal", "ce_l2", "mse", "label_smoothing", "poly1", "sce"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_trees(set_name: str, n: int, seed: int, keep=lambda e: True) -> list:
    """``n`` random DEAP trees (half-and-half, depth 1-5, constants included) that pass ``keep``."""
    state = random.getstate()
    random.seed(seed)
    try:
        out = []
        ps = P.pset(set_name)
        while len(out) < n:
            e = from_tree(gp.genHalfAndHalf(ps, 1, 5), set_name)
            if keep(e):
                out.append(e)
        return out
    finally:
        random.setstate(state)


# ---------------------------------------------------------------- batched loss evaluation

@pytest.mark.parametrize("set_name", ["paper", "extended"])
def test_batched_loss_equals_each_elementwise_on_random_trees(set_name):
    trees = random_trees(set_name, 120, seed=11) + [parse("mul(2.5, 3.0)"), parse("y_pred")]
    assert sum(any(isinstance(n.value, float) for n in e.tree if not isinstance(n, gp.Primitive))
               for e in trees) > 20, "the sample must contain constants"
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(len(trees), 10, 16, generator=gen, dtype=torch.float64) * 3
    p = torch.softmax(logits, dim=1)
    t = torch.nn.functional.one_hot(torch.randint(0, 10, (16,), generator=gen), 10).t().double()
    prog = LossProgram(trees)
    values = prog.values(p.float(), t.float())
    for k, e in enumerate(trees):
        ref = e.elementwise(p[k].float(), t.float())
        assert torch.allclose(values[k], ref, rtol=1e-5, atol=1e-6, equal_nan=True), e.prefix
    # Gradients (float64, so the comparison sees the formulas, not the rounding).
    prog.losses(p, t)
    dp = prog.backward()
    for k, e in enumerate(trees):
        pk = p[k].clone().requires_grad_(True)
        with torch.enable_grad():
            out = e.elementwise(pk, t).mean()
        ref = torch.autograd.grad(out, pk)[0] if out.requires_grad else torch.zeros_like(pk)
        assert torch.allclose(dp[k], ref, rtol=1e-9, atol=1e-12, equal_nan=True), e.prefix


def test_batched_loss_op_count_does_not_grow_with_the_population():
    trees = random_trees("extended", 40, seed=3)
    small, large = LossProgram(trees), LossProgram(trees * 8)
    assert small.num_ops == large.num_ops
    assert small.num_ops < sum(e.size for e in trees) / 2


def test_batched_loss_shares_target_only_subtrees():
    prog = LossProgram([parse("mul(y_pred, add(1, y_real))"), parse("exp(mul(y_pred, add(1, y_real)))")])
    # rows: 2 uses of y_pred, 1 of y_real, 1 of the constant, add(1, t) ONCE, 2 mul, 1 exp.
    assert prog.shared_nodes == 1 and prog.rows == 2 + 1 + 1 + 1 + 2 + 1
    assert prog.depends_on_pred == [True, True]


# ---------------------------------------------------------------- equality with train_one

def _population_losses(refs: bool = True):
    """Reference losses (with and without an expression) and random trees that pass screening:
    a loss with no real gradient (c * y_pred is constant under softmax) trains on rounding noise,
    which Adam amplifies in any two implementations alike."""
    trees = random_trees("paper", 5, seed=7, keep=lambda e: screen(e).passed)
    return [REFERENCE[r] for r in REFS if refs] + [from_expr(e) for e in trees]


@pytest.mark.parametrize("refs", [True, False], ids=["mixed", "expressions-only"])
def test_parameters_and_losses_equal_sequential_after_5_steps(refs):
    losses = _population_losses(refs)
    pop = batched_mlp.MlpPopulation(DIGITS, losses, 0, 5, torch.device("cpu"), False)
    for s in range(5):
        pop.step(s)
    for k, loss in enumerate(losses):
        params, values, _ = sequential_reference(DIGITS, loss, 0, 5)
        for mine, ref in zip(pop.parameters(k), params):
            assert (mine - ref).abs().max() <= 1e-5, loss.name
        assert torch.allclose(pop.loss_hist[:, k].double(), torch.tensor(values, dtype=torch.float64),
                              rtol=1e-5, atol=1e-6), loss.name


def test_results_equal_train_one():
    losses = _population_losses()
    got = batched.train_population(DIGITS, losses, seed=1)
    for loss, r in zip(losses, got):
        ref = train_one(DIGITS, loss, seed=1)
        assert (r.status, r.steps, r.budget, r.loss, r.seed) == \
            (ref.status, ref.steps, ref.budget, ref.loss, ref.seed) == ("ok", 5, 5, loss.name, 1)
        assert abs(r.accuracy - ref.accuracy) <= 1 / 360 + 1e-12  # at most one test image flips
        assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-5, abs_tol=1e-6), loss.name


def test_proxy_evaluate_many_uses_the_batched_path():
    px = proxies.get("synthetic-mlp", steps=30)
    a = px.evaluate_many(["ngl", "ce", "mse"], seed=2, batched=True)
    b = px.evaluate_many(["ngl", "ce", "mse"], seed=2, batched=False)
    for x, y in zip(a, b):
        assert x.status == y.status == "ok"
        assert math.isclose(x.train_loss, y.train_loss, rel_tol=1e-5)
        assert abs(x.accuracy - y.accuracy) <= 1 / 500 + 1e-12


# ---------------------------------------------------------------- failures stay where they are

BAD = "sub(1, exp(mul(y_pred, 200)))"  # drives one p to 1: exp(200 p) overflows after 2 steps


def test_a_nan_candidate_never_touches_the_others():
    spec = proxies.get("digits-mlp", steps=40, lr=0.01).spec
    good = [REFERENCE["ngl"], REFERENCE["ce"], from_expr(parse("mul(sub(y_pred, y_real), sub(y_pred, y_real))"))]
    bad = from_expr(parse(BAD))
    cpu = torch.device("cpu")
    assert_nan_isolated(spec, good, bad, lambda losses, n: batched_mlp.MlpPopulation(
        spec, losses, 0, n, cpu, False), 10)


def test_a_loss_that_raises_is_an_error_of_its_own():
    def boom(logits, target):
        raise RuntimeError("boom")

    got = batched.train_population(SYN, [REFERENCE["ngl"], Loss("boom", boom, "raises"),
                                         REFERENCE["ce"]], seed=0, steps=30)
    assert [r.status for r in got] == ["ok", "error", "ok"] and "boom" in got[1].message
    assert got[0].same_outcome(batched.train_population(SYN, [REFERENCE["ngl"]] * 2, 0, 30)[0])


def test_rejected_without_training():
    losses = [from_expr(parse(s)) for s in ("y_real", "mul(2.0, y_real)", "sub(y_pred, y_pred)")]
    got = batched.train_population(DIGITS, [REFERENCE["ngl"], *losses, REFERENCE["ce"]], seed=0)
    assert [r.status for r in got] == ["ok", "rejected", "rejected", "rejected", "ok"]
    assert all(r.steps == 0 and "does not depend on y_pred" in r.message for r in got[1:4])


def test_constants_outside_float32_are_refused_without_the_fallback():
    # These made the batched program fail on filling a float32 row ("value cannot be converted
    # to type float without overflow") and fall back, with a warning, to one-by-one training.
    texts = ["1e300*y_pred*y_real", "mul(exp(88.8), mul(y_pred, y_real))"]
    with pytest.raises(ExprError, match="outside float32's range"):
        LossProgram([parse(t) for t in texts])
    px = proxies.get("synthetic-mlp", steps=30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = px.evaluate_many(["ngl", *texts, "ce"], seed=0, batched=True)
    assert [r.status for r in got] == ["ok", "error", "error", "ok"]
    assert all("outside float32's range" in r.message for r in got[1:3])
    alone = px.evaluate_many(["ngl", "ce"], seed=0, batched=True)
    assert got[0].same_outcome(alone[0]) and got[3].same_outcome(alone[1])


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="steps must be >= 1"):
        batched.train_population(DIGITS, [REFERENCE["ce"]] * 2, seed=0, steps=0)


# ---------------------------------------------------------------- choice, fallbacks, options

def test_path_rule_by_proxy_and_device_alone():
    cnn = proxies.get("digits-cnn").spec
    assert batched.path_for(DIGITS, "cuda") == "mlp-stack" and batched.path_for(cnn, "cuda") == "func-stack"
    kw = (("image_shape", (1, 8, 8)), ("widths", (8, 8, 8)))
    group = ProxySpec("digits-resnet", "digits", "resnet", kw)
    batch_norm = ProxySpec("digits-resnet-bn", "digits", "resnet", kw + (("norm", "batch"),))
    assert batched.path_for(group, "cuda") == "func-stack"
    assert batched.path_for(batch_norm, "cuda") == "sequential"  # buffers: cannot stack
    assert batched.path_for(DIGITS, "cpu") == "mlp-stack" and batched.path_for(SYN, "cpu") == "mlp-stack"
    assert batched.path_for(cnn, "cpu") == "conv-stack"  # the hand-written conv stack
    assert batched.path_for(group, "cpu") == "sequential"  # torch.func stacks do not pay on CPU
    sgd = proxies.get("digits-mlp", optimizer="sgd", lr=0.1).spec
    assert batched.path_for(sgd, "cpu") == "sequential" and batched.path_for(sgd, "cuda") == "func-stack"
    wide = proxies.get("digits-mlp", model_kw={"hidden": (512, 512)}).spec
    assert batched.path_for(wide, "cpu") == "sequential" and batched.path_for(wide, "cuda") == "mlp-stack"
    for n in (1, 2, 64):  # n no longer decides
        assert batched.pays_off(DIGITS, n, "cpu") and not batched.pays_off(group, n, "cpu")


def test_chunks_give_the_same_results(monkeypatch):
    losses = [REFERENCE["ngl"], REFERENCE["ce"], REFERENCE["mse"], REFERENCE["focal"]]
    whole = batched.train_population(SYN, losses, seed=4, steps=20)
    monkeypatch.setattr(batched_mlp, "CPU_MAX_STACK", 2 * batched_mlp.params(SYN))  # chunks of two
    split = batched.train_population(SYN, losses, seed=4, steps=20)
    for a, b in zip(whole, split):
        assert (a.status, a.accuracy) == (b.status, b.accuracy)
        assert math.isclose(a.train_loss, b.train_loss, rel_tol=1e-6)


def test_fused_adam_step_matches_torch_adam():
    """The private fused kernel the batched path calls equals the public ``torch.optim.Adam``."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(500, generator=gen)
    mine, ref = start.clone(), start.clone().requires_grad_(True)
    m, v, step_t = torch.zeros(500), torch.zeros(500), torch.zeros(())
    opt = torch.optim.Adam([ref], lr=1e-3)
    for step in range(1, 8):
        g = torch.randn(500, generator=gen) * 10.0 ** (step % 4 - 2)
        ref.grad = g.clone()
        opt.step()
        step_t += 1
        batched_mlp.adam_step(mine, g, m, v, step_t, 1e-3)
    assert not torch.equal(mine, start)
    assert torch.allclose(mine, ref.detach(), rtol=0, atol=1e-7)


def test_bf16_option_trains():
    got = batched.train_population(SYN, [REFERENCE["ngl"], REFERENCE["ce"]], seed=0, steps=60,
                                   bf16=True)
    assert [r.status for r in got] == ["ok", "ok"] and min(r.accuracy for r in got) > 0.5


@pytest.mark.gpu
def test_cuda_batched_equals_sequential():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    losses = _population_losses()
    got = batched.train_population(DIGITS, losses, seed=0, device="cuda")
    for loss, r in zip(losses, got):
        ref = train_one(DIGITS, loss, seed=0, device="cuda")
        assert r.status == ref.status == "ok"
        assert math.isclose(r.train_loss, ref.train_loss, rel_tol=1e-5, abs_tol=1e-6), loss.name
