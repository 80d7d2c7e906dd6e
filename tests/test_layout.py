"""The package layout: the import rules between sub-packages, module size, and the old names."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gp_search

PACKAGE = Path(gp_search.__file__).parent
SUBPACKAGES = ("lang", "search", "proxies", "parallel", "analysis", "rediscovery", "cli")
MAX_LINES = 420
"""STYLE.md asks for modules "under about 400 lines"; a little slack, no more."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or '') for every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; use absolute gp_search.* imports")
    return out


def _area(module: str) -> str:
    """The sub-package a dotted gp_search module belongs to ('' for top-level modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else ""


def _targets(module: str, name: str) -> list[str]:
    """The gp_search modules an import statement touches (``from a import b``: a, and a.b if b is
    a module)."""
    if not module.startswith("gp_search"):
        return []
    full = f"{module}.{name}" if name else module
    return [module, full] if full in _modules() else [module]


EDGES = [(mod, target, name) for mod, path in _modules().items()
         for target_mod, name in _imports(path) for target in _targets(target_mod, name)]


def test_the_walk_sees_the_package():
    areas = {_area(m) for m in _modules()}
    assert set(SUBPACKAGES) <= areas
    assert any(t.startswith("gp_search.lang") for _, t, _ in EDGES)  # the walk finds imports


@pytest.mark.parametrize("area, allowed", [
    ("lang", {"lang"}),
    ("proxies", {"lang", "proxies"}),
])
def test_low_layers_import_only_what_they_may(area, allowed):
    bad = [(m, t) for m, t, _ in EDGES if _area(m) == area and t != "gp_search"
           and _area(t) not in allowed]
    bad += [(m, t) for m, t, _ in EDGES if _area(m) == area and t == "gp_search"]
    assert not bad, f"{area} may import only {sorted(allowed)} of gp_search; found {bad}"


@pytest.mark.parametrize("leaf", ["rediscovery", "cli"])
def test_nothing_but_the_cli_imports_a_leaf(leaf):
    bad = [(m, t) for m, t, _ in EDGES if _area(t) == leaf and _area(m) not in (leaf, "cli")
           and not m.endswith("__main__")]
    assert not bad, f"only gp_search.cli may import gp_search.{leaf}; found {bad}"


def test_no_module_imports_another_modules_private_name():
    bad = [(m, t, n) for m, t, n in EDGES
           if n.startswith("_") and not n.startswith("__") and t != m]
    assert not bad, f"private names imported across modules: {bad}"


def test_modules_stay_small():
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_module_docstring_says_what_it_owns():
    missing = [m for m, p in _modules().items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_public_api_is_where_it_was():
    for name in ("parse", "LossExpr", "NGL", "export", "evaluate", "ExprError", "Loss"):
        assert name in gp_search.__all__ and hasattr(gp_search, name)
    assert gp_search.load_run is __import__("gp_search.store").store.load_run
    assert callable(importlib.import_module("gp_search.cli.main").main)


def test_old_proxies_package_still_works_and_warns():
    """``import proxies`` is a deprecated alias for one release: same modules, a warning."""
    code = ("import warnings; warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    import proxies\n"
            "    from proxies.train import train_one\n"
            "import gp_search.proxies, gp_search.proxies.train\n"
            "assert proxies is gp_search.proxies\n"
            "assert train_one is gp_search.proxies.train.train_one\n"
            "assert any(issubclass(x.category, DeprecationWarning) and 'gp_search.proxies' in"
            " str(x.message) for x in w), [str(x.message) for x in w]\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
