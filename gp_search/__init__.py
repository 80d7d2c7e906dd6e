"""gp-search: genetic-programming search for neural-network loss functions; the public API."""

from gp_search.lang.expr import ExprError, LossExpr, parse
from gp_search.lang.export import export
from gp_search.lang.losses import NGL, NGL_PREFIX, Loss, resolve
from gp_search.lang.version import __version__
from gp_search.parallel.evaluate import evaluate
from gp_search.store import load_run

__all__ = ["ExprError", "Loss", "LossExpr", "NGL", "NGL_PREFIX", "evaluate", "export", "load_run",
           "parse", "resolve"]
