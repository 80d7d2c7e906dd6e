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
  pushes the wrong way) counts as ``a = 0``. With *term weights*, ``a`` is replaced by one weight
  (any sign) per top-level additive term of the candidate (linear scaling of additive terms);
* **distance** ``D`` = RMS residual at the fit / RMS residual at ``a = 0`` (what the family does
  with no candidate at all): 0 for the target and every member of its class, 1 for a useless
  (or non-finite) candidate;
* **max relative gradient error** ``E`` = ``max |a·∂f/∂p + c − ∂F/∂p| / |∂F/∂p|`` at the fit.

A tree is folded once, in float64 NumPy over all probes, into its value, ``∂/∂p`` and — when its
constants ``θ`` are fitted — ``∂/∂θ`` and ``∂²/∂p∂θ`` (forward-mode hyper-dual arithmetic), so
the constant fit (Levenberg–Marquardt on ``θ`` and ``a``; ``b, c, d`` projected out) needs no
autograd and no code generation per tree (each primitive's φ' and φ'' come from the primitive
table, :func:`gp_search.lang.derivatives.numpy_derivatives`). Trees over the ``paper`` primitive
set only. A :class:`Library` holds the columns of all small constant-free trees, so the best extra term for a
candidate is one matrix product away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from deap import gp

from gp_search.lang import derivatives
from gp_search.lang import primitives as P

GRID = 66
ROWS, CLASSES = 32, 10
D_FLOOR = 1e-10
"""Distances below this are float64 rounding: raw fitness is capped at ``−log10 D_FLOOR``."""
MAX_CONSTANT = 1e4
"""Fitted constants are kept within ±this (a larger step is refused)."""

# name -> (φ, φ', φ''): the paper set's one-argument primitives, their derivatives derived from
# the primitive table's SymPy column. add, sub and mul are the hyper-dual sum and product rules.
UNARY = {name: derivatives.numpy_derivatives(name, 2) for name in P.names("paper")
         if P.BY_NAME[name].arity == 1}
BINARY = ("add", "sub", "mul")


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
    if name in UNARY:
        (x0, x1, x2, x3), (f, d1f, d2f) = args[0], UNARY[name]
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
            if node.name not in UNARY and node.name not in BINARY:
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
    out = [_full(v, (n,)), _full(vp, (n,))]
    return out + ([None, None] if theta is None else [_full(vt, (m, n)), _full(vpt, (m, n))])


def _full(x, shape: tuple) -> np.ndarray:
    """``x`` (None = 0, a scalar or a broadcastable array) as an array of ``shape``."""
    if isinstance(x, np.ndarray) and x.shape == shape:
        return x
    return np.broadcast_to(0.0 if x is None else x, shape)


# --- additive terms ------------------------------------------------------------------------------

def terms(tree) -> list[slice]:
    """The top-level additive terms: the maximal subtrees hanging off the root's add/sub chain,
    in prefix order (one term, the whole tree, when the root is not add or sub)."""
    tree = tree if isinstance(tree, gp.PrimitiveTree) else gp.PrimitiveTree(tree)
    out, stack = [], [0]
    while stack:
        i = stack.pop()
        if isinstance(tree[i], gp.Primitive) and tree[i].name in ("add", "sub"):
            left = tree.searchSubtree(i + 1)
            stack += [left.stop, i + 1]  # left term is popped first: prefix order
        else:
            out.append(tree.searchSubtree(i))
    return out


# --- the distance ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fit:
    """A candidate measured against the target.

    Attributes:
        distance: ``D`` in [0, 1] (1: useless or non-finite).
        max_grad_error: ``E``, the largest relative gradient error at the fit (inf: no fit).
        weights: the fitted scale ``a`` (one entry), or one weight per additive term when terms
            are weighted; a loss proposing the fit is ``Σ weights[i]·term[i]``.
        theta: the constants the distance was measured with (fitted ones when fitting ran).
    """

    distance: float
    max_grad_error: float
    weights: tuple = ()
    theta: tuple = ()

    @property
    def fitness(self) -> float:
        """Digits of agreement, ``−log10 max(D, D_FLOOR)``: 0 (useless) … 10 (identical)."""
        return -math.log10(max(self.distance, D_FLOOR))


_NO_FIT = (1.0, math.inf)


class Target:
    """A target loss tree on the probes, and the measurements of candidates against it.

    Args:
        tree: the target's DEAP tree (e.g. ``losses.NGL.tree``).
        term_weights: give each top-level additive term of a candidate its own least-squares
            weight (linear scaling of additive terms; any sign), instead of one positive scale
            ``a`` for the whole tree.
    """

    def __init__(self, tree, term_weights: bool = False):
        self.term_weights = term_weights
        self.p, self.t = probe_elements()
        n = self.p.shape[0]
        with np.errstate(all="ignore"):
            f, g, _, _ = fold(tree, self.p, self.t)
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g)) and np.all(np.abs(g) > 0)
                and np.all(np.abs(f) > 0)):
            raise ValueError("the target must have finite, non-zero values and gradients on the "
                             "probes (relative errors divide by them)")
        self.wg, self.wf = 1.0 / np.abs(g), 1.0 / np.abs(f)
        self.g = g
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

    def _column(self, f: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.concatenate([g * self.wg, f * self.wf], axis=-1)

    # -- folding a candidate into its columns --
    def _parts(self, tree) -> list[tuple[list, int]]:
        """The pieces that get one weight each: ``(nodes, number of constants)``."""
        pieces = [list(tree[s]) for s in terms(tree)] if self.term_weights else [list(tree)]
        return [(nodes, len(constant_slots(nodes))) for nodes in pieces]

    def _columns(self, parts, theta) -> tuple | None:
        """Columns ``X`` (K × 2n), their ``θ``-derivatives per part, and the gradients ``g``
        (K × n); ``None`` when anything is not finite."""
        cols, dcols, grads, k = [], [], [], 0
        with np.errstate(all="ignore"):
            for nodes, m in parts:
                th = None if theta is None else theta[k:k + m]
                f, g, ft, gt = fold(nodes, self.p, self.t, th)
                k += m
                cols.append(self._column(f, g))
                grads.append(g)
                dcols.append(None if th is None or not m else self._column(ft, gt))
            x = np.array(cols)
            if not np.all(np.isfinite(x)) or np.abs(x).max() > 1e150:
                return None
            if any(d is not None and not np.all(np.isfinite(d)) for d in dcols):
                return None
        return x, dcols, np.array(grads)

    def _solve(self, xp: np.ndarray) -> tuple[np.ndarray, float]:
        """Least-squares weights of projected columns, and the residual sum of squares (computed
        from the residual: ``rss0 − w·X·y`` would cancel to ~1e-16)."""
        # QR (a handful of columns); SVD-based lstsq only for rank-deficient ones (a term that
        # repeats another, or that the projection emptied), which it leaves at weight ~0.
        q, r = np.linalg.qr(xp.T)
        diag = np.abs(np.diag(r))
        if diag.min() > 1e-9 * max(float(diag.max()), 1e-300):
            w = np.linalg.solve(r, q.T @ self.y_perp)
        else:
            w = np.linalg.lstsq(xp.T, self.y_perp, rcond=None)[0]
        resid = self.y_perp - w @ xp
        return w, float(resid @ resid)

    def _fit(self, x: np.ndarray, grads: np.ndarray, theta: tuple) -> Fit:
        with np.errstate(all="ignore"):
            w, rss = self._solve(self._perp(x))
        if not self.term_weights and not w[0] > 0:
            return Fit(*_NO_FIT, (0.0,), theta)  # one scale must be positive: wrong direction
        if not np.all(np.isfinite(w)):
            return Fit(*_NO_FIT, tuple(w), theta)
        # The (b, c, d) coefficients at the fit, for the gradient error (c is the 2nd).
        gamma = np.linalg.solve(self.r, self.q.T @ (self.y - w @ x))
        err = np.abs(w @ grads + gamma[1] - self.g) * self.wg
        return Fit(min(math.sqrt(rss / self.rss0), 1.0), float(err.max()), tuple(w), theta)

    # -- public measurements --
    def distance(self, tree) -> Fit:
        """Measure a tree with its own constants (no fitting)."""
        got = self._columns(self._parts(tree), None)
        return Fit(*_NO_FIT) if got is None else self._fit(got[0], got[2], ())

    def fit_constants(self, tree, steps: int = 4) -> Fit:
        """Levenberg–Marquardt on the tree's constants, the weights eliminated by variable
        projection, started from the tree's own constants.

        Written by hand rather than ``scipy.optimize.least_squares`` because, on the fits a
        targeted rediscovery makes (200 random ``paper`` trees with constants, NGL target, term
        weights, the same residual and analytic Jacobian, one thread, load average ~11), it is
        as good for a fixed budget and faster: 4 steps took 2.52 s in all against 4.46 s
        (1.77×) for ``least_squares(method="trf", max_nfev=5)`` (the same 5 folds), with mean
        ``D`` 0.8928 vs 0.8897 (each better on 82 / 72 trees, the rest equal);
        ``least_squares`` to its default tolerances reached mean ``D`` 0.8893 in 4.4× the time,
        and 12 LM steps 0.8917 in 2.3× (``python benchmarks/bench_fit.py --trees 200``). The
        search calls it with a few steps on every new tree and writes the constants back
        (Lamarckian), so the per-fit cost is what counts.

        Args:
            tree: the candidate tree (not modified).
            steps: LM iterations (each one fold of the tree with ``θ`` derivatives).

        Returns:
            The :class:`Fit` at the best constants found (``theta`` holds them, in
            :func:`constant_slots` order); never worse than the tree's own constants.
        """
        parts = self._parts(tree)
        theta = np.array([float(tree[i].value) for i in constant_slots(tree)])
        got = self._columns(parts, theta)
        if got is None:
            return Fit(*_NO_FIT, (), tuple(theta))
        x, dcols, grads = got
        best = self._fit(x, grads, tuple(theta))
        if not len(theta) or not steps or not math.isfinite(best.max_grad_error):
            return best
        xp = self._perp(x)
        w, rss = self._solve(xp)
        lam = 1e-4
        for _ in range(steps):
            # Variable projection (Kaufman): the weights are eliminated in closed form, so the
            # Jacobian is w·∂x/∂θ with the directions of x and of (b, c, d) projected out;
            # without it α in exp(α − …) and the scale are nearly collinear and LM crawls.
            with np.errstate(all="ignore"):
                jac = np.vstack([wi * self._perp(d) for wi, d in zip(w, dcols) if d is not None])
                basis = np.linalg.qr(xp.T)[0]
                jac = jac - (jac @ basis) @ basis.T
                h = jac @ jac.T
                rhs = jac @ (self.y_perp - w @ xp)
            if not (np.all(np.isfinite(h)) and np.all(np.isfinite(rhs))):
                break
            diag = np.diag(h) + 1e-12 * max(float(np.diag(h).max()), 1e-300)
            try:
                step = np.linalg.solve(h + lam * np.diag(diag), rhs)
            except np.linalg.LinAlgError:
                break
            trial = theta + step
            got = None
            if np.all(np.isfinite(trial)) and np.all(np.abs(trial) <= MAX_CONSTANT):
                got = self._columns(parts, trial)
            if got is None:
                lam *= 10.0
                continue
            with np.errstate(all="ignore"):
                t_xp = self._perp(got[0])
                t_w, t_rss = self._solve(t_xp)
            if t_rss < rss and (self.term_weights or t_w[0] > 0):
                theta, (x, dcols, grads), xp, w, rss = trial, got, t_xp, t_w, t_rss
                lam = max(lam / 10.0, 1e-12)
            else:
                lam *= 10.0
        fitted = self._fit(x, grads, tuple(theta))
        return fitted if fitted.distance <= best.distance else best
