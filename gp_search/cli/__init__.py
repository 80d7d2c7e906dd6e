"""The command line, ``gp-search``: one parser, one module per group of subcommands.

:func:`main` is the entry point (``gp-search = gp_search.cli:main``, ``python -m gp_search``).
"""

from gp_search.cli.main import main

__all__ = ["main"]
