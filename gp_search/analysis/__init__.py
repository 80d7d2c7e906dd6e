"""Analysis: losses compared on proxies and held-out suites, statistics, reports, plots, and the
run's transfer stage.

It sits above the engine: :class:`TransferStage` is the end of a run that
:mod:`gp_search.api` and the CLI hand to the engine.
"""

from gp_search.analysis import plots
from gp_search.analysis.compare import (
    BASELINE,
    DEFAULT_LOSSES,
    Comparison,
    LossEntry,
    compare,
    loss_entries,
)
from gp_search.analysis.report import format_table, write_comparison, write_run_report
from gp_search.analysis.stats import paired, summarize
from gp_search.analysis.tables import evaluation_table, md_table, number
from gp_search.analysis.transfer import DEFAULT_BASELINES, Transfer, transfer
from gp_search.analysis.transfer_stage import TransferStage
from gp_search.analysis.transfer_tables import format_transfer, write_transfer

__all__ = ["BASELINE", "DEFAULT_BASELINES", "DEFAULT_LOSSES", "Comparison", "LossEntry",
           "Transfer", "TransferStage", "compare", "evaluation_table", "format_table",
           "format_transfer", "loss_entries", "md_table", "number", "paired", "plots",
           "summarize", "transfer", "write_comparison", "write_run_report", "write_transfer"]
