"""Export: a loss expression as standalone torch / NumPy / JAX source, LaTeX, or SymPy source.

The source is printed from the SymPy form (simplified, constants folded) with the function
templates of the primitive table; the algebra (``+``, ``*``, ``**``) is the same in all three
array languages. The torch file imports only torch and defines a function ``NAME(logits, target)``
and an ``nn.Module``; the NumPy and JAX files likewise need only their own library. Targets
labelled 255 (:data:`gp_search.lang.expr.IGNORE_INDEX`, Pascal VOC's void) count nowhere, as in
the toolkit's own losses.

Scale: the torch, NumPy and JAX functions return ``s × mean f(p, t)``, with ``s`` from
:func:`gp_search.lang.losses.loss_scale` (CE's logit-gradient norm on a fixed probe; 1 exactly
for reference losses such as NGL), so the file can be dropped into an SGD training in place of
CE with CE's learning rate; under Adam the factor changes nothing. The docstring states ``s``.
The LaTeX and SymPy exports are the formula ``f`` itself.
"""

from __future__ import annotations

import keyword
import re

import sympy

from gp_search.lang import primitives as P
from gp_search.lang.apply import IGNORE_INDEX
from gp_search.lang.expr import ExprError, LossExpr, parse
from gp_search.lang.losses import SCALE_CLASSES, SCALE_ROWS, loss_scale
from gp_search.core import __version__

TARGETS = ("torch", "numpy", "jax", "latex", "sympy")

_PRELUDE = {
    "torch": (
        "import torch\n",
        "    p = torch.softmax(logits, dim=1)\n"
        "    keep = None\n"
        "    if target.shape == logits.shape and target.is_floating_point():\n"
        "        t = target.to(p.dtype)\n"
        "    else:\n"
        "        target = target.long()\n"
        "        if logits.shape[1] <= IGNORE and bool((target == IGNORE).any()):\n"
        "            keep = target != IGNORE\n"
        "            target = torch.where(keep, target, torch.zeros_like(target))\n"
        "        t = torch.nn.functional.one_hot(target, logits.shape[1])"
        ".movedim(-1, 1).to(p.dtype)\n",
        "torch.zeros_like(p)",
        "torch.where(keep.unsqueeze(1).expand_as(values), values, 0.0)",
    ),
    "numpy": (
        "import numpy as np\n",
        "    logits = np.asarray(logits)\n"
        "    target = np.asarray(target)\n"
        "    z = np.exp(logits - logits.max(axis=1, keepdims=True))\n"
        "    p = z / z.sum(axis=1, keepdims=True)\n"
        "    keep = None\n"
        "    if target.shape == logits.shape and np.issubdtype(target.dtype, np.floating):\n"
        "        t = target.astype(p.dtype)\n"
        "    else:\n"
        "        if logits.shape[1] <= IGNORE and (target == IGNORE).any():\n"
        "            keep = target != IGNORE\n"
        "            target = np.where(keep, target, 0)\n"
        "        t = np.moveaxis(np.eye(logits.shape[1], dtype=p.dtype)[target], -1, 1)\n",
        "np.zeros_like(p)",
        "np.where(np.broadcast_to(np.expand_dims(keep, 1), values.shape), values, 0.0)",
    ),
    "jax": (
        "import jax\nimport jax.numpy as jnp\n",
        "    p = jax.nn.softmax(logits, axis=1)\n"
        "    keep = None\n"
        "    if target.shape == logits.shape and jnp.issubdtype(target.dtype, jnp.floating):\n"
        "        t = target.astype(p.dtype)\n"
        "    else:\n"
        "        if logits.shape[1] <= IGNORE:  # no data-dependent branch: jit-able\n"
        "            keep = target != IGNORE\n"
        "            target = jnp.where(keep, target, 0)\n"
        "        t = jnp.moveaxis(jax.nn.one_hot(target, logits.shape[1], dtype=p.dtype), -1, 1)\n",
        "jnp.zeros_like(p)",
        "jnp.where(jnp.broadcast_to(jnp.expand_dims(keep, 1), values.shape), values, 0.0)",
    ),
}
"""Per array language: imports, the prelude (p, t and ``keep``, the positions not labelled with
the ignore label), a zero array shaped like p, and the values with ignored positions zeroed."""


def identifier(name: str) -> str:
    """A valid Python identifier made from any user-supplied name (``"my loss!"`` → ``my_loss_``)."""
    out = re.sub(r"\W", "_", str(name), flags=re.ASCII)
    if not out or out[0].isdigit():
        out = "loss_" + out
    return out + "_" if keyword.iskeyword(out) else out


def tree_source(tree, target: str) -> str:
    """Array-language source straight from a DEAP tree, node by node from the primitive table:
    for a loss whose SymPy form is over the bound (:mod:`gp_search.lang.budget`)."""
    stack = []
    for n in reversed(tree):
        if n.arity:
            args = [stack.pop() for _ in range(n.arity)]
            stack.append(P.BY_NAME[n.name].source[target].format(*args))
        elif isinstance(n.value, str) and n.value in P.SYMBOLS:
            stack.append("p" if n.value == P.PRED else "t")
        else:
            stack.append(repr(float(n.value)))
    return stack[0]


def source(expr: sympy.Expr, target: str) -> str:
    """Array-language source of a SymPy loss expression over the variables ``p`` and ``t``."""
    if expr.is_Symbol:
        return "p" if expr == P.SYM_PRED else "t"
    if expr.is_Number:
        return repr(float(expr)) if not expr.is_Integer else f"{int(expr)}.0"
    if expr.is_Add or expr.is_Mul:
        # A fixed order of terms, so every export of the same loss prints the same text.
        args = [source(a, target) for a in sympy.ordered(expr.args)]
        return "(" + (" + " if expr.is_Add else " * ").join(args) + ")"
    if expr.is_Pow:
        return f"({source(expr.base, target)} ** {source(expr.exp, target)})"
    args = [source(a, target) for a in expr.args]
    prim = P.BY_SYMPY_HEAD.get(type(expr))
    if prim is None:
        raise ValueError(f"no {target} form for {type(expr).__name__}; add it to the primitive "
                         "table in gp_search/lang/primitives.py")
    while len(args) > prim.arity:  # SymPy merges Min(Min(a, b), c) into Min(a, b, c)
        args = [prim.source[target].format(args[0], args[1])] + args[2:]
    return prim.source[target].format(*args)


def _scale_note(scale: float, how: str) -> str:
    if how == "computed":
        return (f"Scale s = {scale!r}: s gives the loss cross-entropy's logit-gradient norm\n"
                f"(median over K in {SCALE_CLASSES} of ||grad CE|| / ||grad f|| on {SCALE_ROWS} "
                "rows of N(0, 1) logits),\nso under SGD it takes CE's learning rate; "
                "under Adam s changes nothing.\n\n")
    return f"Scale s = {scale!r} ({how}).\n\n"


def _docstring(expr: LossExpr, name: str, origin: str, scale_note: str = "") -> str:
    mean = "s × mean" if scale_note else "mean"
    return (f'r"""{name}: a loss function exported by gp-search {__version__}.\n\n'
            f"Loss = {mean} over all elements of f(p, t), p = softmax(logits) over dim 1,\n"
            "t = one-hot target (or the given probabilities); positions whose target is\n"
            f"{IGNORE_INDEX} count nowhere when there are at most {IGNORE_INDEX} classes; where\n\n"
            f"    f(p, t) = {expr.infix}\n\n"
            + scale_note +
            f"LaTeX: {expr.latex}\n\n"
            f"Tree: {expr.prefix}\n"
            f"Source: {origin}\n"
            '"""\n\n')


def export(expr: "LossExpr | str", target: str = "torch", name: str = "loss",
           origin: str = "gp-search", scale: "float | str" = "auto") -> str:
    """Render a loss for use outside gp-search.

    Args:
        expr: a :class:`LossExpr`, or text that :func:`gp_search.lang.expr.parse` reads.
        target: ``"torch"``, ``"numpy"``, ``"jax"``, ``"latex"`` or ``"sympy"``.
        name: the function's name; made into a valid identifier.
        origin: where the loss came from, written into the docstring.
        scale: the factor the torch / NumPy / JAX function multiplies by: ``"auto"``
            (:func:`gp_search.lang.losses.loss_scale`: 1 for reference losses; 1 with a note
            when the loss has no usable gradient) or a positive number.

    Returns:
        Python source (a standalone module) or, for ``"latex"``, a LaTeX formula.

    Example:
        >>> from gp_search.lang import NGL
        >>> "def ngl(logits, target)" in export(NGL, "torch", name="ngl")
        True
    """
    if isinstance(expr, str):
        expr = parse(expr)
    if target not in TARGETS:
        raise ValueError(f"unknown export target {target!r}; choose one of {list(TARGETS)}")
    if scale != "auto" and (isinstance(scale, (bool, str)) or not isinstance(scale, (int, float))
                            or not 0 < scale < float("inf")):
        raise ValueError(f"scale must be 'auto' or a positive finite number, got {scale!r}")
    fname = identifier(name)
    if target == "latex":
        return (r"\mathcal{L}(p, t) = \operatorname{mean}\left[" + expr.latex + r"\right]")
    head = _docstring(expr, fname, origin)
    if target == "sympy":
        if expr.over_budget:
            raise ExprError(f"no SymPy export: {expr.canonical[:60]!r}'s SymPy form needs more "
                            "than the bound of gp_search.lang.budget; export it to torch, numpy "
                            "or jax (made from its tree)")
        heads = sorted(p.sympy_head.__name__ for p in P.TABLE if p.sympy_head
                       and p.sympy_head.__module__.startswith("sympy"))
        return (head + "import sympy\n"
                f"from sympy import {', '.join(heads)}\n\n"
                "y_pred = sympy.Symbol('y_pred', positive=True)\n"
                "y_real = sympy.Symbol('y_real', nonnegative=True)\n"
                + "".join(f"{f} = sympy.Function('{f}')\n" for f in ("plog", "pdiv", "psqrt")
                          if f in expr.infix)
                + f"{fname} = {expr.infix}\n")
    if scale != "auto":
        s, how = float(scale), "given"
    else:
        try:
            s, how = loss_scale(expr), "computed"
        except ValueError:
            s, how = 1.0, "no usable gradient on the scale probe, so none applied"
        if s == 1.0 and how == "computed":
            how = "a reference loss keeps its published scale"
    head = _docstring(expr, fname, origin, _scale_note(s, how))
    imports, prelude, zeros, kept = _PRELUDE[target]
    body = tree_source(expr.tree, target) if expr.over_budget else source(expr.sympy, target)
    cls = "".join(w.capitalize() for w in fname.split("_") if w) or "Loss"
    cls = cls if cls.lower().endswith("loss") else cls + "Loss"
    cls = cls + "Module" if cls == fname else cls
    text = (head + imports + "\n"
            f"IGNORE = {IGNORE_INDEX}  # target id that counts nowhere (e.g. Pascal VOC's void)\n\n\n"
            f"def {fname}(logits, target):\n"
            f'    """{s!r} × mean of f(p, t) over all elements; target: class indices (positions\n'
            f'    labelled IGNORE left out when there are at most IGNORE classes), or one-hot or\n'
            f'    probability targets (mixup, label smoothing) shaped like the logits."""\n'
            + prelude +
            f"    values = {zeros} + {body}\n"
            "    if keep is None:\n"
            f"        return {s!r} * values.mean()\n"
            f"    return {s!r} * {kept}.sum() / (keep.sum() * values.shape[1])\n")
    if target == "torch":
        text += (f"\n\nclass {cls}(torch.nn.Module):\n"
                 f'    """``{fname}`` as a module."""\n\n'
                 "    def forward(self, logits, target):\n"
                 f"        return {fname}(logits, target)\n")
    return text

