"""The one validator (gp_search.core.checks) and the vocabulary (gp_search.core.vocab)."""

import csv
import io
import json
import math
from dataclasses import dataclass

import pytest

from gp_search.core.checks import is_kind, rule, validate
from gp_search.core.vocab import Fidelity, Route, Status


@dataclass(frozen=True)
class Demo:
    count: int = rule(3, "a count", min=1, max=10)
    rate: float = rule(0.5, "a rate", min=0.0, max=1.0)
    floor: float = rule(0.0, "at least zero", min=0.0, note="(0: none)")
    scale: float = rule(1.0, "positive", above=0.0)
    mode: str = rule("a", "a mode", choices=("a", "b", "c"))
    names: tuple = rule(("x",), "names", check=(lambda d, v: len(v) <= d.count,
                                                 "hold at most count names"))
    root: str | None = None

    def __post_init__(self):
        validate(self, "demo field")


@pytest.mark.parametrize("field, value, message", [
    ("count", "3", "demo field 'count' must be int, got '3'"),
    ("count", True, "demo field 'count' must be int, got True"),
    ("count", 2.0, "demo field 'count' must be int, got 2.0"),
    ("rate", "0.5", "demo field 'rate' must be a number, got '0.5'"),
    ("names", "x", "demo field 'names' must be tuple, got 'x'"),
    ("root", 3, "demo field 'root' must be str or None, got 3"),
    ("count", 0, "demo field 'count' must be in 1..10; got 0"),
    ("count", 11, "demo field 'count' must be in 1..10; got 11"),
    ("rate", 1.5, "demo field 'rate' must be in [0, 1]; got 1.5"),
    ("rate", math.nan, "demo field 'rate' must be in [0, 1] and finite; got nan"),
    ("floor", -1.0, "demo field 'floor' must be >= 0 (0: none); got -1.0"),
    ("floor", math.inf, "demo field 'floor' must be >= 0 and finite (0: none); got inf"),
    ("scale", 0.0, "demo field 'scale' must be > 0; got 0.0"),
    ("mode", "d", "demo field 'mode' must be 'a', 'b' or 'c'; got 'd'"),
    ("names", ("x", "y", "z", "w"), "demo field 'names' must hold at most count names; "
                                    "got ('x', 'y', 'z', 'w')"),
])
def test_each_rule_kind_refuses_naming_field_rule_and_value(field, value, message):
    with pytest.raises(ValueError) as info:
        Demo(**{field: value})
    assert str(info.value) == message


def test_json_forms_are_normalised_and_good_values_pass():
    d = Demo(count=10, rate=1, floor=0, names=["a", "b"], root="/data")
    assert d.rate == 1.0 and isinstance(d.rate, float) and isinstance(d.floor, float)
    assert d.names == ("a", "b")
    assert Demo(root=None).root is None


def test_rules_between_fields_see_every_kind_checked_first():
    # 'names' is checked against 'count'; a bad 'count' is reported as a kind error, not a crash
    with pytest.raises(ValueError, match="'count' must be int"):
        Demo(count="many", names=("a",))


def test_is_kind_keeps_bools_out_of_numbers():
    assert is_kind(1, "number") and is_kind(1.5, "float") and not is_kind(True, "number")
    assert is_kind(1, "int") and not is_kind(1.0, "int") and is_kind([1], "list")


def test_vocabulary_is_the_plain_strings_in_every_file_format():
    assert Status.OK == "ok" and Status("timeout") is Status.TIMEOUT
    assert [s.value for s in Status] == ["ok", "rejected", "nan", "diverged", "timeout", "error"]
    assert json.dumps({Route.SHORT: Fidelity.FULL}) == '{"short": "full"}'
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([Status.NAN, f"{Fidelity.SHORT}"])
    assert buf.getvalue() == "nan,short\n"
    assert {"rejected": 1}[Route.REJECTED] == 1


def test_search_config_and_eval_result_use_the_validator():
    from gp_search.proxies.spec import EvalResult, ProxySpec
    from gp_search.engine.config import SearchConfig

    with pytest.raises(ValueError, match=r"'steps' must be in 0\.\.10000000 \(0 = the proxy's own budget\); got -1"):
        SearchConfig(steps=-1)
    with pytest.raises(ValueError, match="EvalResult field 'status' must be 'ok', 'rejected'"):
        EvalResult("fine")
    with pytest.raises(ValueError, match="proxy field 'lr' must be > 0; got 0.0"):
        ProxySpec("p", "digits", "mlp", lr=0.0)
