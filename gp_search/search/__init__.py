"""The search: config, variation, screening, scoring, the generation loop, and the run lifecycle.

Data path: config → population → variation → screening / dedup / cache → scoring (proxy
trainings through :mod:`gp_search.parallel`) → selection → hall of fame → run directory.
"""
