"""The core: what every layer may import and which imports nothing of gp-search.

The one validator (:func:`rule`, :func:`validate`), the closed vocabularies (statuses,
fidelities, routes, fitness aggregates, splits), seeds and job counts, strict JSON, the
machine record, the version.
"""

from gp_search.core import environment
from gp_search.core.checks import is_kind, rule, validate
from gp_search.core.environment import ENV_FILE, command_line, versions, write_env
from gp_search.core.seeds import job_count, seed_list
from gp_search.core.strict_json import json_safe
from gp_search.core.version import __version__
from gp_search.core.vocab import AGGREGATES, SPLITS, Aggregate, Fidelity, Route, Split, Status

__all__ = ["AGGREGATES", "ENV_FILE", "SPLITS", "Aggregate", "Fidelity", "Route", "Split", "Status",
           "__version__", "command_line", "environment", "is_kind", "job_count", "json_safe",
           "rule", "seed_list", "validate", "versions", "write_env"]
