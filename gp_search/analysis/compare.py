"""Comparison of losses on proxies: paired statistics against CE, calibration and confidence.

:func:`compare` trains every loss with every seed on each proxy through the standard path
(:func:`gp_search.parallel.evaluate.evaluate`, so its accuracies are those ``gp-search evaluate`` prints)
and reduces them to one row per (proxy, loss): mean accuracy with its 95 % t-interval, the change
against cross-entropy paired by seed (same initial weights and batches, common random numbers)
with its 95 % CI and paired t-test p-value, and n.

Calibration needs the trained network's test-set softmax, which ``gp_search.proxies.train.train_one`` does
not hand out. :func:`replay` therefore repeats a sequential training from the public pieces of
``gp_search.proxies.train`` (:func:`~gp_search.proxies.train.dataset_for`, :func:`~gp_search.proxies.train.batch_indices`,
``gp_search.proxies.models.build``, the same fused Adam and the same L2 term) and keeps the test
probabilities. It is deterministic per seed; its accuracy is checked against the standard path's
for every training and the agreement is reported (``replay_agree``), so a drift in either copy
shows instead of hiding. From the replayed probabilities come the top softmax probability of
every test sample (the confidence) and the expected calibration error (:func:`ece`, 15 bins).

The score compared is each proxy's held-out metric (``ProxySpec.metric``, named in each row's
``metric``): accuracy for the classification proxies, mean IoU for the segmentation proxies
(``seg-*``), whose calibration is then counted per pixel, unlabelled pixels (255) left out.

Example:
    >>> c = compare(["ce", "ngl"], proxies=["synthetic-mlp"], seeds=2)
    >>> [(r["loss"], r["n"]) for r in c.rows]
    [('ce', 2), ('ngl', 2)]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gp_search.parallel import evaluate
from gp_search.core import job_count, seed_list
from gp_search.lang import REFERENCE, Loss, resolve
from gp_search.analysis.stats import paired, summarize
from gp_search.proxies import Proxy, from_dict
from gp_search.proxies import get as get_proxy
from gp_search.proxies import EvalResult, ProxySpec
from gp_search.proxies import ece
from gp_search.lang import IGNORE_INDEX
from gp_search.proxies import dataset_for, one_thread, resolve_device, train_one

DEFAULT_LOSSES = ("ce", "sce", "focal", "ce_l2", "poly1", "label_smoothing", "ngl")
"""The paper's baselines and NGL, CE first (the reference every change is measured against)."""
BASELINE = "ce"
CONFIDENCE_BINS = 20
"""Equal-width bins of the top-probability histograms written for the plots."""


@dataclass(frozen=True)
class LossEntry:
    """One row label of the comparison and the text that rebuilds its loss.

    Attributes:
        label: what the table shows (a reference name, an expression, or a run id).
        spec: a reference name or an expression, as :func:`gp_search.lang.losses.resolve` reads it.
        origin: where it came from (``"reference"``, ``"--loss"``, or the run directory).
    """

    label: str
    spec: str
    origin: str = "reference"


def run_best(run_dir: str | Path) -> LossEntry:
    """The hall-of-fame #1 of a search run, labelled by the run id (the directory's name).

    The infix text is what the search itself trained (``Scorer`` sends ``expr.infix``).

    Raises:
        ValueError: not a run directory, or a run without a hall of fame yet.
    """
    from gp_search.engine import load_run

    run = load_run(run_dir)
    if not run.best:
        raise ValueError(f"{run_dir}: the run has no hall of fame yet (no generation finished); "
                         f"wait for generation 0 or pass another --run")
    return LossEntry(Path(run_dir).resolve().name, run.best["infix"], str(run_dir))


def loss_entries(extra: Iterable[str] = (), runs: Iterable[str | Path] = (),
                 baselines: Sequence[str] = DEFAULT_LOSSES) -> list[LossEntry]:
    """The losses to compare: ``baselines``, then ``extra`` expressions, then each run's best.

    Args:
        extra: reference names or expressions (``--loss``); repeats of a baseline are dropped.
        runs: run directories (``--run``).
        baselines: reference names; must contain ``"ce"``.

    Returns:
        Entries with unique labels, CE first.

    Raises:
        ValueError: a baseline that is not a reference loss, no CE, or text that does not parse.
    """
    names = [b.strip().lower() for b in baselines]
    bad = [b for b in names if b not in REFERENCE]
    if bad:
        raise ValueError(f"unknown baseline loss(es) {', '.join(bad)}; known: {', '.join(REFERENCE)}")
    if BASELINE not in names:
        raise ValueError(f"the baselines must include {BASELINE!r}: every change is measured "
                         f"against cross-entropy (got {', '.join(names) or 'none'})")
    entries = [LossEntry(n, n) for n in [BASELINE] + [n for n in names if n != BASELINE]]
    for text in extra:
        key = text.strip().lower()
        if key in REFERENCE:
            entries.append(LossEntry(key, key, "--loss"))
        else:
            resolve(text)  # an ExprError (a ValueError) names the bad token now
            entries.append(LossEntry(text.strip(), text.strip(), "--loss"))
    entries += [run_best(r) for r in runs]
    seen, unique = set(), []
    for e in entries:
        if e.label not in seen:
            seen.add(e.label)
            unique.append(e)
    return unique


# --- calibration ---------------------------------------------------------------------------------
# ece and reliability live with the trainings that measure them (gp_search.proxies.calibration);
# imported here for the comparison's plots and its earlier callers.


def replay(spec: ProxySpec, loss: Loss, seed: int, steps: int | None = None,
           device: str = "cpu") -> dict:
    """Repeat one sequential training and return the test set's confidence and correctness.

    The training is :func:`gp_search.proxies.train.train_one` itself; its ``on_trained`` hook collects the
    held-out softmax before scoring.

    Args:
        spec: the proxy.
        loss: the loss.
        seed: initial weights and batch order.
        steps: optimiser steps (default ``spec.steps``).
        device: where to train.

    Returns:
        ``{"top": float32 (N_test,), "correct": bool (N_test,), "accuracy": float}`` (dense
        proxies: one entry per labelled test pixel; ``accuracy`` is the proxy's metric); ``top``
        is NaN everywhere if the training did not finish or its outputs are not finite.
    """
    out: dict = {}

    @torch.no_grad()
    def collect(model: torch.nn.Module, ds) -> None:
        model.eval()
        top, correct = [], []
        for start in range(0, ds.n_test, spec.eval_batch):
            logits = model(ds.x_test[start:start + spec.eval_batch])
            y = ds.y_test[start:start + spec.eval_batch]
            keep = y != IGNORE_INDEX  # unlabelled pixels have no right answer
            top.append(torch.softmax(logits.double(), 1).amax(1).float()[keep].cpu())
            correct.append((logits.argmax(1) == y)[keep].cpu())
        out["top"], out["correct"] = torch.cat(top).numpy(), torch.cat(correct).numpy()

    with one_thread():
        result = train_one(spec, loss, seed, steps, resolve_device(device), on_trained=collect)
    if "top" not in out:  # the training stopped early: no held-out predictions
        n = int((dataset_for(spec, resolve_device(device)).y_test != IGNORE_INDEX).sum())
        return {"top": np.full(n, np.nan, dtype=np.float32), "correct": np.zeros(n, bool),
                "accuracy": result.accuracy}
    return {**out, "accuracy": result.accuracy}


def _replay_task(loss_text: str, proxy: dict, seed: int, steps: int | None, device: str) -> dict:
    """Worker side of :func:`replay`: rebuild the loss and the proxy from plain data."""
    return replay(from_dict(proxy).spec, resolve(loss_text), seed, steps, device)


def _replays(tasks: list[tuple], jobs: int) -> list[dict]:
    if jobs == 1 or len(tasks) < 2:
        return [_replay_task(*t) for t in tasks]
    from joblib import Parallel, delayed
    return Parallel(n_jobs=jobs, backend="loky")(delayed(_replay_task)(*t) for t in tasks)


# --- the comparison ------------------------------------------------------------------------------

@dataclass
class Comparison:
    """Everything :func:`compare` measured: the table rows and the data behind the plots.

    Attributes:
        entries: the losses, CE first.
        proxies: proxy names, in order.
        budgets: proxy name → its budget in words.
        seeds: the training seeds (the same for every loss: pairs by seed).
        rows: one dict per (proxy, loss), proxy-major (see :data:`ROW_FIELDS`).
        results: (proxy, label) → the standard path's EvalResults, by seed.
        calibration: (proxy, label) → ``{"top", "correct"}`` pooled over the ok seeds, and
            ``"ece"``, ``"mean_top"``, ``"replay_accuracy"`` per seed (NaN where not ok).
        settings: device, jobs, batched, steps.
    """

    entries: list[LossEntry]
    proxies: list[str]
    budgets: dict[str, str]
    seeds: list[int]
    rows: list[dict] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


ROW_FIELDS = ("proxy", "loss", "n", "acc_mean", "acc_std", "acc_ci_low", "acc_ci_high",
              "diff_vs_ce", "diff_ci_low", "diff_ci_high", "p_value", "n_pairs", "not_ok",
              "ece_mean", "ece_std", "top_mean", "top_median", "replay_agree", "spec", "metric",
              "ece_scaled_mean", "temperature_mean")
"""Columns of a row (and of ``compare.csv``); fractions, not percentages. ``acc_*`` hold the
proxy's held-out ``metric`` (accuracy, or mIoU on a segmentation proxy). ``ece_scaled_mean`` and
``temperature_mean``: the ECE after temperature scaling (fitted on the other half of the test
split) and the fitted temperature, from the trainings themselves
(:mod:`gp_search.proxies.calibration`; NaN for dense proxies), mean over the finished seeds."""


def finished_mean(results, name: str) -> float:
    """Mean of the EvalResult field ``name`` over the finished trainings that measured it (NaN
    when none did)."""
    values = [getattr(r, name) for r in results if r.ok and math.isfinite(getattr(r, name))]
    return sum(values) / len(values) if values else math.nan


def _row(proxy: str, entry: LossEntry, results: list[EvalResult], ce: list[EvalResult],
         cal: dict, metric: str = "accuracy") -> dict:
    acc = [r.accuracy for r in results]
    s = summarize(acc)
    d = paired(acc, [r.accuracy for r in ce])
    e = summarize(cal["ece"])
    agree = sum(abs(a - r.accuracy) < 1e-12 for a, r in zip(cal["replay_accuracy"], results)
                if r.ok)
    top = cal["top"]
    return {"proxy": proxy, "loss": entry.label, "n": s["n"], "acc_mean": s["mean"],
            "acc_std": s["std"], "acc_ci_low": s["ci_low"], "acc_ci_high": s["ci_high"],
            "diff_vs_ce": d["diff"], "diff_ci_low": d["ci_low"], "diff_ci_high": d["ci_high"],
            "p_value": d["p_value"], "n_pairs": d["n"],
            "not_ok": ", ".join(f"{k} x{v}" for k, v in Counter(
                r.status for r in results if not r.ok).items()),
            "ece_mean": e["mean"], "ece_std": e["std"],
            "top_mean": float(top.mean()) if top.size else math.nan,
            "top_median": float(np.median(top)) if top.size else math.nan,
            "replay_agree": f"{agree}/{sum(r.ok for r in results)}", "spec": entry.spec,
            "metric": metric, "ece_scaled_mean": finished_mean(results, "ece_scaled"),
            "temperature_mean": finished_mean(results, "temperature")}


def compare(losses: Sequence[LossEntry | str] | None = None,
            proxies: Sequence[str | Proxy] = ("digits-mlp",), seeds: int | Iterable[int] = 5,
            jobs: int = 1, device: str = "cpu", batched: bool | str = "auto",
            steps: int | None = None, data_root: str | None = None,
            progress: Callable[[str], None] | None = None) -> Comparison:
    """Train every loss with every seed on each proxy and compare it with CE.

    Args:
        losses: entries or texts (reference names / expressions); default :data:`DEFAULT_LOSSES`.
            CE must be among them.
        proxies: registered proxy names, or proxies (e.g. your tasks:
            :meth:`gp_search.Task.proxy`).
        seeds: a count ``n`` (seeds ``0 .. n-1``) or the seeds.
        jobs: worker processes for the trainings and the replays.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        batched: passed to :func:`gp_search.parallel.evaluate.evaluate` (``"auto"``, as ``gp-search
            evaluate`` does).
        steps: optimiser steps instead of each proxy's budget.
        data_root: directory of user-supplied datasets.
        progress: called with a short line as each stage finishes.

    Returns:
        The :class:`Comparison`.

    Raises:
        ValueError: no CE, unknown proxy, bad seeds or jobs.
        FileNotFoundError: a proxy's data files are missing.
    """
    entries = [e if isinstance(e, LossEntry) else LossEntry(e, e)
               for e in (DEFAULT_LOSSES if losses is None else losses)]
    labels = [e.label for e in entries]
    if BASELINE not in labels:
        raise ValueError(f"the losses must include {BASELINE!r} (the reference of every change), "
                         f"got {', '.join(labels)}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"loss labels must be unique, got {', '.join(labels)}")
    chosen, n_jobs = seed_list(seeds), job_count(jobs)
    over = {"data_root": data_root} if data_root else {}
    handles = [p if isinstance(p, Proxy) else get_proxy(p, **over) for p in proxies]
    if not handles:
        raise ValueError("give at least one proxy")
    for p in handles:
        p.check_data()
    out = Comparison(entries, [p.name for p in handles], {p.name: p.budget for p in handles},
                     chosen, settings={"device": resolve_device(device), "jobs": n_jobs,
                                          "batched": batched, "steps": steps})
    ns = len(chosen)
    for p in handles:
        res = evaluate([e.spec for e in entries], proxy=p, seeds=chosen, jobs=n_jobs,
                       device=device, batched=batched, steps=steps)
        tasks, where = [], []
        for i, e in enumerate(entries):
            own = res[i * ns:(i + 1) * ns]
            out.results[(p.name, e.label)] = own
            for j, r in enumerate(own):
                if r.ok:
                    tasks.append((e.spec, p.to_dict(), chosen[j], steps,
                                  out.settings["device"]))
                    where.append((e.label, j))
        replays = dict(zip(where, _replays(tasks, n_jobs)))
        for e in entries:
            got = [replays.get((e.label, j)) for j in range(ns)]
            ok = [g for g in got if g is not None]
            top = np.concatenate([g["top"] for g in ok]) if ok else np.zeros(0, np.float32)
            correct = np.concatenate([g["correct"] for g in ok]) if ok else np.zeros(0, bool)
            out.calibration[(p.name, e.label)] = {
                "top": top, "correct": correct,
                "ece": [ece(g["top"], g["correct"]) if g else math.nan for g in got],
                "mean_top": [float(g["top"].mean()) if g else math.nan for g in got],
                "replay_accuracy": [g["accuracy"] if g else math.nan for g in got]}
        ce = out.results[(p.name, BASELINE)]
        for e in entries:
            out.rows.append(_row(p.name, e, out.results[(p.name, e.label)], ce,
                                 out.calibration[(p.name, e.label)], p.spec.metric))
        if progress is not None:
            progress(f"{p.name}: {len(entries)} losses x {ns} seeds trained and replayed")
    return out

