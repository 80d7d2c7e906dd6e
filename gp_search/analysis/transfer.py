"""The transfer stage: losses trained on a held-out suite of tasks, paired with CE task by task.

A loss found by a search has only been seen to win on the search's proxies. :func:`transfer`
trains it, with the baselines, on every task of a suite
(:data:`gp_search.proxies.SUITES`: other data, other class counts, label noise,
other architectures, longer trainings) and measures per task each loss's mean accuracy with its 95 %
t-interval and its change against CE, paired seed by seed (:func:`gp_search.analysis.stats.paired`);
then an aggregate per loss, the mean change over the tasks and the worst task. Its tables and files:
:mod:`gp_search.analysis.transfer_tables`.

A training that does not finish (``nan``, ``diverged``, ``timeout``, ``error``, ``rejected``)
scores the chance accuracy 1/K of its task: the user of such a loss gets no better model than a
guess, and leaving it out would hide exactly the failures this stage is for. The tables count
these trainings in a ``not ok`` column.

A suite may carry tasks that are no proxy (:class:`OwnTask`): the caller trains the losses, as
the transfer stage does with a run's objective (:mod:`gp_search.analysis.transfer_stage`); such a
task's rows read like any other's, a training that did not finish scoring its ``failed`` score.

Losses are reference names, expressions, or files written by ``gp-search export``: a file is
read as text and its ``Tree:`` docstring line parsed by the whitelist parser; it is never
imported or executed.

Example:
    >>> res = transfer(["y_pred*y_real"], suite="transfer-test", seeds=2, jobs=1)
    >>> sorted({r["task"] for r in res.rows})
    ['t-digits-mod3-mlp', 't-tabular2-mlp']
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gp_search import proxies
from gp_search.analysis.compare import BASELINE, LossEntry, finished_mean
from gp_search.analysis.stats import paired, summarize
from gp_search.lang import parse
from gp_search.lang import REFERENCE, resolve
from gp_search.parallel import evaluate
from gp_search.proxies import metric_label
from gp_search.proxies import suite_tasks
from gp_search.proxies import dataset_for
from gp_search.core import seed_list as parse_seeds

DEFAULT_BASELINES = ("ce", "ngl", "label_smoothing", "focal")
MAX_LOSS_FILE = 1 << 20
"""Largest exported loss file read (bytes); an export is a few kB."""
_TREE_LINE = re.compile(r"^Tree:[ \t]*(\S.*?)[ \t]*$", re.MULTILINE)

ROW_FIELDS = ("task", "classes", "loss", "n", "not_ok", "acc_mean", "acc_ci_low", "acc_ci_high",
              "diff_vs_ce", "diff_ci_low", "diff_ci_high", "p_value", "seconds_mean", "ece_mean",
              "ece_scaled_mean", "temperature_mean")
"""Columns of ``transfer.csv``: one row per (task, loss); accuracies and changes as fractions;
calibration (:mod:`gp_search.proxies.calibration`: ECE, ECE after temperature scaling fitted on
the other half of the test split, the fitted temperature) as the mean over the finished seeds."""


def read_loss(text: str) -> LossEntry:
    """A loss named on the command line: a reference name, an expression, or an exported file.

    Args:
        text: ``"ngl"``, ``"exp(-y_pred*y_real)"``, or the path of a file from
            ``gp-search export`` (torch, NumPy, JAX or SymPy), whose ``Tree: <prefix>``
            docstring line is parsed (the file is read as text, never run).

    Returns:
        A :class:`gp_search.analysis.compare.LossEntry` (label, spec text, origin).

    Raises:
        ValueError: text that is no loss, or a file without a readable ``Tree:`` line.
    """
    key = text.strip().lower()
    if key in REFERENCE:
        return LossEntry(key, key, "reference")
    path = Path(text)
    if path.suffix == ".py" or path.is_file():
        if not path.is_file():
            raise ValueError(f"loss file {text!r} does not exist; give an exported file, a "
                             f"reference name or an expression")
        if path.stat().st_size > MAX_LOSS_FILE:
            raise ValueError(f"loss file {text!r} is larger than {MAX_LOSS_FILE} bytes; an "
                             f"exported loss is a few kB (write one with gp-search export)")
        found = _TREE_LINE.findall(path.read_text(errors="replace"))
        if len(found) != 1:
            raise ValueError(f"loss file {text!r} must hold exactly one 'Tree: <expression>' "
                             f"line (as gp-search export writes), found {len(found)}")
        expr = parse(found[0])  # the whitelist parser; ExprError (a ValueError) names the token
        return LossEntry(path.stem, expr.prefix, str(path))
    resolve(text)  # an ExprError names the bad token now, not in a worker
    return LossEntry(text.strip(), text.strip(), "argument")


@dataclass
class Transfer:
    """What :func:`transfer` measured.

    Attributes:
        suite: the suite's name.
        entries: the losses, CE first.
        tasks: the suite's proxies, in order (with their overrides), then the
            :class:`OwnTask` s.
        seeds: the training seeds (the same for every loss and task).
        results: ``(task name, loss label) -> [EvalResult per seed]``.
        rows: one dict per (task, loss), keys :data:`ROW_FIELDS`.
        aggregate: one dict per loss but CE: ``mean_diff`` (unweighted mean over tasks of the
            change vs CE), ``worst_task``, ``worst_diff``, ``tasks_worse`` (tasks whose paired
            CI lies wholly below 0), ``tasks_better``, and the calibration means over tasks
            ``mean_ece``, ``mean_ece_scaled``, ``mean_temperature``.
    """

    suite: str
    entries: list[LossEntry]
    tasks: list[proxies.Proxy]
    seeds: list[int]
    results: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    aggregate: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class OwnTask:
    """A task of a suite that is no proxy: the caller trains the losses.

    Attributes:
        name: the task's name in the tables.
        description: what the task is, for ``transfer.md``.
        metric: the score's name as printed.
        train: ``(loss specs, seeds) -> results``, loss-major (``len(specs) * len(seeds)``
            :class:`gp_search.proxies.spec.EvalResult`).
        failed: the score of a training that did not finish.
    """

    name: str
    description: str
    metric: str
    train: Callable[[list[str], list[int]], list]
    failed: float = 0.0


def _classes(task) -> int | None:
    """The class count of a proxy's dataset (None for an :class:`OwnTask`)."""
    return None if isinstance(task, OwnTask) else dataset_for(task.spec).num_classes


def metric_name(task) -> str:
    """A task's metric as printed (``"accuracy"``, ``"mIoU"``, an objective's own name)."""
    return task.metric if isinstance(task, OwnTask) else metric_label(task.spec.metric)


def scored(results, num_classes: int) -> list[float]:
    """Accuracy per seed, a training that did not finish scored at chance (1/K)."""
    return [r.accuracy if r.ok else 1.0 / num_classes for r in results]


def _row(task, k: int | None, entry: LossEntry, results, ce_results) -> dict:
    if k is None:  # an OwnTask: a failed training scores its floor
        acc, ce = ([r.accuracy if r.ok else task.failed for r in rs]
                   for rs in (results, ce_results))
    else:
        acc, ce = scored(results, k), scored(ce_results, k)
    s, d = summarize(acc), paired(acc, ce)
    calibration = {f"{name}_mean": finished_mean(results, name)
                   for name in ("ece", "ece_scaled", "temperature")}
    return {"task": task.name, "classes": k, "loss": entry.label, "n": s["n"],
            "not_ok": sum(not r.ok for r in results), "acc_mean": s["mean"],
            "acc_ci_low": s["ci_low"], "acc_ci_high": s["ci_high"], "diff_vs_ce": d["diff"],
            "diff_ci_low": d["ci_low"], "diff_ci_high": d["ci_high"], "p_value": d["p_value"],
            "seconds_mean": sum(r.seconds for r in results) / len(results), **calibration}


def nan_mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _aggregate(rows: list[dict], entries: list[LossEntry]) -> list[dict]:
    out = []
    for e in entries[1:]:
        mine = [r for r in rows if r["loss"] == e.label]
        worst = min(mine, key=lambda r: r["diff_vs_ce"])
        out.append({"loss": e.label,
                    "mean_diff": sum(r["diff_vs_ce"] for r in mine) / len(mine),
                    **{f"mean_{name}": nan_mean([r[f"{name}_mean"] for r in mine])
                       for name in ("ece", "ece_scaled", "temperature")},
                    "worst_task": worst["task"], "worst_diff": worst["diff_vs_ce"],
                    "tasks_worse": sum(r["diff_ci_high"] < 0 for r in mine),
                    "tasks_better": sum(r["diff_ci_low"] > 0 for r in mine)})
    return out


def transfer(losses: Sequence[str | LossEntry], suite: str = "transfer",
             seeds: int | Sequence[int] = 5, jobs: int = 2, baselines: Sequence[str] = DEFAULT_BASELINES, device: str = "cpu",
             progress: Callable[[str], None] | None = None,
             tasks: Sequence[proxies.Proxy] = (), own: Sequence[OwnTask] = ()) -> Transfer:
    """Train ``losses`` and the baselines on every task of ``suite``; pair each with CE per seed.

    Args:
        losses: reference names, expressions, exported files (:func:`read_loss`) or entries.
        suite: a key of :data:`gp_search.proxies.SUITES`.
        seeds: a count ``n`` (seeds ``0 .. n-1``, at least 2) or the seeds; fixed before any
            dispatch, so the numbers do not depend on ``jobs``.
        jobs: worker processes (:func:`gp_search.parallel.evaluate.evaluate`).
        baselines: reference losses trained alongside; must include ``"ce"``.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        progress: called with one line per finished task.
        tasks: proxies to use instead of the suite's (e.g. your tasks: :meth:`gp_search.Task.
            proxy`); ``suite`` then only labels the result.
        own: tasks the caller trains (:class:`OwnTask`), after the suite's.

    Returns:
        The :class:`Transfer` with per-task rows and the aggregate.

    Raises:
        ValueError: unknown suite or baseline, no CE, fewer than 2 seeds, a loss that is no loss.
    """
    names = [b.strip().lower() for b in baselines]
    if BASELINE not in names or any(b not in REFERENCE for b in names):
        raise ValueError(f"baselines must be reference losses including {BASELINE!r} (every "
                         f"change is against CE), got {list(baselines)}")
    seed_list = parse_seeds(seeds, minimum=2)
    entries = [LossEntry(n, n) for n in [BASELINE] + [n for n in names if n != BASELINE]]
    for loss in losses:
        entry = loss if isinstance(loss, LossEntry) else read_loss(loss)
        if entry.label not in {e.label for e in entries}:
            entries.append(entry)
    tasks = list(tasks) or [proxies.get(name, **overrides) for name, overrides in suite_tasks(suite)]
    res = Transfer(suite, entries, tasks + list(own), seed_list)
    specs = [e.spec for e in entries]
    for proxy in res.tasks:
        k = _classes(proxy)
        flat = (proxy.train(specs, seed_list) if isinstance(proxy, OwnTask) else
                evaluate(specs, proxy, seed_list, jobs=jobs, device=device))
        n = len(seed_list)
        for i, e in enumerate(entries):
            res.results[(proxy.name, e.label)] = flat[i * n:(i + 1) * n]
        ce = res.results[(proxy.name, BASELINE)]
        res.rows += [_row(proxy, k, e, res.results[(proxy.name, e.label)], ce) for e in entries]
        if progress is not None:
            progress(f"{proxy.name}: {len(entries)} losses x {n} seeds done")
    res.aggregate = _aggregate(res.rows, entries)
    return res


def pick_best(res: Transfer, labels: Sequence[str]) -> dict:
    """The loss to ship among ``labels``: the best one that breaks no held-out task.

    A loss "breaks" a task when its paired 95 % CI against CE lies wholly below 0 there. Among
    the losses that break none, the highest mean change over the tasks wins (ties: the better
    worst task). If every one breaks some task, the one that breaks the fewest (ties: the
    better worst task) is returned with ``transfers = False``: it is the least bad, not a
    loss to recommend, and the caller says so.

    Args:
        res: what :func:`transfer` measured.
        labels: the candidate losses' labels (the baselines are not candidates).

    Returns:
        That loss's aggregate row (see :class:`Transfer`) plus ``transfers`` (bool).

    Raises:
        ValueError: no label of ``labels`` was measured.
    """
    rows = [a for a in res.aggregate if a["loss"] in set(labels)]
    if not rows:
        raise ValueError(f"none of {list(labels)} was measured on suite {res.suite!r}")
    safe = [a for a in rows if a["tasks_worse"] == 0]
    if safe:
        return {**max(safe, key=lambda a: (a["mean_diff"], a["worst_diff"])), "transfers": True}
    least_bad = min(rows, key=lambda a: (a["tasks_worse"], -a["worst_diff"]))
    return {**least_bad, "transfers": False}
