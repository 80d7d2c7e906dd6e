"""A user's code imported by name: ``"pkg.mod:attr"`` or ``"/abs/script.py:attr"`` → the object,
once per process, and a factory's checked result.

Workers receive text, never pickled objects (STYLE: strings across process boundaries), so a
user's model builder, factory or objective crosses as its import path (:func:`import_path`) and
each process imports it again (:func:`import_object`, the stdlib's
:func:`pkgutil.resolve_name` for modules; a script by its file). Nothing is ``eval``'d.

Example:
    >>> import_object("math:pi")
    3.141592653589793
    >>> import_path(import_object)
    'py:gp_search.proxies.user_code:import_object'
"""

from __future__ import annotations

import hashlib
import importlib.util
import pkgutil
import sys
from collections.abc import Mapping
from pathlib import Path

from gp_search.proxies.data import TaskDataError

__all__ = ["FACTORY_KEYS", "PY", "factory_result", "import_object", "import_path"]

PY = "py:"
"""The prefix of a model named by its import path (``"py:pkg.mod:Net"``)."""
FACTORY_KEYS = ("x_train", "y_train", "x_test", "y_test", "model")
"""What a factory may return."""

_RESOLVED: dict[str, object] = {}
_FACTORIES: dict[str, dict] = {}


def import_path(obj, what: str = "model builder", prefix: str = PY,
                fix: str = "or return it from a factory (Task(factory='pkg.mod:make'))") -> str:
    """The import path of a callable (``prefix`` + ``"pkg.mod:name"``, or
    ``"/abs/script.py:name"`` for one defined in the running script), from which a worker
    process can import it again (:func:`import_object`; in this process it resolves to ``obj``
    itself, so a script is not imported a second time)."""
    module, qual = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or not qual or "<" in qual:
        raise TaskDataError(f"the {what} {obj!r} cannot be imported by name in a worker "
                            f"process (a lambda, or defined inside a function); define it at the "
                            f"top level of a module, {fix}")
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if not main_file:
            raise TaskDataError(f"the {what} {qual} is defined in an interactive session, "
                                f"which worker processes cannot import; define it in a module "
                                f"file")
        module = str(Path(main_file).resolve())
    _RESOLVED[f"{module}:{qual}"] = obj
    return f"{prefix}{module}:{qual}"


def _script(file: Path):
    """The module of a script file, imported once under a name made from its path."""
    name = "gp_search_user_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or not file.is_file():
            raise ImportError(f"no file {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return name


def import_object(path: str, what: str = "import path") -> object:
    """The object at ``"pkg.mod:attr"`` (or ``"/abs/file.py:attr"``), imported once per process.

    Raises:
        TaskDataError: the path is malformed, the module cannot be imported, or it has no such
            attribute; the message names the path and says how to fix it.
    """
    if path in _RESOLVED:
        return _RESOLVED[path]
    module_name, sep, attr = path.rpartition(":")
    if not sep or not module_name or not attr:
        raise TaskDataError(f"{what} {path!r} must look like 'package.module:name'")
    try:
        importable = _script(Path(module_name)) if module_name.endswith(".py") else module_name
        obj = pkgutil.resolve_name(f"{importable}:{attr}")
    except AttributeError:
        if module_name.endswith(".py") or module_name in sys.modules:
            raise TaskDataError(f"{what} {path!r}: {module_name!r} has no attribute {attr!r}; "
                                f"check the name after the ':'") from None
        raise TaskDataError(f"{what} {path!r}: cannot import {module_name!r} (AttributeError "
                            f"while importing it)") from None
    except Exception as exc:  # noqa: BLE001 - whatever the module raises, say which path failed
        raise TaskDataError(f"{what} {path!r}: cannot import {module_name!r} ({type(exc).__name__}"
                            f": {exc}); check the spelling and that it is on PYTHONPATH") from None
    _RESOLVED[path] = obj
    return obj


def factory_result(path: str) -> dict:
    """What the factory at ``path`` returns, checked, called once per process."""
    if path not in _FACTORIES:
        make = import_object(path, "factory")
        if not callable(make):
            raise TaskDataError(f"factory {path!r} is a {type(make).__name__}, not a function")
        try:
            out = make()
        except Exception as exc:  # noqa: BLE001 - the user's code: report, do not crash
            raise TaskDataError(f"factory {path!r} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(out, Mapping) or not {"x_train", "y_train"} <= set(out) \
                or set(out) - set(FACTORY_KEYS):
            got = sorted(out) if isinstance(out, Mapping) else type(out).__name__
            raise TaskDataError(f"factory {path!r} returned {got}; it must return a dict with "
                                f"x_train, y_train and optionally x_test, y_test and model (a "
                                f"callable (input_shape, num_classes) -> torch.nn.Module)")
        if out.get("model") is not None and not callable(out["model"]):
            raise TaskDataError(f"factory {path!r}: 'model' is a {type(out['model']).__name__}; "
                                f"it must be a callable (input_shape, num_classes) -> nn.Module")
        _FACTORIES[path] = dict(out)
    return _FACTORIES[path]
