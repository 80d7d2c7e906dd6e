"""gp-search: genetic-programming search for neural-network loss functions; the public API."""

from gp_search.expr import ExprError, LossExpr, parse
from gp_search.export import export
from gp_search.losses import NGL, NGL_PREFIX, Loss, resolve
from gp_search.evaluate import evaluate

__all__ = ["ExprError", "Loss", "LossExpr", "NGL", "NGL_PREFIX", "evaluate", "export", "parse",
           "resolve"]
__version__ = "0.1.0"
