"""The loss language: the primitive table, the safe parser, LossExpr, reference losses, export.

Data path: primitive table → DEAP tree ↔ SymPy expression ↔ torch loss → exported source.
It imports only :mod:`gp_search.core` of gp-search.
"""

from gp_search.lang import derivatives, losses, primitives
from gp_search.lang.apply import IGNORE_INDEX, masked_mean, prepare_masked
from gp_search.lang.export import TARGETS, export
from gp_search.lang.expr import GRAD_FLOOR, ExprError, LossExpr, float32_constant, parse
from gp_search.lang.losses import NGL, NGL_PREFIX, REFERENCE, Loss, loss_scale, resolve
from gp_search.lang.primitives import SET_NAMES

__all__ = ["GRAD_FLOOR", "IGNORE_INDEX", "NGL", "NGL_PREFIX", "REFERENCE", "SET_NAMES", "TARGETS",
           "ExprError", "Loss", "LossExpr", "derivatives", "export", "float32_constant",
           "loss_scale", "losses", "masked_mean", "parse", "prepare_masked", "primitives",
           "resolve"]
