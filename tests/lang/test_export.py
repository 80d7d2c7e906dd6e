"""Export: standalone torch / NumPy / JAX files give the toolkit's values without gp-search."""

import ast
import json
import runpy
import subprocess
import sys

import numpy as np
import pytest
import torch

import gp_search
from gp_search.lang.export import export, identifier
from gp_search.lang.losses import grad_scale, loss_scale

EXPRS = [gp_search.NGL_PREFIX, "(y_pred - y_real)**2", "y_pred*y_real + sin(1)*y_pred",
         "tanh(y_pred) - plog(y_pred)*y_real + pdiv(y_pred, y_real + 0.5) + max(y_pred, 0.3)",
         "psqrt(y_pred) * abs(y_real - 0.5) + min(y_pred, y_real) + square(y_pred) + neg(y_real)",
         "add(1, 2)"]

RUNNER = """
import importlib.util, json, sys
sys.modules['gp_search'] = None   # the package must not be needed
sys.modules['proxies'] = None
import numpy as np
spec = importlib.util.spec_from_file_location('exported', sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
data = np.load(sys.argv[2])
fn = getattr(mod, sys.argv[3])
out = []
if sys.argv[4] == 'torch':
    import torch
    for key in ('a', 'b', 'c', 'd'):
        logits, target = torch.tensor(data[key + '_x']), torch.tensor(data[key + '_t'])
        out.append(float(fn(logits, target)))
        out.append(float(getattr(mod, sys.argv[5])()(logits, target)))
else:
    for key in ('a', 'b', 'c', 'd'):
        out.append(float(fn(data[key + '_x'], data[key + '_t'])))
print(json.dumps(out))
"""


def _run_exported(path, name, target, tmp_path, cls=""):
    rng = np.random.default_rng(0)
    data = {"a_x": rng.normal(size=(8, 10)) * 2, "a_t": rng.integers(0, 10, 8),
            "b_x": rng.normal(size=(2, 4, 3, 3)), "b_t": rng.integers(0, 4, (2, 3, 3)),
            "c_x": rng.normal(size=(2, 4, 3, 3))}
    data["c_t"] = np.where(rng.random((2, 3, 3)) < 0.3, 255, rng.integers(0, 4, (2, 3, 3)))
    # Probability targets (mixup, label smoothing): rows of a Dirichlet, shaped like the logits.
    data["d_x"], data["d_t"] = rng.normal(size=(8, 10)), rng.dirichlet(np.ones(10), 8)
    np.savez(tmp_path / "data.npz", **data)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    res = subprocess.run([sys.executable, "-I", str(runner), str(path), str(tmp_path / "data.npz"),
                          name, target, cls], capture_output=True, text=True, cwd=tmp_path,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), data


def _toolkit_values(expr, data):
    """The toolkit's values times the scale the export applies (1 where no gradient, as for
    a constant)."""
    loss = expr.to_torch()
    try:
        s = loss_scale(expr)
    except ValueError:
        s = 1.0
    return [s * loss(torch.tensor(data[k + "_x"]), torch.tensor(data[k + "_t"])).item()
            for k in "abcd"]


@pytest.mark.parametrize("text", EXPRS)
def test_torch_export_is_standalone_and_matches(text, tmp_path):
    expr = gp_search.parse(text)
    src = export(expr, "torch", name="found loss")
    imports = {n.names[0].name for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Import)}
    assert imports == {"torch"}
    assert not any(isinstance(n, ast.ImportFrom) for n in ast.walk(ast.parse(src)))
    path = tmp_path / "found_loss.py"
    path.write_text(src)
    got, data = _run_exported(path, "found_loss", "torch", tmp_path, cls="FoundLoss")
    want = _toolkit_values(expr, data)
    assert got[0] == pytest.approx(want[0], rel=1e-6) and got[1] == got[0]
    assert got[2] == pytest.approx(want[1], rel=1e-6) and got[3] == got[2]
    assert got[4] == pytest.approx(want[2], rel=1e-6) and got[5] == got[4]  # ignore label 255
    assert got[6] == pytest.approx(want[3], rel=1e-6) and got[7] == got[6]  # probabilities
    assert expr.infix in src and expr.prefix in src


@pytest.mark.parametrize("text", EXPRS)
def test_numpy_export_matches(text, tmp_path):
    expr = gp_search.parse(text)
    path = tmp_path / "np_loss.py"
    path.write_text(export(expr, "numpy", name="np_loss"))
    got, data = _run_exported(path, "np_loss", "numpy", tmp_path)
    assert got == pytest.approx(_toolkit_values(expr, data), rel=1e-6)


def test_jax_export_matches(tmp_path):
    pytest.importorskip("jax")
    expr = gp_search.NGL
    path = tmp_path / "jax_loss.py"
    path.write_text(export(expr, "jax", name="jax_loss"))
    got, data = _run_exported(path, "jax_loss", "jax", tmp_path)
    assert got == pytest.approx(_toolkit_values(expr, data), rel=1e-5)  # JAX computes in float32


def test_latex_and_sympy_exports(tmp_path):
    tex = export(gp_search.NGL, "latex")
    assert tex.startswith(r"\mathcal{L}(p, t)") and r"\cos" in tex
    src = export(gp_search.NGL, "sympy", name="ngl")
    path = tmp_path / "ngl_sympy.py"
    path.write_text(src)
    namespace = runpy.run_path(str(path))  # our own generated file, checked by running it
    diff = namespace["ngl"] - gp_search.NGL.sympy
    for p, t in [(0.1, 0), (0.7, 1), (0.99, 1)]:
        assert abs(float(diff.subs({namespace["y_pred"]: p, namespace["y_real"]: t}))) < 1e-12


@pytest.mark.parametrize("raw, want", [("my loss!", "my_loss_"), ("3x", "loss_3x"), ("class", "class_"),
                                       ("", "loss_"), ("ngl", "ngl")])
def test_identifier(raw, want):
    assert identifier(raw) == want
    assert want.isidentifier()


def test_unknown_target():
    with pytest.raises(ValueError, match="unknown export target 'c\\+\\+'"):
        export(gp_search.NGL, "c++")


FOUND = "-sin(cos(y_real) + 0.118524 - 6.09702*exp(-y_pred))"


def test_export_applies_the_scale_and_says_so(tmp_path):
    expr = gp_search.parse(FOUND)
    s = grad_scale(expr.to_torch())
    assert 1 < s < 1e3 and loss_scale(expr) == s
    src = export(expr, "torch", name="found")
    assert f"Scale s = {s!r}" in src and f"return {s!r} * values.mean()" in src
    path = tmp_path / "found.py"
    path.write_text(src)
    got, data = _run_exported(path, "found", "torch", tmp_path, cls="FoundLoss")
    plain = [expr.to_torch()(torch.tensor(data[k + "_x"]), torch.tensor(data[k + "_t"])).item()
             for k in "abc"]
    assert got[0] == pytest.approx(s * plain[0], rel=1e-6)
    assert got[2] == pytest.approx(s * plain[1], rel=1e-6)
    assert got[4] == pytest.approx(s * plain[2], rel=1e-6)
    given = export(expr, "numpy", name="found", scale=2.5)
    assert "return 2.5 * values.mean()" in given and "Scale s = 2.5 (given)" in given


def test_reference_trees_keep_scale_one():
    src = export(gp_search.NGL, "torch", name="ngl")
    assert "return 1.0 * values.mean()" in src and "published scale" in src
    assert loss_scale(gp_search.NGL) == 1.0
    assert grad_scale(gp_search.NGL.to_torch()) > 5   # what NGL would get if it were found


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), float("nan"), "big", True])
def test_bad_scale_is_refused(bad):
    with pytest.raises(ValueError, match="scale must be 'auto' or a positive finite number"):
        export(gp_search.NGL, "torch", scale=bad)
