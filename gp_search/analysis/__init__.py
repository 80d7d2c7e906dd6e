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
from gp_search.analysis.report import (
    format_table,
    json_safe,
    md_table,
    number,
    write_comparison,
    write_run_report,
)
from gp_search.analysis.stats import paired, summarize
from gp_search.analysis.transfer import (
    DEFAULT_BASELINES,
    Transfer,
    format_transfer,
    transfer,
    write_transfer,
)
from gp_search.analysis.transfer_stage import TransferStage

__all__ = ["BASELINE", "DEFAULT_BASELINES", "DEFAULT_LOSSES", "Comparison", "LossEntry",
           "Transfer", "TransferStage", "compare", "format_table", "format_transfer",
           "json_safe", "loss_entries", "md_table", "number", "paired", "plots", "summarize",
           "transfer", "write_comparison", "write_run_report", "write_transfer"]
