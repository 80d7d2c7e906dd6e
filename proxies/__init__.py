"""Deprecated alias of :mod:`gp_search.proxies` (kept for one release).

``import proxies`` and ``from proxies.train import …`` still work and give the very same modules
as ``gp_search.proxies``; each import warns once. Import ``gp_search.proxies`` instead.
"""

import importlib
import sys
import warnings

warnings.warn("the top-level 'proxies' package is deprecated and will be removed in the next "
              "release; import 'gp_search.proxies' instead", DeprecationWarning, stacklevel=2)

_SUBMODULES = ("base", "batched", "batched_loss", "data", "models", "readers", "registry", "train")

for _name in _SUBMODULES:
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"gp_search.proxies.{_name}")
sys.modules[__name__] = importlib.import_module("gp_search.proxies")
