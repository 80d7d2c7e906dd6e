"""The loss language: the primitive table, the safe parser, LossExpr, reference losses, export.

Data path: primitive table → DEAP tree ↔ SymPy expression ↔ torch loss → exported source.
Nothing here imports another part of gp-search.
"""
