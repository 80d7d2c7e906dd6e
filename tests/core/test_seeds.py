"""The one parser of --seeds / seeds= and --jobs / jobs= (gp_search.core.seeds), and the commands
that share it."""

import os

import pytest

from gp_search.cli.main import build_parser
from gp_search.core.seeds import job_count, seed_list


@pytest.mark.parametrize("given, seeds", [
    (3, [0, 1, 2]), ("3", [0, 1, 2]), ("3,7,9", [3, 7, 9]), ([4, 1], [4, 1]), ((5,), [5]),
    (range(2), [0, 1]), (" 2 ", [0, 1]),
])
def test_counts_lists_and_text_give_the_seeds(given, seeds):
    assert seed_list(given) == seeds


@pytest.mark.parametrize("given, minimum, says", [
    ("many", 1, "--seeds must be a count or a comma-separated list of integers, got 'many'"),
    ("3,x", 1, "got '3,x'"),
    (0, 1, "--seeds must be at least 1, got 0"),
    ("1", 2, "--seeds must be at least 2 (a paired test needs 2 pairs), got 1"),
    ([], 1, "--seeds must list at least 1 seed(s), got []"),
    ("3,3", 1, "distinct non-negative integers, got '3,3'"),
    ("-1,2", 1, "distinct non-negative integers, got '-1,2'"),
    (True, 1, "must be a count or a list of integers, got True"),
    ([1.5], 1, "must be a count or a list of integers, got [1.5]"),
    (2.0, 1, "must be a count or a list of integers, got 2.0"),
])
def test_bad_seeds_name_the_value_and_the_rule(given, minimum, says):
    with pytest.raises(ValueError) as info:
        seed_list(given, minimum=minimum, what="--seeds")
    assert says in str(info.value)


def test_jobs():
    assert job_count("2") == 2 and job_count(1) == 1 and job_count(-1) == (os.cpu_count() or 1)
    for bad in (0, "0", -2, "two", True, 1.0):
        with pytest.raises(ValueError, match=r"--jobs must be >= 1 \(or -1: one per core\)"):
            job_count(bad, "--jobs")


@pytest.mark.parametrize("command", [["evaluate", "--loss", "ce"], ["compare"],
                                     ["reproduce-ngl", "target"]])
def test_seeds_jobs_device_are_typed_and_defaulted_alike(command):
    args = build_parser().parse_args(command)
    assert isinstance(args.jobs, str) and args.jobs == "1"
    assert args.device == "auto"
    assert args.seeds is None or args.seeds == "5"
    given = build_parser().parse_args(command + ["--seeds", "3,7", "--jobs", "-1"])
    assert seed_list(given.seeds) == [3, 7] and job_count(given.jobs) >= 1
