"""Screening: which candidates are rejected before training, and that it never raises."""

import random

import pytest
from deap import gp

from gp_search import NGL
from gp_search import parse
from gp_search.lang import primitives as P
from gp_search.lang.expr import from_tree
from gp_search.search.screen import screen


@pytest.mark.parametrize("text", [NGL.prefix, "(y_pred - y_real)**2", "-y_pred*y_real",
                                  "exp(-y_pred*y_real)"])
def test_useful_losses_pass(text):
    assert screen(parse(text)).passed


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
