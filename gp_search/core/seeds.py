"""Seeds and worker counts as a user gives them (a count, a list, text): one parser for all callers.

``evaluate``, ``compare``, ``reproduce-ngl`` and the Python API all read ``--seeds`` /
``seeds=`` and ``--jobs`` / ``jobs=`` here, so they accept and refuse the same things with the
same words.
"""

from __future__ import annotations

import os
from collections.abc import Iterable


def seed_list(seeds: "int | str | Iterable[int]", minimum: int = 1,
              what: str = "seeds") -> list[int]:
    """The training seeds ``seeds`` stands for.

    Args:
        seeds: a count ``n`` (seeds ``0 .. n-1``), a list of seeds, or their text (``"5"``,
            ``"3,7,9"``).
        minimum: the fewest seeds allowed (2 where a paired test needs two pairs).
        what: how the message names the input, e.g. ``"--seeds"``.

    Returns:
        The seeds, in the order given.

    Raises:
        ValueError: naming the value and the rule: not integers, fewer than ``minimum``,
            negative or repeated seeds.

    Example:
        >>> seed_list(3), seed_list("3,7,9"), seed_list([4, 1])
        ([0, 1, 2], [3, 7, 9], [4, 1])
    """
    given = seeds
    if isinstance(seeds, str):
        try:
            seeds = [int(part) for part in seeds.split(",")]
        except ValueError:
            raise ValueError(f"{what} must be a count or a comma-separated list of integers, "
                             f"got {given!r}") from None
        if len(seeds) == 1:
            seeds = seeds[0]
    if isinstance(seeds, bool) or not isinstance(seeds, (int, Iterable)):
        raise ValueError(f"{what} must be a count or a list of integers, got {given!r}")
    if isinstance(seeds, int):
        if seeds < minimum:
            raise ValueError(f"{what} must be at least {minimum}"
                             f"{' (a paired test needs 2 pairs)' if minimum == 2 else ''}, "
                             f"got {seeds}")
        return list(range(seeds))
    seeds = list(seeds)
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"{what} must be a count or a list of integers, got {given!r}")
    if len(seeds) < minimum:
        raise ValueError(f"{what} must list at least {minimum} seed(s), got {given!r}")
    if len(set(seeds)) != len(seeds) or any(s < 0 for s in seeds):
        raise ValueError(f"{what} list must hold distinct non-negative integers, got {given!r}")
    return seeds


def job_count(jobs: "int | str", what: str = "jobs") -> int:
    """The number of worker processes ``jobs`` stands for: a positive integer, or -1 for one
    per CPU core.

    Raises:
        ValueError: naming the value and the rule.

    Example:
        >>> job_count("2"), job_count(-1) == (os.cpu_count() or 1)
        (2, True)
    """
    value = jobs
    if isinstance(jobs, str):
        try:
            value = int(jobs)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int) or (value < 1 and value != -1):
        raise ValueError(f"{what} must be >= 1 (or -1: one per core), got {jobs!r}")
    return (os.cpu_count() or 1) if value == -1 else value


__all__ = ["job_count", "seed_list"]
