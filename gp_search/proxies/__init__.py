"""Proxy tasks: short real trainings of small networks that score a loss (data, models, training).

The face of the package: the registry (:func:`get`, :func:`names`, :class:`Proxy`) and the
records every evaluation returns (:class:`EvalResult`, :class:`ProxySpec`). It imports only
:mod:`gp_search.lang` of gp-search, and only where a loss text has to be read.

Example:
    >>> from gp_search import proxies
    >>> proxies.get("synthetic-mlp", steps=50).evaluate("ce", seed=0).status
    'ok'
"""

from gp_search.proxies import registry as _registry
from gp_search.proxies.registry import *  # noqa: F403 - the registry's public names are the face

__all__ = list(_registry.__all__)
