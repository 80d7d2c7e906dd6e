"""Behavioural distance of a loss tree to a target loss, and Lamarckian fitting of its constants.

What training sees of a per-element loss ``f(p, t)`` (p = softmax probabilities, t = one-hot
target, loss = mean of ``f`` over all elements) is the gradient w.r.t. the logits. Per sample,
the softmax Jacobian removes any component of ``∂f/∂p`` shared by all classes, so training is
unchanged by

    f  ->  a·f + b + c·p + d·t      (a > 0; b, c, d real)

(``c·p`` and ``d·t`` sum to the constants ``c`` and ``d`` over a sample's classes) up to the step
size ``a``, which Adam ignores. The distance ignores exactly that family:

* **probes** (fixed, K = 10): 66 values of ``p`` in (0, 1) for each of ``t = 0`` and ``t = 1``,
  plus every element of 32 softmax rows over 10 classes (logits N(0, 1) scaled from 0.3 to 6,
  one-hot targets): 452 elements ``(p, t)``;
* **residuals**, per element: the gradient ``a·∂f/∂p + c − ∂F/∂p`` divided by ``|∂F/∂p|``, and
  the value ``a·f + b + c·p + d·t − F`` divided by ``|F|``, for the target ``F`` (NGL's are bounded
  away from 0 on [0, 1]: ``|∂F/∂p| ≥ 3.0``, ``F ≥ 0.72``), so every error is relative;
* **fit**: ``(a, b, c, d)`` by linear least squares over all residuals; ``a ≤ 0`` (the candidate
  pushes the wrong way) counts as ``a = 0``;
* **distance** ``D`` = RMS residual at the fit / RMS residual at ``a = 0`` (what the family does
  with no candidate at all): 0 for the target and every member of its class, 1 for a useless
  (or non-finite) candidate;
* **max relative gradient error** ``E`` = ``max |a·∂f/∂p + c − ∂F/∂p| / |∂F/∂p|`` at the fit.

A tree is folded once, in float64 NumPy over all probes, into its value, ``∂/∂p`` and — when its
constants ``θ`` are fitted — ``∂/∂θ`` and ``∂²/∂p∂θ`` (forward-mode hyper-dual arithmetic), so
the constant fit (Levenberg–Marquardt on ``θ`` and ``a``; ``b, c, d`` projected out) needs no
autograd and no code generation. Trees over the ``paper`` primitive set only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from deap import gp

from gp_search import primitives as P

GRID = 66
ROWS, CLASSES = 32, 10
D_FLOOR = 1e-10
"""Distances below this are float64 rounding: raw fitness is capped at ``−log10 D_FLOOR``."""
MAX_CONSTANT = 1e4
"""Fitted constants are kept within ±this (a larger step is refused)."""

_UNARY = {  # name -> (φ, φ', φ'')
    "exp": (np.exp, np.exp, np.exp),
    "sin": (np.sin, np.cos, lambda x: -np.sin(x)),
    "cos": (np.cos, lambda x: -np.sin(x), lambda x: -np.cos(x)),
}
_BINARY = ("add", "sub", "mul")


def probe_elements(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The fixed probe elements ``(p, t)``: a grid of p for t = 0 and 1, then softmax rows.

    Returns:
        Two float64 arrays of length ``2·GRID + ROWS·CLASSES`` (452).
    """
    grid = np.concatenate([[1e-3], (np.arange(GRID - 2) + 0.5) / (GRID - 2), [1 - 1e-3]])
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((ROWS, CLASSES)) * np.geomspace(0.3, 6.0, ROWS)[:, None]
    soft = np.exp(logits - logits.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    onehot = np.eye(CLASSES)[rng.integers(0, CLASSES, ROWS)]
    p = np.concatenate([grid, grid, soft.ravel()])
    t = np.concatenate([np.zeros(GRID), np.ones(GRID), onehot.ravel()])
    return p, t


# --- folding a tree into value and derivatives ---------------------------------------------------
# A folded node is [v, v_p, v_θ, v_pθ]: value, ∂/∂p, ∂/∂θ (m × n) and ∂²/∂p∂θ; None means zero.

def _lin(x, y, sign: float):
    if x is None:
        return None if y is None else (y if sign > 0 else -y)
    if y is None:
        return x
    return x + y if sign > 0 else x - y


def _sum(*terms):
    out = None
    for term in terms:
        if term is not None:
            out = term if out is None else out + term
    return out


def _prod(x, y):
    return None if x is None or y is None else x * y


def _node(name: str, args: list) -> list:
    if name in _UNARY:
        (x0, x1, x2, x3), (f, d1f, d2f) = args[0], _UNARY[name]
        d1 = d1f(x0) if (x1 is not None or x2 is not None) else None
        d2 = d2f(x0) if (x1 is not None and x2 is not None) else None
        return [f(x0), _prod(d1, x1), _prod(d1, x2), _sum(_prod(d2, _prod(x1, x2)), _prod(d1, x3))]
    (x0, x1, x2, x3), (y0, y1, y2, y3) = args
    if name == "mul":
        return [x0 * y0, _sum(_prod(x0, y1), _prod(x1, y0)), _sum(_prod(x0, y2), _prod(x2, y0)),
                _sum(_prod(x0, y3), _prod(x1, y2), _prod(x2, y1), _prod(x3, y0))]
    sign = 1.0 if name == "add" else -1.0
    return [x0 + y0 if sign > 0 else x0 - y0, _lin(x1, y1, sign), _lin(x2, y2, sign),
            _lin(x3, y3, sign)]


def constant_slots(tree) -> list[int]:
    """Positions of the tree's fittable constants (ephemerals; the terminal ``1`` is structure)."""
    return [i for i, n in enumerate(tree) if isinstance(type(n), gp.MetaEphemeral)]


def fold(tree, p: np.ndarray, t: np.ndarray, theta: np.ndarray | None = None) -> list:
    """Value and derivatives of a tree on the probes.

    Args:
        tree: a DEAP tree (list of nodes) over the ``paper`` set.
        p, t: the probe elements.
        theta: values for the constants at :func:`constant_slots` (``None``: no ``θ`` parts;
            the tree's own constants are used).

    Returns:
        ``[v, v_p, v_θ, v_pθ]`` broadcast to ``(n,)``, ``(n,)``, ``(m, n)``, ``(m, n)``
        (``v_θ``/``v_pθ`` ``None`` without ``theta``).

    Raises:
        ValueError: for a primitive outside the paper set.
    """
    m = 0 if theta is None else len(theta)
    stack, k = [], m
    for node in reversed(tree):
        if isinstance(node, gp.Primitive):
            if node.name not in _UNARY and node.name not in _BINARY:
                raise ValueError(f"targeted rediscovery evaluates the 'paper' primitive set; "
                                 f"{node.name!r} is not in it")
            stack.append(_node(node.name, [stack.pop() for _ in range(node.arity)]))
        elif node.value == P.PRED:
            stack.append([p, 1.0, None, None])
        elif node.value == P.REAL:
            stack.append([t, None, None, None])
        elif theta is not None and isinstance(type(node), gp.MetaEphemeral):
            k -= 1  # reversed walk: the last slot is met first
            unit = np.zeros((m, 1))
            unit[k] = 1.0
            stack.append([float(theta[k]), None, unit, None])
        else:
            stack.append([float(node.value), None, None, None])
    v, vp, vt, vpt = stack[0]
    n = p.shape[0]
    shape = (m, n)
    return [np.broadcast_to(v, (n,)), np.broadcast_to(vp if vp is not None else 0.0, (n,)),
            None if theta is None else np.broadcast_to(vt if vt is not None else 0.0, shape),
            None if theta is None else np.broadcast_to(vpt if vpt is not None else 0.0, shape)]


# --- the distance ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    """A candidate measured against the target.

    Attributes:
        distance: ``D`` in [0, 1] (1: useless or non-finite).
        max_grad_error: ``E``, the largest relative gradient error at the fit (inf: no fit).
        scale: the fitted ``a`` (0 when the candidate points the wrong way).
        theta: the constants the distance was measured with (fitted ones when fitting ran).
    """

    distance: float
    max_grad_error: float
    scale: float
    theta: tuple = ()

    @property
    def fitness(self) -> float:
        """Digits of agreement, ``−log10 max(D, D_FLOOR)``: 0 (useless) … 10 (identical)."""
        return -math.log10(max(self.distance, D_FLOOR))


class Target:
    """A target loss tree on the probes: the fixed columns, projections and weights.

    Args:
        tree: the target's DEAP tree (e.g. ``losses.NGL.tree``).
    """

    def __init__(self, tree):
        self.p, self.t = probe_elements()
        n = self.p.shape[0]
        with np.errstate(all="ignore"):
            f, g, _, _ = fold(tree, self.p, self.t)
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g)) and np.all(np.abs(g) > 0)
                and np.all(np.abs(f) > 0)):
            raise ValueError("the target must have finite, non-zero values and gradients on the "
                             "probes (relative errors divide by them)")
        self.wg, self.wf = 1.0 / np.abs(g), 1.0 / np.abs(f)
        self.y = np.concatenate([g * self.wg, f * self.wf])
        zeros = np.zeros(n)
        # Columns of (b, c, d): gradient rows see c only; value rows see b + c·p + d·t.
        fixed = np.stack([np.concatenate([zeros, self.wf]),
                          np.concatenate([self.wg, self.p * self.wf]),
                          np.concatenate([zeros, self.t * self.wf])], axis=1)
        self.q, self.r = np.linalg.qr(fixed)
        self.y_perp = self._perp(self.y)
        self.rss0 = float(self.y_perp @ self.y_perp)

    def _perp(self, v: np.ndarray) -> np.ndarray:
        """Project out the (b, c, d) columns (the last axis is the residual axis)."""
        return v - (v @ self.q) @ self.q.T

    def _scale(self, xp: np.ndarray) -> tuple[float, float]:
        """Least-squares ``a`` for a projected column, and the residual sum of squares."""
        xx = float(xp @ xp)
        a = float(xp @ self.y_perp) / xx if xx > 1e-300 else 0.0
        resid = self.y_perp - a * xp
        return a, float(resid @ resid)

    def column(self, f: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.concatenate([g * self.wg, f * self.wf], axis=-1)

    def measure(self, f: np.ndarray, g: np.ndarray, theta: tuple = ()) -> Fit:
        """The distance of a candidate given its values ``f`` and gradients ``g`` on the probes."""
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g))):
            return Fit(1.0, math.inf, 0.0, theta)
        with np.errstate(all="ignore"):  # huge but finite columns: overflow reads as "no fit"
            return self._measure(f, g, theta)

    def _measure(self, f: np.ndarray, g: np.ndarray, theta: tuple) -> Fit:
        x = self.column(f, g)
        xp = self._perp(x)
        xx = float(xp @ xp)
        a = float(xp @ self.y_perp) / xx if xx > 1e-300 else 0.0
        if not (a > 0 and math.isfinite(a) and math.isfinite(xx)):
            return Fit(1.0, math.inf, 0.0, theta)
        resid = self.y_perp - a * xp
        rss = float(resid @ resid)  # not rss0 − a·(x·y): that cancels to ~1e-16, D to ~1e-8
        # The (b, c, d) coefficients at the fit, for the gradient error (c is the 2nd).
        gamma = np.linalg.solve(self.r, self.q.T @ (self.y - a * x))
        n = self.p.shape[0]
        err = np.abs(a * g + gamma[1] - self.y[:n] / self.wg) * self.wg
        return Fit(math.sqrt(rss / self.rss0), float(err.max()), a, theta)

    def distance(self, tree) -> Fit:
        """Measure a tree with its own constants (no fitting)."""
        with np.errstate(all="ignore"):
            f, g, _, _ = fold(tree, self.p, self.t)
        return self.measure(f, g)

    def fit_constants(self, tree, steps: int = 4) -> Fit:
        """Levenberg–Marquardt on the tree's constants and the scale ``a`` (``b, c, d`` are
        projected out), started from the tree's own constants.

        Args:
            tree: the candidate tree (not modified).
            steps: LM iterations (each one fold of the tree with ``θ`` derivatives).

        Returns:
            The :class:`Fit` at the best constants found (``theta`` holds them, in slot order);
            never worse than the tree's own constants.
        """
        slots = constant_slots(tree)
        theta = np.array([float(tree[i].value) for i in slots])
        with np.errstate(all="ignore"):
            f, g, ft, gt = fold(tree, self.p, self.t, theta)
        best = self.measure(f, g, tuple(theta))
        if not slots or not steps or not math.isfinite(best.max_grad_error):
            return best
        x = self._perp(self.column(f, g))
        a, rss = self._scale(x)
        lam = 1e-4
        for _ in range(steps):
            # Variable projection (Kaufman): a is eliminated in closed form, so the Jacobian of
            # the residual is ∂x/∂θ with the directions of x and of (b, c, d) projected out;
            # without this, α in exp(α − …) and the scale a are nearly collinear and LM crawls.
            jt = self._perp(self.column(ft, gt))
            unit = x / math.sqrt(float(x @ x))
            jt = a * (jt - np.outer(jt @ unit, unit))
            h = jt @ jt.T
            rhs = jt @ (self.y_perp - a * x)
            diag = np.diag(h) + 1e-12 * max(float(np.diag(h).max()), 1e-300)
            try:
                step = np.linalg.solve(h + lam * np.diag(diag), rhs)
            except np.linalg.LinAlgError:
                break
            new_theta = theta + step
            if not (np.all(np.isfinite(new_theta)) and np.all(np.abs(new_theta) <= MAX_CONSTANT)):
                lam *= 10.0
                continue
            with np.errstate(all="ignore"):
                nf, ng, nft, ngt = fold(tree, self.p, self.t, new_theta)
            nx = self.column(nf, ng)
            if not np.all(np.isfinite(nx)):
                lam *= 10.0
                continue
            nx = self._perp(nx)
            new_a, new_rss = self._scale(nx)
            if new_rss < rss:
                theta, a, x, rss, ft, gt, f, g = new_theta, new_a, nx, new_rss, nft, ngt, nf, ng
                lam = max(lam / 10.0, 1e-12)
            else:
                lam *= 10.0
        fitted = self.measure(f, g, tuple(theta))
        return fitted if fitted.distance <= best.distance else best
