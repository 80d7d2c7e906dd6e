"""Safe parsing of loss text into DEAP trees: a whitelist walk over Python's ``ast``, no eval.

Reads the DEAP prefix form (``sub(exp(...), cos(y_pred))``) and ordinary infix
(``exp(2.4 - y_pred*(1 + y_real))``). Only numbers, the two variables, the primitive table's
functions (and the names SymPy prints them with: ``Abs``, ``Min``, ``Max``), ``+ - *``, unary
minus, ``** n`` with a whole ``n`` and ``/`` by a number are admitted; anything else is refused
with an :class:`ExprError` that names the offending token. The text is never evaluated.

What it admits is bounded: at most ``MAX_TEXT`` characters, ``MAX_DEPTH`` levels of nesting and
``MAX_NODES`` tree nodes (twice the largest tree a search may grow), so that every view of a
parsed loss costs a bounded time (see :mod:`gp_search.lang.expr`).
"""

from __future__ import annotations

import ast

from deap import gp

from gp_search.lang import primitives as P

MAX_TEXT = 20_000
MAX_DEPTH = 100
MAX_POWER = 16
MAX_NODES = 1000
"""Largest tree (nodes, after ``**`` and n-ary calls are expanded) the parser admits."""

_ALIASES = {p.sympy_head.__name__: p.name for p in P.TABLE if p.sympy_head} | {
    p.name: p.name for p in P.TABLE}


class ExprError(ValueError):
    """An expression that cannot be parsed, or has no finite meaning."""


# --- parsing -------------------------------------------------------------------------------------
# A parsed node is ("var", name) | ("const", int or float) | ("call", primitive_name, (children...)).

def _parse_nodes(text: str) -> tuple:
    if not isinstance(text, str):
        raise ExprError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ExprError(f"expression is {len(text)} characters long; the limit is {MAX_TEXT}")
    if not text.strip():
        raise ExprError("expression is empty; write e.g. 'exp(2.4 - y_pred*(1 + y_real))'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExprError(f"not a valid expression: {exc.msg} at column {exc.offset}") from None
    except (RecursionError, MemoryError):
        raise ExprError(f"expression nests deeper than {MAX_DEPTH} levels") from None
    return _Walker(text).visit(tree.body, 0)


class _Walker:
    """Turns an ``ast`` expression into parsed nodes, admitting only the loss language."""

    def __init__(self, text: str):
        self.text = text

    def _refuse(self, node: ast.AST, why: str) -> ExprError:
        token = ast.get_source_segment(self.text, node) or type(node).__name__
        if len(token) > 60:
            token = token[:57] + "..."
        return ExprError(f"{why}: {token!r}")

    def visit(self, node: ast.AST, depth: int) -> tuple:
        if depth > MAX_DEPTH:
            raise ExprError(f"expression nests deeper than {MAX_DEPTH} levels")
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._refuse(node, "only real numbers are allowed as constants")
            if abs(v) > 1e300:
                raise self._refuse(node, "number too large (the limit is 1e300)")
            return ("const", v)  # int 1 stays the terminal ``1``; 1.0 is a constant leaf
        if isinstance(node, ast.Name):
            if node.id in P.SYMBOLS:
                return ("var", node.id)
            raise self._refuse(node, f"unknown name; the variables are {P.PRED!r} and {P.REAL!r}")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.UAdd):
                return self.visit(node.operand, d)
            if isinstance(node.op, ast.USub):
                inner = self.visit(node.operand, d)
                if inner[0] == "const":
                    return ("const", -inner[1])
                return ("call", "mul", (("const", -1.0), inner))
            raise self._refuse(node, "unsupported unary operator")
        if isinstance(node, ast.BinOp):
            return self._binop(node, d)
        if isinstance(node, ast.Call):
            return self._call(node, d)
        raise self._refuse(node, f"{type(node).__name__} is not allowed in a loss expression")

    def _binop(self, node: ast.BinOp, d: int) -> tuple:
        ops = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}
        left = self.visit(node.left, d)
        if type(node.op) in ops:
            return ("call", ops[type(node.op)], (left, self.visit(node.right, d)))
        right = self.visit(node.right, d)
        if isinstance(node.op, ast.Pow):
            n = right[1] if right[0] == "const" else None
            if n is None or n != int(n) or not 1 <= n <= MAX_POWER:
                raise self._refuse(node, f"exponents must be whole numbers from 1 to {MAX_POWER}")
            out = left
            for _ in range(int(n) - 1):
                out = ("call", "mul", (out, left))
            return out
        if isinstance(node.op, ast.Div):
            if right[0] != "const" or right[1] == 0:
                raise self._refuse(node, "division only by a non-zero number; use pdiv(a, b) "
                                         "from the 'extended' set for a protected division")
            return ("call", "mul", (left, ("const", 1.0 / right[1])))
        raise self._refuse(node, "unsupported operator; use + - * (and ** n, / number)")

    def _call(self, node: ast.Call, d: int) -> tuple:
        if not isinstance(node.func, ast.Name):
            raise self._refuse(node.func, "only plain function names may be called")
        name = _ALIASES.get(node.func.id)
        if name is None:
            raise self._refuse(node.func, f"unknown function; known: {', '.join(P.BY_NAME)}")
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise self._refuse(node, "functions take positional arguments only")
        arity = P.BY_NAME[name].arity
        args = tuple(self.visit(a, d) for a in node.args)
        if len(args) == arity:
            return ("call", name, args)
        if name in ("add", "mul", "min", "max") and len(args) > 2:  # SymPy prints n-ary forms
            out = args[0]
            for a in args[1:]:
                out = ("call", name, (out, a))
            return out
        raise self._refuse(node, f"{name} takes {arity} argument(s), got {len(args)}")


def _size(nodes: tuple) -> int:
    stack, size = [nodes], 0
    while stack:
        n = stack.pop()
        size += 1
        if n[0] == "call":
            stack.extend(n[2])
    return size


def _used_set(nodes: tuple) -> str:
    stack, used = [nodes], set()
    while stack:
        n = stack.pop()
        if n[0] == "call":
            used.add(n[1])
            stack.extend(n[2])
    return "paper" if used <= set(P.names("paper")) else "extended"


def _to_tree(nodes: tuple, ps: gp.PrimitiveSet) -> gp.PrimitiveTree:
    out, stack = [], [nodes]
    while stack:
        n = stack.pop()
        if n[0] == "var":
            out.append(ps.mapping[n[1]])
        elif n[0] == "const":
            is_one = isinstance(n[1], int) and n[1] == 1
            out.append(ps.mapping["1"] if is_one else P.constant_terminal(n[1], ps))
        else:
            if n[1] not in ps.mapping:
                raise ExprError(f"{n[1]} is not in this primitive set; known: {', '.join(P.names(ps.name.removeprefix('LOSS_')))}")
            out.append(ps.mapping[n[1]])
            stack.extend(reversed(n[2]))
    return gp.PrimitiveTree(out)


def parse_tree(text: str, primitive_set: str = "auto",
               const_range: float = P.DEFAULT_CONST_RANGE) -> tuple[gp.PrimitiveTree, str]:
    """Parse text into a DEAP tree over a primitive set.

    Args:
        text: prefix or infix expression.
        primitive_set: ``"paper"``, ``"extended"`` or ``"auto"`` (the smallest set that fits).
        const_range: range of the set's ephemeral constants.

    Returns:
        ``(tree, set_name)``.

    Raises:
        ExprError: naming the offending token.
    """
    nodes = _parse_nodes(text)
    size = _size(nodes)
    if size > MAX_NODES:
        raise ExprError(f"expression has {size} nodes; the limit is {MAX_NODES} (a search's "
                        f"trees have at most 500)")
    set_name = _used_set(nodes) if primitive_set == "auto" else primitive_set
    tree = _to_tree(nodes, P.pset(set_name, const_range))
    if tree.height > MAX_DEPTH:  # n-ary calls and ** n nest deeper once expanded
        raise ExprError(f"expression nests {tree.height} levels deep once n-ary calls and powers "
                        f"are expanded; the limit is {MAX_DEPTH} (so that its prefix form, "
                        f"which nests as deep, reads back)")
    return tree, set_name
