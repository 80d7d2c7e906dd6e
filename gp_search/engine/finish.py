"""The run's end as a hook: :class:`Finish` (what a run does once its search is over),
:func:`write_best` (``best.py``) and the engine's default, :class:`SearchFitnessBest`.

The runner takes a :class:`Finish` from above (``gp_search.api`` passes the transfer stage), so
the engine imports no analysis module.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Protocol

from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig
from gp_search.lang import export, parse


class Finish(Protocol):
    """What a run does once its search is over: choose the loss it ships and write ``best.py``."""

    def __call__(self, cfg: SearchConfig, run_dir: Path, entries: list[dict],
                 quiet: bool) -> None:
        """Conclude the run: ``entries`` is the final hall of fame, best first."""

    def pending(self, cfg: SearchConfig, run_dir: Path) -> bool:
        """Whether a finished search still owes this step (``resume`` then runs it)."""

    def summary(self, run_dir: Path) -> list[str]:
        """The lines the end-of-run summary adds."""


def write_best(cfg: SearchConfig, run_dir: Path, best: dict, notes: list[str]) -> None:
    """``best.py``: the loss of hall-of-fame entry ``best`` as a torch function, its origin (the
    run, its search fitness, then ``notes``) in the docstring."""
    origin = (f"gp-search run {run_dir.name}, search fitness {best['fitness']:.4f} (n = "
              f"{best['n']} seeds) on {', '.join(cfg.scored_names())}")
    origin += "".join(f"; {note}" for note in notes if note)
    origin = textwrap.fill(origin, width=92, break_long_words=False, break_on_hyphens=False)
    text = export(parse(best["prefix"], cfg.primitive_set, cfg.const_range), "torch",
                  name="best_loss", origin=origin)
    store.write_atomic(store.RunDir(run_dir).best, text)


class SearchFitnessBest:
    """The default :class:`Finish`: ``best.py`` is the best on search fitness. A config that
    names a transfer suite needs the transfer stage instead (refused here, never skipped)."""

    NOTE = ("no transfer stage (transfer_suite = none): measure it on held-out tasks with "
            "`gp-search transfer` before use")

    def __call__(self, cfg: SearchConfig, run_dir: Path, entries: list[dict],
                 quiet: bool) -> None:
        if entries:
            write_best(cfg, run_dir, entries[0], [self.NOTE])

    def pending(self, cfg: SearchConfig, run_dir: Path) -> bool:
        return False

    def summary(self, run_dir: Path) -> list[str]:
        return []


def finish_for(cfg: SearchConfig, finish: Finish | None) -> Finish:
    if finish is not None:
        return finish
    if cfg.transfer_suite != "none":
        raise ValueError(f"config field 'transfer_suite' = {cfg.transfer_suite!r} needs the "
                         f"transfer stage: run through gp_search.api (gp_search.search, "
                         f"gp-search run) or pass finish=gp_search.analysis.TransferStage()")
    return SearchFitnessBest()
