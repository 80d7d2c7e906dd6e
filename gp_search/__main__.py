"""``python -m gp_search``: the command line."""

from gp_search.cli import main

raise SystemExit(main())
