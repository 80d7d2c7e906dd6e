"""Fuzzing the loss pipeline: random and adversarial inputs through parse -> LossExpr (canonical
form, fingerprint, the compiled loss on float32 logits) -> screen -> one training step; every input
ends with an outcome, none crashes.

Inputs (seeded, so a failure names a reproducible case):

* hand-written adversarial texts: deep nesting, towers of exp, huge and tiny constants,
  constant losses, losses blind to ``y_pred``, the extended set's protected operators at their
  poles, and text that looks like code;
* random prefix trees over the extended primitive table with hostile leaves (constants
  log-uniform from 1e-300 to 1e300, zeros, negatives);
* DEAP's own random trees (ramped half-and-half) over both primitive sets;
* random edits of valid texts (characters inserted, deleted, swapped, tokens spliced);
* hostile shapes: deep chains of unary functions (up to the parser's depth limit), extreme
  constants (float32's and float64's limits, ``exp``'s overflow points, multiples of π) in every
  position of a tree, long sums and products, and trees written in prefix and infix at once
  (issue 22's hang was such a text: ``exp`` of a sum that SymPy folds to 3.4e38, inside ``sin``).

Every input runs under a per-input time limit (:data:`LIMIT`, ``SIGALRM``; the harness runs in
the main thread); an input over it is a failure, named with its time. The slow tier runs 10,000
inputs; the fast tier a few hundred. ``benchmarks/fuzz.py`` runs the same generators at scale
and prints counts per outcome and the slowest inputs.
"""

from __future__ import annotations

import math
import random
import signal
import time

import pytest
import torch
from deap import gp

from gp_search.lang import primitives as P
from gp_search.lang.expr import ExprError, parse
from gp_search.lang.losses import from_expr
from gp_search.engine.screen import screen
from gp_search.proxies import get
from gp_search.proxies.spec import STATUSES
from gp_search.proxies.train import train_one

PROXY = get("synthetic-mlp").spec
_LOGITS32 = (torch.randn(8, 10, generator=torch.Generator().manual_seed(0)),
             torch.arange(8) % 10)


def adversarial() -> list[str]:
    """Hand-written hostile inputs (about 80)."""
    deep = lambda f, n, leaf="y_pred": f"{f}(" * n + leaf + ")" * n
    return [
        # nesting and size
        deep("sin", 99), deep("sin", 101), deep("cos", 400), "(" * 300 + "y_pred" + ")" * 300,
        "-" * 5000 + "y_pred", "y_pred" + "+y_pred" * 3000, "y_pred*" * 3000 + "1",
        "add(" * 60 + "y_pred" + ", y_real)" * 60, deep("square", 40), deep("abs", 90),
        _balanced("add", 10, "y_pred"), _balanced("mul", 9, "sin(y_pred)"),
        _balanced("sub", 8, "y_real"),
        # towers of exp
        deep("exp", 3), deep("exp", 5), deep("exp", 30), deep("exp", 4, "mul(y_pred, 30)"),
        "exp(exp(exp(exp(y_pred*30))))", deep("exp", 6, "1"), "exp(1000)*y_pred",
        "exp(-1000)*y_pred*y_real", "exp(exp(y_real*20))*y_pred",
        # huge and tiny constants
        "1e300*y_pred*y_real", "1e301*y_pred", "1e308*1e308*y_pred", "y_pred*1e-300*y_real",
        "y_pred*5e-324 + y_real", "y_pred*0.0*y_real", "9" * 400 + "*y_pred", "9" * 5000,
        "1e300*1e300 - 1e300*1e300 + y_pred*y_real", "y_pred*y_real*123456789.123456789",
        "sub(1e300, 1e300)*y_pred*y_real", "mul(1e200, mul(1e200, y_pred))*y_real",
        "y_pred*(1 + 1e-16) - y_pred + y_real", "cos(1e300)*y_pred*y_real",
        # constant losses and losses blind to y_pred
        "3", "1", "0", "-1e-300", "y_real", "exp(y_real)*3", "y_pred - y_pred",
        "y_real*0*y_pred", "sin(y_pred)*sin(y_pred) + cos(y_pred)*cos(y_pred)",
        "mul(0, y_pred) + y_real", "exp(2)", "sub(y_pred, y_pred)*y_real",
        # the extended set's protected operators at their poles
        "pdiv(y_pred, sub(y_real, y_real))", "pdiv(1, 0)", "plog(0)", "plog(sub(y_pred, y_pred))",
        "psqrt(neg(y_pred))", "pdiv(y_pred, 1e-300)", "pdiv(1e300, y_pred)*y_real",
        "max(y_pred, 1e300)*y_real", "min(y_pred, -1e300)*y_real", "plog(plog(plog(y_pred)))",
        "pdiv(pdiv(y_pred, y_real), pdiv(y_real, y_pred))", "tanh(1e300*y_pred)*y_real",
        "psqrt(psqrt(psqrt(0)))*y_pred", "abs(y_pred - y_real)", "square(exp(exp(y_pred)))",
        "max(y_pred, y_pred)", "min(y_real, y_real)*y_pred", "Abs(y_pred - y_real)",
        "Min(y_pred, y_real, 1, 2)", "Max(y_pred)",
        # text that looks like code, or is not the loss language
        "__import__('os').system('echo hacked')", "y_pred.__class__", "lambda: 0", "[y_pred]",
        "f'{y_pred}'", "y_pred if y_real else 0", "y_pred @ y_real", "y_pred ** y_real",
        "y_pred / y_real", "y_pred ** 100", "y_pred ** 16", "y_pred ** -1", "y_pred ** 0.5",
        "exp(y_pred, y_real)", "exp()", "exp(*[y_pred])", "exp(x=y_pred)", "\x00", "y_pred\x00",
        "\uff59_pred", "True*y_pred", "None", "...", "y_pred;import os", "y_pred\nimport os",
        "#", "", "   ", "1j*y_pred", "0x10*y_pred", "1_000*y_pred", "nan*y_pred",
        "float('nan')", "y_pred < y_real", "not y_pred", "y_pred and y_real", "(y_pred, y_real)",
        "{y_pred}", "y_pred[0]", "y_pred.T", "x" * 30000, "exp(" * 5 + "y_pred",
        "sin(y_pred))", "add(y_pred)", "add(y_pred, y_real, y_pred)", "pdiv(y_pred)",
        "y_pred // 2", "y_pred % 2", "2 ** 2000", "y_pred / 0", "y_pred / 1e-320", "--y_pred",
        # issue 22: SymPy folds a sum to 3.4e38 inside exp, inside sin (hung for hours)
        ISSUE_22, "sin(exp(exp(exp(y_pred - y_pred + 5))))*y_real",
        "cos(exp(y_pred - y_pred + 3.4e38))*y_pred*y_real", "sin(exp(y_pred*0 + 1e300))*y_real",
        "sin(mul(sub(y_pred, y_pred), 1e300) + 1e300)*y_pred*y_real",
        "exp(exp(y_pred - y_pred + 700.0))*y_pred", "y_pred*y_real*exp(y_pred - y_pred - 1e300)",
        _balanced("mul", 8, "exp(sin(y_pred))"), "add(" + ", ".join(["sin(y_pred)"] * 400) + ")",
    ]


ISSUE_22 = ("(y_pred + (y_pred + exp((sin(exp((add((y_pred - 1), add(-4.813, y_pred)) - (y_pred + "
            "sub(y_pred, 3.4e38))))) * mul(mul(cos(y_pred), sin(sub(y_pred, (y_pred - y_pred))))"
            ", y_pred)))))")


def _balanced(fn: str, depth: int, leaf: str) -> str:
    text = leaf
    for _ in range(depth):
        text = f"{fn}({text}, {text})"
    return text


def _leaf(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return "y_pred"
    if r < 0.6:
        return "y_real"
    if r < 0.7:
        return "1"
    if r < 0.75:
        return rng.choice(["0", "0.0", "-0.0", "5e-324", "1e300", "-1e300"])
    sign = rng.choice(["", "-"])
    return f"{sign}{10 ** rng.uniform(-300, 300):.6g}" if r < 0.85 else f"{rng.uniform(-3, 3):.4f}"


def random_tree(rng: random.Random, depth: int) -> str:
    """A random prefix expression over the whole (extended) table with hostile leaves."""
    if depth <= 0 or rng.random() < 0.15:
        return _leaf(rng)
    prim = rng.choice(P.TABLE)
    args = ", ".join(random_tree(rng, depth - 1) for _ in range(prim.arity))
    return f"{prim.name}({args})"


def deap_tree(rng: random.Random) -> str:
    """A DEAP ramped half-and-half tree over a random set (DEAP draws from global random)."""
    state = random.getstate()
    random.seed(rng.randrange(2**32))
    try:
        ps = P.pset(rng.choice(P.SET_NAMES))
        return str(gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, rng.randint(2, 7))))
    finally:
        random.setstate(state)


_SPLICE = ["y_pred", "y_real", "(", ")", ",", "*", "+", "-", "exp(", "pdiv(", "1e300", "0", "**",
           "/", ".", "e", " ", "__", "import", "lambda"]


def mutated_text(rng: random.Random) -> str:
    """A valid loss text with a few random edits."""
    text = rng.choice(["exp(2.4092 - y_pred*(1 + y_real)) - cos(cos(sin(y_pred)))",
                       "sub(exp(sub(2.4092, mul(y_pred, add(1, y_real)))), cos(cos(sin(y_pred))))",
                       "y_pred*(1 - y_real)", "pdiv(y_pred, add(y_real, 1))",
                       random_tree(rng, 4)])
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(text) + 1)
        op = rng.random()
        if op < 0.3:
            text = text[:i] + text[i + 1:]
        elif op < 0.6:
            text = text[:i] + rng.choice(_SPLICE) + text[i:]
        elif op < 0.8 and len(text) > 1:
            j = rng.randrange(len(text))
            chars = list(text)
            chars[i % len(text)], chars[j] = chars[j], chars[i % len(text)]
            text = "".join(chars)
        else:
            text = text[:i] + chr(rng.randrange(32, 127)) + text[i:]
    return text


EXTREME = ("3.4e38", "-3.4e38", "3.5e38", "1e300", "-1e300", "1.7e308", "1e-300", "5e-324",
           "709.78", "710", "-745.2", "88.72", "89", "1e15", "1e16", "3.14159265358979",
           "6.283185307179586", "1e38", "0.0", "-0.0", "2.4092", "1")


def hostile_tree(rng: random.Random, depth: int, p_extreme: float = 0.5) -> str:
    """A random tree whose leaves are extreme constants with probability ``p_extreme``, written
    in prefix and infix at once (each node picks how it prints)."""
    if depth <= 0 or rng.random() < 0.1:
        return rng.choice(EXTREME) if rng.random() < p_extreme else rng.choice(["y_pred", "y_real"])
    prim = rng.choice(P.TABLE)
    args = [hostile_tree(rng, depth - 1, p_extreme) for _ in range(prim.arity)]
    infix = {"add": "+", "sub": "-", "mul": "*"}.get(prim.name)
    if infix and rng.random() < 0.5:
        return f"({args[0]} {infix} {args[1]})"
    return f"{prim.name}({', '.join(args)})"


def deep_chain(rng: random.Random) -> str:
    """Unary functions nested up to the parser's depth limit, with binary steps mixed in."""
    text = rng.choice(["y_pred", "y_real", rng.choice(EXTREME)])
    for _ in range(rng.randint(10, 98)):
        r = rng.random()
        if r < 0.7:
            text = f"{rng.choice(['exp', 'sin', 'cos', 'neg', 'tanh', 'abs', 'square', 'plog', 'psqrt'])}({text})"
        else:
            other = rng.choice(["y_pred", "y_real", rng.choice(EXTREME)])
            op = rng.choice(["add", "sub", "mul", "+", "*", "-"])
            text = f"{op}({text}, {other})" if op.isalpha() else f"({text} {op} {other})"
    return text


def long_sum(rng: random.Random) -> str:
    """A long sum or product (up to a few hundred terms), infix or n-ary prefix."""
    terms = [rng.choice(["y_pred", "y_real", "sin(y_pred)", "exp(y_real)", rng.choice(EXTREME),
                         f"{rng.uniform(-3, 3):.4f}*y_pred*y_real"])
             for _ in range(rng.randint(20, 300))]
    op = rng.choice(["+", "*", "-"])
    if rng.random() < 0.5:
        return f" {op} ".join(terms)
    name = "add" if op != "*" else "mul"
    return f"{name}({', '.join(terms)})"


def hostile(rng: random.Random) -> str:
    """One of the hostile shapes: extreme constants, a deep chain, or a long sum/product."""
    r = rng.random()
    if r < 0.6:
        return hostile_tree(rng, rng.randint(2, 8), rng.choice([0.2, 0.5, 0.9]))
    return deep_chain(rng) if r < 0.8 else long_sum(rng)


def cases(n_random: int, n_deap: int, n_mutated: int, seed: int = 0,
          n_hostile: int = 0) -> list[str]:
    """The adversarial list, then seeded random trees, DEAP trees, mutated texts and hostile
    shapes."""
    rng = random.Random(seed)
    return (adversarial() + [random_tree(rng, rng.randint(1, 7)) for _ in range(n_random)]
            + [deap_tree(rng) for _ in range(n_deap)]
            + [mutated_text(rng) for _ in range(n_mutated)]
            + [hostile(rng) for _ in range(n_hostile)])


def mix(n: int, seed: int) -> list[str]:
    """``n`` inputs: the adversarial list, then 30 % random trees, 25 % DEAP trees, 25 % edited
    texts and 20 % hostile shapes (the slow test's and ``benchmarks/fuzz.py``'s mix)."""
    rest = max(0, n - len(adversarial()))
    n_random, n_deap, n_mutated = rest * 30 // 100, rest * 25 // 100, rest * 25 // 100
    return cases(n_random=n_random, n_deap=n_deap, n_mutated=n_mutated, seed=seed,
                 n_hostile=rest - n_random - n_deap - n_mutated)


def outcome(text: str, steps: int = 1) -> str:
    """Drive one input through the pipeline; return its outcome, e.g. ``"screen:numeric/ok"``.

    Raises:
        AssertionError: an invariant broke (the message names the input); any other exception
            escaping is a crash, which is what the fuzz test looks for.
    """
    try:
        e = parse(text)
    except ExprError:
        return "parse-error"
    try:
        key, fp = e.canonical, e.fingerprint
    except ExprError:
        return "no-finite-value"
    assert isinstance(key, str) and key and isinstance(fp, str) and fp, text
    value = e.to_torch()(*_LOGITS32)  # the compiled loss in float32, as it trains
    assert value.dtype == torch.float32 and value.shape == (), text
    again = parse(e.prefix)  # the prefix text is a faithful serialisation of the tree
    assert again.prefix == e.prefix and again.canonical == key, text
    verdict = screen(e)
    assert isinstance(verdict.passed, bool), text
    screened = "pass" if verdict.passed else f"reject:{verdict.check}"
    # Trained whatever the verdict: the training must be safe even for what screening rejects.
    result = train_one(PROXY, from_expr(e), seed=0, steps=steps)
    assert result.status in STATUSES and result.budget == steps, (text, result)
    if result.status == "ok":
        assert 0.0 <= result.accuracy <= 1.0, (text, result)
    else:
        assert math.isnan(result.accuracy) and (result.message or result.status == "rejected"), \
            (text, result)
    return f"screen:{screened}/train:{result.status}"


LIMIT = 20.0
"""Seconds one input may take through the whole pipeline (canonical form ~2 s at most, the
screen and one training step well under a second): a hang guard, generous for a loaded
machine."""


class OverLimit(BaseException):
    """An input ran past :data:`LIMIT` (raised by the alarm; a BaseException, so that nothing on
    the way catches it)."""


def _alarm(signum, frame):
    raise OverLimit


def timed_outcome(text: str, limit: float = LIMIT) -> tuple[str, float]:
    """:func:`outcome` under a time limit: ``(outcome, seconds)``, outcome ``"over-limit"`` when
    the input took longer (the alarm interrupts it: the harness runs in the main thread)."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        got = outcome(text)
    except OverLimit:
        got = "over-limit"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return got, time.perf_counter() - t0


def run(texts: list[str], limit: float = LIMIT, slowest: list | None = None) -> dict[str, int]:
    """Counts per outcome; AssertionError on the first crash, and at the end for every input
    over ``limit`` seconds. ``slowest``, when given, receives ``(seconds, text)`` of each input."""
    counts: dict[str, int] = {}
    over = []
    for text in texts:
        try:
            got, seconds = timed_outcome(text, limit)
        except AssertionError:
            raise
        except BaseException as exc:
            raise AssertionError(f"crash on {text[:200]!r}: {type(exc).__name__}: {exc}") from exc
        if got == "over-limit":
            over.append(f"{seconds:.1f} s: {text[:200]!r}")
        if slowest is not None:
            slowest.append((seconds, text))
        counts[got] = counts.get(got, 0) + 1
    assert not over, f"{len(over)} input(s) over the {limit:g} s limit:\n" + "\n".join(over)
    return counts


def test_adversarial_inputs_all_get_an_outcome():
    texts = adversarial()
    counts = run(texts)
    assert sum(counts.values()) == len(texts)
    # The list exercises every stage, not only the parser.
    assert counts.get("parse-error", 0) >= 30
    assert any(k.startswith("screen:reject:structural") for k in counts)
    assert any(k.startswith("screen:reject:numeric") for k in counts)
    assert any(k.endswith("/train:ok") for k in counts)
    assert any(k.endswith("/train:rejected") for k in counts)  # blind to y_pred: not trained
    assert any(k.endswith(("/train:nan", "/train:diverged")) for k in counts)


def test_code_looking_text_runs_nothing(tmp_path):
    marker = tmp_path / "hacked"
    for text in (f"__import__('os').system('touch {marker}')",
                 f"exp(__import__('pathlib').Path('{marker}').touch())",
                 f"sin(open('{marker}', 'w'))"):
        assert outcome(text) == "parse-error"
    assert not marker.exists()


def test_a_few_hundred_random_inputs_all_get_an_outcome():
    texts = cases(n_random=100, n_deap=80, n_mutated=100, seed=1, n_hostile=60)
    counts = run(texts)
    assert sum(counts.values()) == len(texts) >= 400
    assert len(counts) >= 6  # the random inputs reach many different outcomes


def test_hostile_shapes_reach_every_stage():
    rng = random.Random(5)
    texts = [hostile(rng) for _ in range(30)]
    counts = run(texts)
    assert counts.get("no-finite-value", 0) >= 1  # extreme constants overflow somewhere
    assert any(k.startswith("screen:") for k in counts)  # and some get through to screening
    assert any(("(" in t and "add(" in t and " + " in t) for t in texts)  # prefix and infix mixed


def test_issue_22_text_is_refused_within_the_bound():
    got, seconds = timed_outcome(ISSUE_22)
    assert got == "no-finite-value"
    with pytest.raises(ExprError, match=r"the subtree exp\(sub\(.*3\.4e\+38.*outside float64"):
        parse(ISSUE_22).canonical  # noqa: B018


def test_an_input_over_the_limit_is_a_failure_named_with_its_time(monkeypatch):
    def slow(text):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(__import__(__name__), "outcome", slow)
    with pytest.raises(AssertionError, match=r"1 input\(s\) over the 0.2 s limit:\n\s*0\.\d s: 'y_pred'"):
        run(["y_pred"], limit=0.2)


@pytest.mark.slow
def test_ten_thousand_random_inputs_all_get_an_outcome():
    texts = mix(10_000, seed=2)  # benchmarks/fuzz.py runs the same and prints the figures
    counts = run(texts)
    assert sum(counts.values()) == len(texts) == 10_000
    assert counts.get("over-limit", 0) == 0


def test_the_harness_reports_a_crash_with_its_input(monkeypatch):
    def broken(expr):
        raise RuntimeError("boom")

    monkeypatch.setattr(__import__(__name__), "screen", broken)
    with pytest.raises(AssertionError, match=r"crash on 'y_pred\*y_real': RuntimeError: boom"):
        run(["y_pred*y_real"])
