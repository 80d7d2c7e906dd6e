"""The package layout: the layer order, faces, no import circles, module size, the old names.

The layer order is written once, in :data:`LAYERS` (and, inside :mod:`gp_search.proxies`,
:data:`PROXIES_LAYERS`). Every import statement of the package counts, at any depth (an import
inside a function is an edge like any other): a lazy import may save start-up time or defer an
optional dependency, never hide a circle.

The rules:

* a module imports its own sub-package and the layers below it, never one above;
* another sub-package is reached only through its face (its ``__init__``), and only for a name
  the face lists in ``__all__`` (a module the face lists there is a public namespace);
* a module never imports its own sub-package's face (that would be a circle through it);
* no circle among modules, faces included.
"""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import gp_search

PACKAGE = Path(gp_search.__file__).parent
LAYERS = ("core", "lang", "proxies", "parallel", "engine", "analysis", "rediscovery", "api",
          "cli", "")
"""Bottom to top: each may import those before it. "" is the package's own face and
``__main__``."""
PROXIES_LAYERS = (("spec", "metrics", "calibration", "catalog", "models", "data"),
                  ("train",), ("population",), ("proxy",), ("user_code", "user_task"))
"""Inside :mod:`gp_search.proxies`, bottom to top (a sub-package counts as one module)."""
FACES = ("core", "lang", "proxies", "proxies.data", "proxies.population", "parallel", "engine",
         "analysis", "rediscovery", "cli")
MAX_LINES = 420
"""STYLE.md asks for modules "under about 400 lines"; a little slack, no more."""


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(imported module, imported name or '', line) for every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(alias.name, "", node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}: relative import; use absolute gp_search.* imports")
    return out


def _rest(module: str) -> str:
    return module[len("gp_search."):] if module.startswith("gp_search.") else ""


def _layer(module: str) -> str:
    """The layer of a gp_search module: its sub-package, "api", or "" (the face, __main__)."""
    first = _rest(module).split(".")[0]
    return first if first in LAYERS else ""


def _face(module: str) -> str:
    """The innermost face (sub-package) that ``module`` belongs to, as a dotted name under
    gp_search ("" for top-level modules)."""
    rest = _rest(module)
    best = ""
    for face in FACES:
        if rest == face or rest.startswith(face + "."):
            best = face if len(face) > len(best) else best
    return best


def _proxies_level(module: str) -> int | None:
    rest = _rest(module)
    if not rest.startswith("proxies."):
        return None
    first = rest.split(".")[1]
    return next((i for i, names in enumerate(PROXIES_LAYERS) if first in names), None)


def _edge(module: str, name: str) -> str | None:
    """The gp_search module an import statement reaches: ``from a import b`` is a.b when b is a
    module, else a."""
    if not module.startswith("gp_search"):
        return None
    full = f"{module}.{name}" if name else module
    return full if full in MODULES else module


EDGES = [(mod, target, name, line) for mod, path in MODULES.items()
         for target_mod, name, line in _imports(path)
         if (target := _edge(target_mod, name)) is not None]


def _face_names(face: str) -> set:
    return set(getattr(importlib.import_module(f"gp_search.{face}" if face else "gp_search"),
                       "__all__", ()))


def test_the_walk_sees_the_package():
    assert {_layer(m) for m in MODULES} == set(LAYERS)
    assert any(t.startswith("gp_search.lang") for _, t, _, _ in EDGES)  # the walk finds imports
    assert all(_proxies_level(m) is not None for m in MODULES
               if m.startswith("gp_search.proxies.")), "a proxies module missing from the layers"


def test_no_import_points_up():
    bad = [f"{m}:{line} -> {t}" for m, t, _, line in EDGES
           if LAYERS.index(_layer(t)) > LAYERS.index(_layer(m))]
    assert not bad, f"imports against the order {' -> '.join(LAYERS[:-1])}: {bad}"


def test_no_import_points_up_inside_proxies():
    bad = [f"{m}:{line} -> {t}" for m, t, _, line in EDGES
           if _proxies_level(m) is not None and _proxies_level(t) is not None
           and _proxies_level(t) > _proxies_level(m)]
    assert not bad, f"imports against the order {PROXIES_LAYERS} inside proxies: {bad}"


def test_other_sub_packages_only_through_their_faces():
    bad = []
    for m, t, name, line in EDGES:
        mine, theirs = _face(m), _face(t)
        if theirs == mine or not theirs or mine.startswith(theirs + "."):
            continue  # own sub-package, top-level modules, or a nested package's parent modules
        target_face, listed = f"gp_search.{theirs}", _face_names(theirs)
        if t == target_face and (not name or name in listed or target_face.endswith(f".{name}")):
            continue  # the face itself, or a name it lists
        if t == f"{target_face}.{name}" and name in listed:
            continue  # a module the face lists as a public namespace
        bad.append(f"{m}:{line} -> {t} ({name or 'module'})")
    assert not bad, f"imports around a face, or of a name the face does not list: {bad}"


def test_no_module_imports_its_own_face():
    bad = [f"{m}:{line}" for m, t, _, line in EDGES
           if _face(m) and t == f"gp_search.{_face(m)}" and m != t]
    assert not bad, f"modules that import their own sub-package's face: {bad}"


def test_no_import_circle():
    graph = {m: set() for m in MODULES}
    for m, t, _, _ in EDGES:
        if t != m:
            graph[m].add(t)
    # Tarjan's strongly connected components, iteratively.
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); on.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                elif nxt in on:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = set()
                while True:
                    x = stack.pop(); on.discard(x); comp.add(x)
                    if x == node:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    assert not comps, f"import circles (function-level imports included): {comps}"


def test_every_face_lists_its_names():
    for face in FACES:
        names = _face_names(face)
        module = importlib.import_module(f"gp_search.{face}")
        assert names, f"gp_search.{face} has no __all__"
        assert all(hasattr(module, n) for n in names), face


def test_no_module_imports_another_modules_private_name():
    bad = [(m, t, n) for m, t, n, _ in EDGES
           if n.startswith("_") and not n.startswith("__") and t != m]
    assert not bad, f"private names imported across modules: {bad}"


def test_modules_stay_small():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_module_docstring_says_what_it_owns():
    missing = [m for m, p in MODULES.items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_public_api_is_where_it_was():
    assert gp_search.__all__ == ["Candidate", "ExprError", "Loss", "LossExpr", "NGL", "NGL_PREFIX",
                                 "Search", "Task", "evaluate", "export", "load_run", "parse",
                                 "resolve", "search"]
    assert all(hasattr(gp_search, name) for name in gp_search.__all__)
    assert callable(gp_search.search) and "tasks" in gp_search.search.__doc__
    assert callable(importlib.import_module("gp_search.cli.main").main)


def test_the_old_top_level_proxies_package_is_gone(tmp_path):
    """``import proxies`` was a deprecated alias of :mod:`gp_search.proxies` in 0.1; removed in
    0.2, as its warning said."""
    out = subprocess.run([sys.executable, "-c", "import proxies"], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr, out.stderr
    assert gp_search.__version__ >= "0.2.0"


def test_tests_mirror_the_package():
    """Tests sit in ``tests/<sub-package>/`` (``tests/e2e/`` for golden, shipped-result and
    end-to-end tests); only this file, about the whole package, stays at the top."""
    tests = Path(__file__).parent
    folders = {p.relative_to(tests).as_posix() for p in tests.rglob("test_*.py")
               if p.parent != tests}
    subpackages = {f.replace(".", "/") for f in FACES} | {"e2e"}
    assert folders and all(Path(f).parent.as_posix() in subpackages for f in folders), folders
    assert [p.name for p in tests.glob("test_*.py")] == ["test_layout.py"]
