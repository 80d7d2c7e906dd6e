"""Screening: which candidates are rejected before training, and that it never raises."""

import random

import pytest
from deap import gp

from gp_search import NGL
from gp_search import parse
from gp_search.lang import primitives as P
from gp_search.lang.expr import from_tree
from gp_search.lang.losses import REFERENCE
from gp_search.engine.screen import CLASSES, hard_examples, screen

PAPER_BEST = ("(y_real - sin(y_pred) - cos(y_pred) + 1.33445559691853)"
              "*cos(2.07459269147994*sin(y_pred) + 2.07459269147994)")  # results/transfer/paper-run


@pytest.mark.parametrize("text", [NGL.prefix, "(y_pred - y_real)**2", "-y_pred*y_real",
                                  "exp(-y_pred*y_real)", "-y_real*plog(y_pred)", PAPER_BEST])
def test_useful_losses_pass(text):
    assert screen(parse(text)).passed


@pytest.mark.parametrize("name", ["ce", "ngl", "label_smoothing", "focal"])
def test_reference_losses_keep_the_rare_classes(name):
    """The torch losses themselves (with their log), not trees; and issue 15's paper best."""
    assert hard_examples(REFERENCE[name].fn).passed and hard_examples(parse(PAPER_BEST)).passed


@pytest.mark.parametrize("text", ["exp(-8.24*y_pred*y_real*cos(y_real))",  # issue 20's quick best
                                  "exp(-4.9*y_pred*y_real*cos(y_real))",
                                  "exp(-13.4*y_pred*y_real*cos(y_real))",
                                  "-y_pred*y_real", "exp(-y_pred*y_real)"])
def test_losses_whose_gradient_vanishes_on_hard_examples_fail_the_check(text):
    """Bounded losses of the target's probability: their pull on the true logit shrinks with
    p_t, so on a long tail the common classes' push wins and the rare classes collapse. (A bar
    for the hall of fame, not a rejection: screen() passes some of them.)"""
    verdict = hard_examples(parse(text))
    assert not verdict.passed and verdict.check == "hard-examples", verdict
    assert "keeps" in verdict.message


@pytest.mark.parametrize("text, check", [
    ("cos(y_real) + 1", "structural"),
    ("y_pred*y_pred", "structural"),
    ("exp(exp(exp(exp(y_pred*30))))*y_real", "numeric"),
    ("y_pred*y_real", "behavioural"),      # rewards wrong classes: pushes p_t down
    ("sin(y_pred*y_real)", "behavioural"),
    ("exp(exp(exp(10)))*y_pred*y_real", "structural"),   # constant overflows
    ("1e300*y_pred*y_real", "structural"),               # float32 cannot hold it
])
def test_useless_losses_are_rejected_by_the_right_check(text, check):
    verdict = screen(parse(text))
    assert not verdict.passed and verdict.check == check, verdict
    assert verdict.message


def test_random_trees_always_get_a_verdict():
    random.seed(3)
    ps = P.pset("extended")
    passed = 0
    for _ in range(300):
        v = screen(from_tree(gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, 5)), "extended"))
        passed += v.passed
        assert v.passed or v.check in ("structural", "numeric", "behavioural", "error")
    assert 0 < passed < 300


REFERENCE_TREES = {"ce": "-y_real*plog(y_pred)", "ngl": NGL.prefix,
                   "focal": "-y_real*(1 - y_pred)**2*plog(y_pred)",
                   "label_smoothing": "-(0.9*y_real + 0.01)*plog(y_pred)"}


@pytest.mark.parametrize("name", sorted(REFERENCE_TREES))
def test_reference_losses_pass_at_every_class_count(name):
    assert CLASSES == (2, 3, 10, 100)
    assert screen(parse(REFERENCE_TREES[name])).passed


@pytest.mark.parametrize("text", [
    "0.326933*exp(y_pred*y_real + exp(y_pred) - sin(y_real))",   # found by the quick preset
    "-sin(cos(y_real) + 0.118524 - 6.09702*exp(-y_pred))",        # found by the paper preset
])
def test_found_losses_that_fail_at_two_classes_are_rejected(text):
    e = parse(text)
    assert screen(e, (10,)).passed          # what the 10-class screening let through
    verdict = screen(e)
    assert not verdict.passed and verdict.check == "behavioural"
    assert "at K = 2 classes" in verdict.message
    assert not screen(e, (3,)).passed


def test_each_class_count_follows_its_own_path():
    # Flattening every K into one evaluation must not change any K's verdict.
    random.seed(5)
    ps = P.pset("paper")
    for _ in range(60):
        e = from_tree(gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, 5)), "paper")
        alone = all(screen(e, (k,)).passed for k in CLASSES)
        assert screen(e).passed == alone, e.canonical


@pytest.mark.parametrize("classes", [(), (1,), (10, 0), (2.0,), (True,)])
def test_bad_class_counts_are_refused(classes):
    with pytest.raises(ValueError, match="classes must be"):
        screen(NGL, classes)


@pytest.mark.parametrize("text", ["exp(-8.24*y_pred*y_real*cos(y_real))", "exp(-y_pred*y_real)"])
def test_hard_true_makes_the_hard_examples_check_a_rejection(text):
    """The same losses pass checks 1-3 (screen() alone) and are rejected with hard=True."""
    assert screen(parse(text)).passed
    verdict = screen(parse(text), hard=True)
    assert not verdict.passed and verdict.check == "hard-examples", verdict


def test_hard_true_passes_what_keeps_the_rare_classes():
    assert screen(NGL, hard=True).passed and screen(parse(PAPER_BEST), hard=True).passed
