"""The NGL rediscovery study: targeted rediscovery, the paper preset from scratch, their tables.

A leaf: only :mod:`gp_search.cli` imports it.
"""

from gp_search.rediscovery.confirm import CONFIRM_PROXY, confirm
from gp_search.rediscovery.proxy import (
    FRESH_SEEDS,
    closeness_line,
    proxy_config,
    proxy_rediscovery,
)
from gp_search.rediscovery.proxy import verdict as proxy_verdict
from gp_search.rediscovery.proxy import write as write_proxy_report
from gp_search.rediscovery.table import table_markdown, write_table
from gp_search.rediscovery.targeted import RediscoveryConfig, rediscover

__all__ = ["CONFIRM_PROXY", "FRESH_SEEDS", "RediscoveryConfig", "closeness_line", "confirm",
           "proxy_config", "proxy_rediscovery", "proxy_verdict", "rediscover", "table_markdown",
           "write_proxy_report", "write_table"]
