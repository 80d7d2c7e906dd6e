"""The NGL rediscovery study: targeted rediscovery, the paper preset from scratch, their tables.

A leaf: only :mod:`gp_search.cli` imports it.
"""
