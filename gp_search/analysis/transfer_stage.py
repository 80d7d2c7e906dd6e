"""The run's last step: the hall of fame's best retrained on held-out suites; best.py from them.

A loss that wins on the search's proxies can still break a 2-class task, label noise, SGD, a
long-tailed training set or soft targets. When ``cfg.transfer_suite`` names a suite, the top
``cfg.transfer_top`` entries of the hall of fame are retrained there
(:func:`gp_search.analysis.transfer.transfer`, ``cfg.transfer_seeds`` seeds, paired with CE by
seed) and that suite picks the loss the run ships (:func:`gp_search.analysis.transfer.
pick_best`), not the search fitness. Transfer is nested when ``cfg.report_suite`` names a
second suite, which shares no task with the first:

* the **selection** suite (``transfer_suite``) only picks: the top k and CE train there
  (tables in ``RUN_DIR/transfer/``);
* the **report** suite (``report_suite``) is used for no choice: the same top k and the
  baselines (CE, NGL, label smoothing, focal) train there after the pick (tables in
  ``RUN_DIR/transfer/report/``). Its figures are the ones the run prints and ``best.py``
  states: the chosen loss's mean change against CE, its worst task, how many report tasks it is
  below CE on (paired 95 % CI wholly below 0), its calibration (ECE before and after
  temperature scaling, the fitted temperature) beside CE's, and the **transfer rate**: how many
  of the top k are below CE on no report task.

In a run with an objective (:mod:`gp_search.engine.objective`), the objective is one more
task of the suite the figures are read on: the report suite, or the one suite without a report
suite (which then, as for its other tasks, also picks). It belongs there because it is the
user's own task: the top k and the baselines run through it, through the same killable
workers, time limit and statuses as in the search, on the stage's seeds with the search's own
training seeds left out, so its row says whether the shipped loss beats CE on the user's recipe
with seeds the search never selected on. An ask/tell run has no function to call: its
objective is no task of the stage.

Without a report suite (configs written before it), the selection suite's figures are reported,
as they always were, and the verdict says that they were chosen on the same suite.
``transfer/choice.json`` records the choice and the figures; its presence marks the stage as
done (a run stopped during the stage does it again on ``resume``).

:class:`TransferStage` is this step as the run's :class:`gp_search.engine.runner.Finish`: the
stage, then ``best.py`` from its choice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gp_search.engine import rundir as store
from gp_search.analysis.compare import BASELINE, LossEntry
from gp_search.analysis.transfer import (
    DEFAULT_BASELINES,
    OwnTask,
    Transfer,
    nan_mean,
    pick_best,
    transfer,
)
from gp_search.analysis.transfer_tables import format_transfer, write_transfer
from gp_search.core import command_line, json_safe
from gp_search.engine import objective
from gp_search.engine import SearchConfig
from gp_search.engine import SearchFitnessBest, write_best

FIGURES = ("mean_diff", "worst_task", "worst_diff", "tasks_worse", "mean_ece", "mean_ece_scaled",
           "mean_temperature")
"""A loss's aggregate figures on a suite that a choice records."""


def done(run_dir: Path) -> bool:
    """Whether the run's transfer stage has finished (its choice is written)."""
    return store.RunDir(run_dir).choice.is_file()


def transfer_rate(res: Transfer, labels: list[str]) -> int:
    """How many of ``labels`` are below CE on no task of ``res`` (paired 95 % CI wholly below 0)."""
    return sum(a["tasks_worse"] == 0 for a in res.aggregate if a["loss"] in set(labels))


def _figures(res: Transfer, label: str) -> dict:
    row = next(a for a in res.aggregate if a["loss"] == label)
    return {k: row[k] for k in FIGURES}


def _ce_calibration(res: Transfer) -> dict:
    """CE's mean ECE (before and after temperature scaling) over the suite's tasks."""
    rows = [r for r in res.rows if r["loss"] == BASELINE]
    return {"ce_mean_ece": nan_mean([r["ece_mean"] for r in rows]),
            "ce_mean_ece_scaled": nan_mean([r["ece_scaled_mean"] for r in rows])}


def run_stage(cfg: SearchConfig, run_dir: Path, entries: list[dict], quiet: bool) -> dict | None:
    """Retrain the best of ``entries`` (hall-of-fame rows, best first) on the held-out suites.

    Returns:
        The chosen entry's hall-of-fame row with the reported figures (:data:`FIGURES` on the
        report suite, or on the selection suite without one), ``suite`` (where the figures come
        from), ``hof_rank``, ``transfers`` (the pick breaks no selection task), and with a
        report suite ``selection_suite``, ``selection`` (the pick's selection figures),
        ``transfer_rate`` and ``top``; or None when the config asks for no stage or the hall of
        fame is empty.
    """
    if cfg.transfer_suite == "none" or not entries:
        return None
    nested = cfg.report_suite != "none"
    top = entries[:cfg.transfer_top]
    losses = [LossEntry(f"hof-{i + 1}", e["prefix"], f"hall of fame #{i + 1}")
              for i, e in enumerate(top)]
    labels = [loss.label for loss in losses]
    files = store.RunDir(run_dir)
    own = _objective_task(cfg)
    seeds = _seeds(cfg, run_dir, bool(own))
    selection = _suite(cfg, cfg.transfer_suite, losses, ("ce",) if nested else DEFAULT_BASELINES,
                       files.transfer,
                       "selection suite, picks best.py" if nested else "held-out suite",
                       quiet, seeds, () if nested else own)
    pick = pick_best(selection, labels)
    rank = labels.index(pick["loss"]) + 1
    chosen = {**top[rank - 1], "hof_rank": rank, "suite": cfg.transfer_suite,
              "transfers": pick["transfers"], **_figures(selection, pick["loss"])}
    if nested:
        report = _suite(cfg, cfg.report_suite, losses, DEFAULT_BASELINES, files.transfer_report,
                        "report suite, used for no choice", quiet, seeds, own)
        chosen = {**chosen, "selection_suite": cfg.transfer_suite,
                  "selection": {**_figures(selection, pick["loss"]),
                                "transfers": pick["transfers"]},
                  "suite": cfg.report_suite, **_figures(report, pick["loss"]),
                  "transfer_rate": transfer_rate(report, labels), "top": len(labels),
                  **_ce_calibration(report)}
    else:
        chosen.update(_ce_calibration(selection))
    chosen = json_safe(chosen)  # a figure nothing measured (NaN) is written as null
    store.write_atomic(files.choice, json.dumps(chosen, indent=2, sort_keys=True))
    if not quiet:
        print(verdict(chosen), flush=True)
    return chosen


def _objective_task(cfg: SearchConfig) -> tuple[OwnTask, ...]:
    """The run's objective as a task of the stage (none without one, or in an ask/tell run):
    :func:`gp_search.engine.objective.evaluator` runs its calls, as in the search."""
    if not cfg.objective or cfg.objective == objective.ASK_TELL:
        return ()
    run = objective.evaluator(cfg, None)
    version = f" (version {cfg.objective_version!r})" if cfg.objective_version else ""
    return (OwnTask(objective.NAME, f"your objective `{cfg.objective}`{version}, at full budget, "
                    f"on seeds the search did not train with; killed past "
                    f"{cfg.train_timeout:g} s",
                    cfg.objective_metric or "score",
                    lambda specs, seeds: run(specs, objective.NAME, seeds, objective.FULL)),)


def _seeds(cfg: SearchConfig, run_dir: Path, fresh: bool) -> list[int]:
    """The stage's seeds: ``0 .. transfer_seeds-1``; with ``fresh`` (an objective run), the
    first ``transfer_seeds`` integers that are none of the search's training seeds (its
    checkpoint's), so the objective is scored afresh."""
    taken = set()
    if fresh:
        taken = set(store.read_checkpoint(Path(run_dir)).get("train_seeds") or ())
    return [s for s in range(cfg.transfer_seeds + len(taken)) if s not in taken][
        :cfg.transfer_seeds]


def _suite(cfg: SearchConfig, suite: str, losses: list[LossEntry], baselines, out: Path,
           role: str, quiet: bool, seeds: list[int], own: tuple[OwnTask, ...]) -> Transfer:
    """Train ``losses`` and ``baselines`` on ``suite`` and the ``own`` tasks; write (and print)
    the tables."""
    if not quiet:
        extra = f" and {', '.join(t.name for t in own)}" if own else ""
        print(f"transfer stage: the best {len(losses)} of the hall of fame on {suite!r}{extra} "
              f"({role}; {len(seeds)} seeds, with {', '.join(baselines)})", flush=True)
    res = transfer(losses, suite, seeds=seeds, jobs=cfg.jobs, device=cfg.device,
                   baselines=baselines, progress=None if quiet else print, own=own)
    write_transfer(res, out, command_line())
    if not quiet:
        print(format_transfer(res), flush=True)
    return res


def verdict(chosen: dict) -> str:
    """What the run says about its chosen loss's transfer, for best.py and the printed summary."""
    where = (f"on the held-out suite {chosen['suite']!r}: mean change vs CE "
             f"{100 * chosen['mean_diff']:+.1f} points, worst task {chosen['worst_task']} "
             f"({100 * chosen['worst_diff']:+.1f})")
    if "selection_suite" not in chosen:  # one suite picked and reports (runs before report_suite)
        if chosen["transfers"]:
            return (f"best on transfer: hall of fame #{chosen['hof_rank']}, worse than CE on no "
                    f"task {where} (chosen on the same suite)")
        return (f"WARNING: every loss of the hall of fame's top is worse than CE beyond its "
                f"paired 95 % CI on some held-out task; the least bad is "
                f"#{chosen['hof_rank']}, worse on {chosen['tasks_worse']} task(s) {where}. Do "
                f"not use it as a drop-in for CE.")
    picked = (f"hall of fame #{chosen['hof_rank']}, picked on the selection suite "
              f"{chosen['selection_suite']!r}"
              + ("" if chosen["selection"]["transfers"] else
                 " although every candidate was below CE on some selection task (the least bad)"))
    held = chosen["tasks_worse"] == 0
    text = (f"{picked}; on the report suite {chosen['suite']!r} (used for no choice): mean "
            f"change vs CE {100 * chosen['mean_diff']:+.1f} points, worst task "
            f"{chosen['worst_task']} ({100 * chosen['worst_diff']:+.1f}), below CE on "
            f"{'no task' if held else str(chosen['tasks_worse']) + ' task(s)'}; transfer rate: "
            f"{chosen['transfer_rate']} of the top {chosen['top']} are below CE on no report task")
    return text if held else (f"WARNING: {text}. Do not use it as a drop-in for CE.")


def calibration_note(chosen: dict) -> str:
    """What the chosen loss does to calibration on the reported suite and how to undo it."""
    ece, scaled, t = chosen.get("mean_ece"), chosen.get("mean_ece_scaled"), \
        chosen.get("mean_temperature")
    if not all(isinstance(v, float) and math.isfinite(v) for v in (ece, scaled, t)):
        return ""
    ce, ce_scaled = chosen.get("ce_mean_ece", float("nan")), chosen.get("ce_mean_ece_scaled",
                                                                        float("nan"))
    way = "over-confident" if t > 1 else "under-confident"
    return (f"calibration on {chosen['suite']!r} (mean over tasks): ECE {ece:.3f} against CE's "
            f"{ce:.3f}; the model it trains is {way} (fitted temperature T = {t:.3g}); dividing "
            f"the logits by T (temperature scaling, fitted by NLL on a validation split) brings "
            f"the ECE to {scaled:.3f} (CE's: {ce_scaled:.3f}) without changing any prediction")


def load_choice(run_dir: Path) -> dict | None:
    """The recorded choice of a finished stage, or None."""
    path = store.RunDir(run_dir).choice
    if not path.is_file():
        return None
    data = store.read_json(path, "transfer choice")
    return data if isinstance(data, dict) else None


class TransferStage:
    """The run's :class:`gp_search.engine.runner.Finish`: the transfer stage when the config
    names a suite, then ``best.py`` from its choice (else from the best search fitness)."""

    def __call__(self, cfg: SearchConfig, run_dir: Path, entries: list[dict],
                 quiet: bool) -> None:
        chosen = run_stage(cfg, run_dir, entries, quiet)
        best = chosen or (entries[0] if entries else None)
        if best is None:
            return
        notes = [verdict(chosen), calibration_note(chosen)] if chosen else \
            [SearchFitnessBest.NOTE]
        write_best(cfg, run_dir, best, notes)

    def pending(self, cfg: SearchConfig, run_dir: Path) -> bool:
        return cfg.transfer_suite != "none" and not done(run_dir)

    def summary(self, run_dir: Path) -> list[str]:
        chosen = load_choice(run_dir)
        if chosen is None:
            return []
        note = calibration_note(chosen)
        files = store.RunDir(run_dir)
        tables = files.transfer_report if "selection_suite" in chosen else files.transfer
        return [verdict(chosen)] + ([note] if note else []) + \
            [f"transfer tables: {tables / 'transfer.md'}"]
