"""The ``gp-search`` command line: :func:`gp_search.cli.main.main`, one module per subject."""
