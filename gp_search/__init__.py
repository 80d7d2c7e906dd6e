"""gp-search: genetic-programming search for neural-network loss functions; the public API."""

from gp_search.api import Search, search
from gp_search.core import __version__
from gp_search.engine import Candidate, load_run
from gp_search.lang import NGL, NGL_PREFIX, ExprError, Loss, LossExpr, export, parse, resolve
from gp_search.parallel import evaluate
from gp_search.proxies import Task

__all__ = ["Candidate", "ExprError", "Loss", "LossExpr", "NGL", "NGL_PREFIX", "Search", "Task",
           "evaluate", "export", "load_run", "parse", "resolve", "search"]
