"""Targeted rediscovery: the behavioural distance, the success levels, the scorer in the engine's
loop, a tiny run end to end (deterministic), and the reproduce-ngl command."""

import json
import math

import pytest
from conftest import reproduce_cli

from gp_search.engine import rundir as store
from gp_search.engine.evolve import Search
from gp_search.rediscovery.symbolic import exact_form, is_exact
from gp_search.lang.expr import parse
from gp_search.lang.losses import NGL, REFERENCE
from gp_search.rediscovery.targeted import RediscoveryConfig, ngl_target, rediscover
from gp_search.rediscovery.behaviour import Target, constant_slots, terms
from gp_search.rediscovery.scorer import BehaviourScorer, fold_constant_subtrees, materialise
from gp_search.rediscovery.library import Library

E_TERM = "exp(sub(2.0, mul(y_pred, add(1, y_real))))"
NGL_SHOWN = "-cos(cos(sin(y_pred))) + 11.1251*exp(-y_pred)*exp(-y_pred*y_real)"
SCALED_SHIFTED = ("add(mul(2.5, sub(exp(sub(2.4092, mul(y_pred, add(1, y_real)))), "
                  "cos(cos(sin(y_pred))))), add(mul(0.3, y_pred), add(1.7, mul(-2.0, y_real))))")


@pytest.fixture(params=[False, True], ids=["one-scale", "term-weights"])
def target(request):
    return ngl_target(request.param)


# --- the distance ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [NGL.prefix, NGL.infix, SCALED_SHIFTED])
def test_distance_is_zero_for_ngl_and_what_trains_like_it(target, text):
    fit = target.distance(parse(text).tree)
    assert fit.distance < 1e-12 and fit.max_grad_error < 1e-12
    assert fit.fitness > 9


@pytest.mark.parametrize("text, at_least", [
    (REFERENCE["mse"].expr.prefix, 0.3),                        # a classic loss: far
    ("mul(y_real, exp(mul(-5.0, y_pred)))", 0.3),               # CE-like: steep at small p_t
    ("mul(-1.0, mul(y_real, y_pred))", 0.3),                    # linear in p: far
    ("exp(sub(2.4092, mul(y_pred, add(1, y_real))))", 1e-2),   # NGL without its cosine term
    ("sub(exp(sub(2.4092, mul(y_pred, add(1, y_real)))), cos(cos(y_pred)))", 5e-3),
])
def test_distance_is_positive_for_other_losses(target, text, at_least):
    fit = target.fit_constants(parse(text).tree, 20)
    assert fit.distance > at_least and fit.max_grad_error > at_least


def test_one_scale_must_be_positive():
    minus = parse(f"mul(-1.0, {NGL.prefix})").tree
    assert ngl_target(False).distance(minus).distance == 1.0
    assert math.isinf(ngl_target(False).distance(minus).max_grad_error)


def test_non_finite_candidates_are_useless(target):
    fit = target.distance(parse("exp(exp(exp(exp(mul(3.0, y_pred)))))").tree)
    assert fit.distance == 1.0 and math.isinf(fit.max_grad_error)


def test_constant_fit_recovers_alpha():
    fit = ngl_target(False).fit_constants(parse(f"sub({E_TERM}, cos(cos(sin(y_pred))))").tree, 8)
    assert fit.theta[0] == pytest.approx(2.4092, abs=1e-6) and fit.distance < 1e-10


def test_target_rejects_a_target_without_gradient():
    with pytest.raises(ValueError, match="non-zero"):
        Target(parse("mul(y_real, 2.0)").tree)


# --- success levels -------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    NGL.prefix, NGL.infix,
    "exp(2.4092 - y_pred - y_pred*y_real) - cos(cos(sin(y_pred)))",
    "11.1251*exp(-y_pred)*exp(-y_pred*y_real) - 0.9996*cos(cos(sin(y_pred)))",
    "add(mul(-1.0, cos(cos(sin(y_pred)))), exp(mul(y_pred, sub(-1.0, y_real))) * 11.125)",
])
def test_exact_recognises_ngl_however_written(text):
    assert is_exact(parse(text))


@pytest.mark.parametrize("text", [
    "exp(2.42 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))",   # α off by 0.011: e^α by 1.1 %
    "exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(y_pred))",
    "exp(2.4092 - y_pred*(1 + y_real)) - cos(sin(sin(y_pred)))",
    f"mul(2.0, {NGL.prefix})",                                    # trains alike, not exact
    f"add({NGL.prefix}, mul(0.3, y_pred))",
])
def test_exact_refuses_near_misses(text):
    assert not is_exact(parse(text))


def test_term_weights_materialise_as_ngl_up_to_its_factor():
    tree = parse(f"add({E_TERM}, cos(cos(sin(y_pred))))").tree  # wrong sign, no α: weights fix both
    fit = ngl_target(True).fit_constants(tree, 4)
    assert fit.distance < 1e-10 and len(fit.weights) == 2
    proposed = materialise(tree, fit, True)
    assert exact_form(proposed, up_to_scale=True) == NGL_SHOWN
    assert not is_exact(materialise(tree, fit, False), up_to_scale=True)  # the bare tree is not


def test_up_to_scale_admits_a_factor_and_nothing_else():
    assert is_exact(parse(f"mul(2.0, {NGL.prefix})"), up_to_scale=True)
    assert not is_exact(parse(f"add({NGL.prefix}, mul(0.3, y_pred))"), up_to_scale=True)
    assert not is_exact(parse(f"mul(2.0, {NGL.prefix})"))


def test_terms_are_the_top_level_additive_pieces():
    tree = parse("add(sub(y_pred, cos(y_real)), mul(y_pred, 2.0))").tree
    assert [str(parse("y_pred").tree.__class__(tree[s])) for s in terms(tree)] == [
        "y_pred", "cos(y_real)", "mul(y_pred, 2.0)"]


def test_library_adds_the_missing_term():
    target = ngl_target(True)
    lib = Library(target, 4)
    tree = parse("exp(sub(1, mul(y_pred, add(1, y_real))))").tree
    nodes, distance = lib.best_extension(tree, target.fit_constants(tree, 4))
    assert str(parse("y_pred").tree.__class__(nodes)) == "cos(cos(sin(y_pred)))"
    assert distance < 1e-10


def test_fold_constant_subtrees_makes_one_constant():
    nodes = fold_constant_subtrees(parse("mul(add(1, 1), exp(mul(0.5, y_pred)))").tree)
    assert parse("y_pred").tree.__class__(nodes).__str__() == "mul(2.0, exp(mul(0.5, y_pred)))"
    assert fold_constant_subtrees(parse("mul(2.0, y_pred)").tree) is None


# --- the scorer in the engine's loop --------------------------------------------------------------

def _search(tmp_path, **kw):
    rcfg = RediscoveryConfig(population=8, generations=0, out=str(tmp_path), term_weights=False,
                             library_size=0, **kw)
    cfg = rcfg.search_config()
    from dataclasses import replace
    cfg = replace(cfg, seed_individuals=(f"sub({E_TERM}, cos(cos(sin(y_pred))))",))
    scorer = BehaviourScorer(ngl_target(False), fit_steps=8, polish=False)
    return Search(cfg, tmp_path, scorer, cache=None), scorer


def test_lamarckian_hook_writes_fitted_constants_into_individuals(tmp_path):
    search, scorer = _search(tmp_path)
    search.run()
    first = search.population[0]
    (alpha,) = [first[i].value for i in constant_slots(first)]
    assert alpha == pytest.approx(2.4092, abs=1e-9)  # was 2.0 when the individual was made
    assert scorer.fit_of(str(first)).distance < 1e-10
    assert search.hof.entries[0]["prefix"] == str(first)


def test_stop_ends_the_loop_after_the_generation(tmp_path):
    from dataclasses import replace

    search, _ = _search(tmp_path)
    search.cfg = replace(search.cfg, generations=5)
    search.hooks.after_generation.append(
        lambda rec: search.stop() if rec["generation"] == 1 else None)
    search.run()
    assert search.generation == 1 and search.finished


def test_hooks_are_called_by_name_in_order(tmp_path):
    from dataclasses import replace

    search, _ = _search(tmp_path)
    search.cfg = replace(search.cfg, generations=2)
    calls = []
    search.hooks.before_generation.append(lambda rec: calls.append(("before", rec)))
    search.hooks.after_generation.append(lambda rec: calls.append(("after", rec["generation"])))
    search.hooks.after_generation.append(lambda rec: calls.append(("after2", rec["generation"])))
    search.hooks.end_of_run.append(lambda rec: calls.append(("end", rec)))
    search.run()
    assert calls == [("after", 0), ("after2", 0),
                     ("before", {"generation": 1}), ("after", 1), ("after2", 1),
                     ("before", {"generation": 2}), ("after", 2), ("after2", 2),
                     ("end", {"generation": 2, "reason": "generations"})]


@pytest.mark.parametrize("how, reason", [("stop", "stopped"), ("budget", "time_budget")])
def test_end_of_run_says_why_the_loop_ended(tmp_path, how, reason):
    from dataclasses import replace

    search, _ = _search(tmp_path)
    search.cfg = replace(search.cfg, generations=5,
                         time_budget=1e-9 if how == "budget" else 0.0)
    if how == "stop":
        search.hooks.after_generation.append(
            lambda rec: search.stop() if rec["generation"] == 1 else None)
    ends = []
    search.hooks.end_of_run.append(ends.append)
    search.run()
    last = 1 if how == "stop" else 0  # a budget of 1 ns is spent by generation 0
    assert ends == [{"generation": last, "reason": reason}] and search.generation == last


# --- a tiny run end to end ------------------------------------------------------------------------

TINY = dict(population=40, generations=3, time_budget=0.0)


def test_tiny_run_writes_its_directory_and_reports_a_status(tmp_path):
    out = rediscover(RediscoveryConfig(seed=1, out=str(tmp_path), **TINY), quiet=True)
    run = tmp_path / next(p.name for p in tmp_path.iterdir())
    assert out.level in ("exact", "behavioural", "none") and out.run_dir == str(run)
    assert out.line().startswith(("rediscovered (exact)", "rediscovered (behavioural)",
                                  "not rediscovered"))
    gens = store.read_generations(run)
    assert [g["generation"] for g in gens] == list(range(out.generations_run + 1))
    assert {"best_distance", "best_max_grad_error", "best_expression", "exact"} <= set(gens[0])
    assert json.loads((run / "result.json").read_text())["level"] == out.level
    assert store.load_config(run).primitive_set == "paper"
    assert store.load_config(run).seed_individuals == ()


def test_same_seed_same_search(tmp_path):
    a = rediscover(RediscoveryConfig(seed=2, out=str(tmp_path / "a"), **TINY), quiet=True)
    b = rediscover(RediscoveryConfig(seed=2, out=str(tmp_path / "b"), **TINY), quiet=True)
    strip = ("seconds", "behavioural_seconds", "exact_seconds", "seconds_total", "run_dir")
    da, db = a.to_dict(), b.to_dict()
    assert {k: v for k, v in da.items() if k not in strip} == \
        {k: v for k, v in db.items() if k not in strip}
    ga = [g["best_expression"] for g in store.read_generations(a.run_dir)]
    assert ga == [g["best_expression"] for g in store.read_generations(b.run_dir)]


def test_stagnation_restarts_from_a_new_population(tmp_path):
    out = rediscover(RediscoveryConfig(seed=4, out=str(tmp_path), population=20, generations=8,
                                       time_budget=0.0, restart_after=1, library_size=0),
                     quiet=True)
    assert out.restarts >= 1
    gens = store.read_generations(out.run_dir)
    assert [g["generation"] for g in gens] == list(range(out.generations_run + 1))
    assert gens[-1]["restarts"] == out.restarts
    assert all(a["seconds"] <= b["seconds"] for a, b in zip(gens, gens[1:]))


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match="population.*1000"):
        RediscoveryConfig(population=2000)


# --- the command ------------------------------------------------------------------------------

def test_command_runs_one_seed(tmp_path, capsys):
    assert reproduce_cli(["reproduce-ngl", "target", "--seed", "1", "--population", "40",
                 "--generations", "2", "--out", str(tmp_path), "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(("rediscovered (exact)", "rediscovered (behavioural)",
                            "not rediscovered"))


def test_command_table_over_seeds(tmp_path, capsys):
    table = tmp_path / "table"
    assert reproduce_cli(["reproduce-ngl", "target", "--seeds", "2", "--population", "30",
                 "--generations", "1", "--out", str(tmp_path / "runs"), "--table",
                 str(table)]) == 0
    text = capsys.readouterr().out
    assert "behavioural success:" in text and "/2 seeds" in text
    assert "seed 0:" in text and "seed 1:" in text
    rows = (table / "rediscovery.csv").read_text().splitlines()
    assert rows[0].startswith("seed,level,generation,seconds,expression,max_rel_grad_error")
    assert len(rows) == 3
    md = (table / "rediscovery.md").read_text()
    assert "Environment: python" in md and "deap" in md and "sympy" in md


def test_command_refuses_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        reproduce_cli(["reproduce-ngl", "--mode", "exact"])
    with pytest.raises(ValueError, match="--run is for reproduce-ngl proxy"):
        reproduce_cli(["reproduce-ngl", "target", "--run", str(tmp_path)])
    with pytest.raises(ValueError, match="--table needs --seeds"):
        reproduce_cli(["reproduce-ngl", "target", "--table", str(tmp_path)])
    with pytest.raises(ValueError, match="FIELD one of"):
        reproduce_cli(["reproduce-ngl", "target", "--set", "no_such=1"])
    with pytest.raises(ValueError, match="library_size takes a int"):
        reproduce_cli(["reproduce-ngl", "target", "--set", "library_size=many"])


def test_set_types_each_lever_by_its_default():
    from gp_search.cli.reproduce import parse_settings

    assert parse_settings(["library_size=0", "term_weights=false", "parsimony=0"]) == {
        "library_size": 0, "term_weights": False, "parsimony": 0.0}


def test_within_ci_is_the_reference_t_interval():
    from gp_search.rediscovery.confirm import within_ci

    ngl = [0.80, 0.82, 0.78, 0.81, 0.79]  # mean 0.80, 95 % t-interval ± 0.0196
    assert within_ci([0.80, 0.81, 0.79, 0.80, 0.81], ngl)[0] is True
    assert within_ci([0.818] * 5, ngl)[0] is True
    assert within_ci([0.821] * 5, ngl)[0] is False
    assert within_ci([0.70] * 5, ngl)[0] is False
    assert within_ci([0.80, math.nan, 0.80, 0.80, 0.80], ngl)[0] is False  # a failed training


def test_confirm_trains_and_withdraws_a_behavioural_level_that_trains_badly():
    from gp_search.rediscovery.confirm import confirm
    from gp_search.rediscovery.targeted import Outcome

    like = Outcome(0, "behavioural", 3, 1.0, "x", 1e-3, 1e-4, 13, behavioural_generation=3,
                   loss=NGL.prefix)  # NGL itself: within its own interval
    bad = Outcome(1, "behavioural", 2, 1.0, "x", 1e-3, 1e-4, 3, behavioural_generation=2,
                  loss="exp(y_pred)")  # ignores the target: chance accuracy
    none = Outcome(2, "none", None, None, "x", 1.0, 1.0, 3, loss="y_pred")
    ref = confirm([like, bad, none], jobs=1, proxy="synthetic-mlp", seeds=3)
    assert ref["n"] == 3 and ref["ci_low"] <= ref["mean"] <= ref["ci_high"]
    assert like.confirmed is True and like.level == "behavioural"
    assert like.accuracy == pytest.approx(ref["mean"])
    assert bad.confirmed is False and bad.level == "none" and bad.generation is None
    assert bad.accuracy < ref["ci_low"] and "outside" in bad.confirmation
    assert none.confirmed is None  # never reached the gradient criterion: nothing to train


@pytest.mark.slow
def test_one_real_seed_rediscovers_ngl(tmp_path):
    out = rediscover(RediscoveryConfig(seed=0, out=str(tmp_path)), quiet=True)
    assert out.level in ("exact", "behavioural") and out.seconds_total < 600


def test_main_table_lists_lever_tables_by_their_differences(tmp_path):
    table = tmp_path / "table"
    common = ["reproduce-ngl", "target", "--seeds", "1", "--population", "30",
              "--generations", "1", "--out", str(tmp_path / "runs")]
    assert reproduce_cli(common + ["--table", str(table / "rediscovery_levers"), "--table-name",
                          "no-library", "--set", "library_size=0"]) == 0
    summary = json.loads((table / "rediscovery_levers" / "no-library.json").read_text())
    assert summary["settings"]["library_size"] == 0 and summary["n"] == 1
    assert reproduce_cli(common + ["--table", str(table)]) == 0
    md = (table / "rediscovery.md").read_text()
    assert "| no-library | library_size = 0 | " in md


def test_deprecated_mode_flag_still_runs_and_the_table_records_the_command_given(tmp_path,
                                                                                 capsys):
    table = tmp_path / "table"
    argv = ["reproduce-ngl", "--mode", "target", "--seeds", "1", "--population", "30",
            "--generations", "1", "--out", str(tmp_path / "runs"), "--table", str(table)]
    assert reproduce_cli(argv) == 0
    err = capsys.readouterr().err
    assert "--mode is deprecated since 0.1.0 and will be removed in 0.3.0" in err
    assert "use `gp-search reproduce-ngl target`" in err
    md = (table / "rediscovery.md").read_text()
    assert "gp-search reproduce-ngl --mode target --seeds 1 --population 30" in md  # as given
    assert json.loads((table / "env.json").read_text())["command"] == ["gp-search", *argv]
    with pytest.raises(ValueError, match="give the mode"):
        reproduce_cli(["reproduce-ngl", "--seeds", "1"])
    with pytest.raises(ValueError, match="disagree"):
        reproduce_cli(["reproduce-ngl", "target", "--mode", "proxy"])


def test_fold_derivatives_equal_torch_autograd():
    """The hyper-dual fold (its φ', φ'' from the primitive table's SymPy column) ≡ autograd."""
    import random

    import numpy as np
    import torch
    from deap import gp

    from gp_search.lang import primitives as P
    from gp_search.rediscovery.behaviour import fold, probe_elements

    p_np, t_np = probe_elements()
    random.seed(3)
    checked = 0
    while checked < 30:
        tree = gp.PrimitiveTree(gp.genHalfAndHalf(P.pset("paper"), 1, 4))
        slots = constant_slots(tree)
        if not slots:
            continue
        theta = np.array([float(tree[i].value) for i in slots])
        with np.errstate(all="ignore"):
            v, vp, vt, vpt = fold(tree, p_np, t_np, theta)
        if not all(np.all(np.isfinite(a)) and np.abs(a).max() < 1e8 for a in (v, vp, vt, vpt)):
            continue
        p = torch.tensor(p_np, requires_grad=True)
        th = torch.tensor(theta)[:, None].repeat(1, len(p_np)).requires_grad_(True)  # per element
        stack, k = [], len(slots)
        for node in reversed(tree):
            if isinstance(node, gp.Primitive):
                stack.append(P.BY_NAME[node.name].torch_fn(*(stack.pop() for _ in range(node.arity))))
            elif node.value == P.PRED:
                stack.append(p)
            elif node.value == P.REAL:
                stack.append(torch.tensor(t_np))
            elif isinstance(type(node), gp.MetaEphemeral):
                k -= 1
                stack.append(th[k])
            else:
                stack.append(torch.full_like(p, float(node.value)))
        value = stack[0] + 0 * p  # every tree here depends on something with a gradient
        d_p, d_t = torch.autograd.grad(value.sum(), (p, th), create_graph=True, allow_unused=True)
        d_pt = torch.autograd.grad(d_p.sum(), th, allow_unused=True)[0] if d_p.requires_grad \
            else None
        zero = torch.zeros_like(th)
        for mine, ref in ((v, value), (vp, d_p), (vt, d_t if d_t is not None else zero),
                          (vpt, d_pt if d_pt is not None else zero)):
            np.testing.assert_allclose(np.broadcast_to(mine, ref.shape), ref.detach().numpy(),
                                       rtol=1e-9, atol=1e-9, err_msg=str(tree))
        checked += 1
