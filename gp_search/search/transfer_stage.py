"""The run's last step: the hall of fame's best retrained on a held-out suite; best.py from it.

A loss that wins on the search's proxies can still break a 2-class task, label noise or SGD.
When ``cfg.transfer_suite`` names a suite, the top ``cfg.transfer_top`` entries of the hall of
fame are retrained there beside CE, NGL, label smoothing and focal
(:func:`gp_search.analysis.transfer.transfer`, ``cfg.transfer_seeds`` seeds, paired by seed), the
tables go to ``RUN_DIR/transfer/`` and the loss the run reports as best is the best on transfer
(:func:`gp_search.analysis.transfer.pick_best`), not the best on search fitness.
``transfer/choice.json`` records that choice; its presence marks the stage as done (a run
stopped during the stage does it again on ``resume``).
"""

from __future__ import annotations

import json
from pathlib import Path

from gp_search import store
from gp_search.analysis.compare import LossEntry
from gp_search.analysis.transfer import format_transfer, pick_best, transfer, write_transfer
from gp_search.environment import command_line
from gp_search.search.config import SearchConfig

CHOICE = "choice.json"


def done(run_dir: Path) -> bool:
    """Whether the run's transfer stage has finished (its choice is written)."""
    return (Path(run_dir) / "transfer" / CHOICE).is_file()


def run_stage(cfg: SearchConfig, run_dir: Path, entries: list[dict], quiet: bool) -> dict | None:
    """Retrain the best of ``entries`` (hall-of-fame rows, best first) on ``cfg.transfer_suite``.

    Returns:
        The chosen entry's hall-of-fame row with the transfer figures (``mean_diff``,
        ``worst_task``, ``worst_diff``, ``tasks_worse``, ``transfers``), or None when the
        config asks for no stage or the hall of fame is empty.
    """
    if cfg.transfer_suite == "none" or not entries:
        return None
    top = entries[:cfg.transfer_top]
    losses = [LossEntry(f"hof-{i + 1}", e["prefix"], f"hall of fame #{i + 1}")
              for i, e in enumerate(top)]
    if not quiet:
        print(f"transfer stage: the best {len(top)} of the hall of fame on the held-out suite "
              f"{cfg.transfer_suite!r} ({cfg.transfer_seeds} seeds, with CE, NGL, label "
              f"smoothing and focal)", flush=True)
    res = transfer(losses, cfg.transfer_suite, seeds=cfg.transfer_seeds, jobs=cfg.jobs,
                   device=cfg.device, progress=None if quiet else print)
    out = Path(run_dir) / "transfer"
    write_transfer(res, out, command_line())
    pick = pick_best(res, [loss.label for loss in losses])
    rank = [loss.label for loss in losses].index(pick["loss"]) + 1
    chosen = {**top[rank - 1], "hof_rank": rank, "suite": cfg.transfer_suite,
              **{k: pick[k] for k in ("mean_diff", "worst_task", "worst_diff", "tasks_worse",
                                       "transfers")}}
    store.write_atomic(out / CHOICE, json.dumps(chosen, indent=2, sort_keys=True))
    if not quiet:
        print(format_transfer(res), flush=True)
        print(verdict(chosen), flush=True)
    return chosen


def verdict(chosen: dict) -> str:
    """One sentence on the chosen loss's transfer, for best.py and the printed summary."""
    where = (f"on the held-out suite {chosen['suite']!r}: mean change vs CE "
             f"{100 * chosen['mean_diff']:+.1f} points, worst task {chosen['worst_task']} "
             f"({100 * chosen['worst_diff']:+.1f})")
    if chosen["transfers"]:
        return (f"best on transfer: hall of fame #{chosen['hof_rank']}, worse than CE on no task "
                f"{where}")
    return (f"WARNING: every loss of the hall of fame's top is worse than CE beyond its paired "
            f"95 % CI on some held-out task; the least bad is #{chosen['hof_rank']}, worse on "
            f"{chosen['tasks_worse']} task(s) {where}. Do not use it as a drop-in for CE.")


def load_choice(run_dir: Path) -> dict | None:
    """The recorded choice of a finished stage, or None."""
    path = Path(run_dir) / "transfer" / CHOICE
    if not path.is_file():
        return None
    data = store.read_json(path, "transfer choice")
    return data if isinstance(data, dict) else None
