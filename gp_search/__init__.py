"""gp-search: genetic-programming search for neural-network loss functions; the public API."""

import types as _types

from gp_search import search as _search_package
from gp_search.lang.expr import ExprError, LossExpr, parse
from gp_search.lang.export import export
from gp_search.lang.losses import NGL, NGL_PREFIX, Loss, resolve
from gp_search.lang.version import __version__
from gp_search.parallel.evaluate import evaluate
from gp_search.proxies.user_task import Task
from gp_search.search.ask_tell import Candidate, Search
from gp_search.search.user_tasks import search as _search_on
from gp_search.store import load_run


class _SearchPackage(_types.ModuleType):
    """``gp_search.search``: the search sub-package, which, called, runs a search on your tasks
    (:func:`gp_search.search.user_tasks.search`): ``gp_search.search(config, tasks=[...])``
    or ``gp_search.search(config, objective=fn)``.

    A module whose class has ``__call__`` (Python's documented way to customise a module), so
    that ``import gp_search.search.runner as r`` and every other import of the sub-package keep
    working, which a function of the same name would break.
    """

    def __call__(self, config=None, tasks=(), quiet=True, objective=None, **overrides):
        return _search_on(config, tasks, quiet, objective, **overrides)


_search_package.__class__ = _SearchPackage
search = _search_package

__all__ = ["Candidate", "ExprError", "Loss", "LossExpr", "NGL", "NGL_PREFIX", "Search", "Task",
           "evaluate", "export", "load_run", "parse", "resolve", "search"]
