"""Benchmark of the constant fit of the targeted rediscovery: the hand-written Levenberg–Marquardt
of ``Target.fit_constants`` against ``scipy.optimize.least_squares`` on the same fits.

The fits are the ones a targeted rediscovery makes: ``--trees`` random ``paper`` trees (ramped
half-and-half, depth 1-4, the search's initial population; seed ``--seed``), their constant
subtrees folded (``fold_constant_subtrees``), those with at least one constant kept, measured
against NGL with one weight per additive term (the search's defaults). Both fitters see the same
variable-projection problem (weights and the ``b, c, d`` family eliminated in closed form, the
same analytic Jacobian, constants within ±``MAX_CONSTANT``) and start from the tree's own
constants; ``least_squares`` runs ``method="trf"`` (it tolerates non-finite trial points, ``lm``
does not) with the bounds, once with the budget of the search's 4 LM steps (``max_nfev=5``: one
fold per evaluation, the Jacobian reuses it) and once to its default tolerances. The methods take
turns on each tree, so load changes hit them alike. Prints per method: median and total time per
fit, median and mean distance ``D``, mean digits ``−log10 D``, and per tree how often it beat or
lost to LM with 4 steps (by more than 1e-9 in ``D``). No asserts: figures only.

Usage:
    python benchmarks/bench_fit.py [--trees 200] [--seed 0]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread, as the search's workers
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from deap import gp
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search.lang import primitives as P
from gp_search.rediscovery.behaviour import MAX_CONSTANT, Fit, Target, constant_slots
from gp_search.rediscovery.scorer import fold_constant_subtrees
from gp_search.rediscovery.targeted import ngl_target


def fits_to_make(n: int, seed: int) -> list[list]:
    """Node lists of ``n`` random trees with at least one constant, folded as the search does."""
    random.seed(seed)
    ps, out = P.pset("paper"), []
    while len(out) < n:
        tree = gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, 4))
        nodes = fold_constant_subtrees(tree) or list(tree)
        if constant_slots(nodes):
            out.append(nodes)
    return out


def scipy_fit(target: Target, nodes: list, max_nfev: int | None) -> Fit:
    """``fit_constants`` with ``scipy.optimize.least_squares`` in place of the hand-written LM."""
    parts = target._parts(nodes)
    theta0 = np.array([float(nodes[i].value) for i in constant_slots(nodes)])
    got = target._columns(parts, theta0)
    if got is None:
        return target.distance(nodes)
    start = target._fit(got[0], got[2], tuple(theta0))
    if not math.isfinite(start.max_grad_error):
        return start
    cache: dict = {}

    def state(theta):
        key = theta.tobytes()
        if key not in cache:
            cols = target._columns(parts, theta)
            if cols is None:
                cache[key] = None
            else:
                with np.errstate(all="ignore"):
                    xp = target._perp(cols[0])
                    w, _ = target._solve(xp)
                cache[key] = (cols, xp, w)
        return cache[key]

    def residual(theta):
        s = state(theta)
        return np.full(target.y_perp.shape, np.inf) if s is None else target.y_perp - s[2] @ s[1]

    def jacobian(theta):  # the variable-projection Jacobian fit_constants uses (Kaufman)
        (_, dcols, _), xp, w = state(theta)
        jac = np.vstack([wi * target._perp(d) for wi, d in zip(w, dcols) if d is not None])
        basis = np.linalg.qr(xp.T)[0]
        return -(jac - (jac @ basis) @ basis.T).T

    lo = np.full(theta0.shape, -MAX_CONSTANT)
    with np.errstate(all="ignore"):
        res = least_squares(residual, np.clip(theta0, lo + 1e-9, -lo - 1e-9), jac=jacobian,
                            bounds=(lo, -lo), method="trf", max_nfev=max_nfev)
    s = state(res.x)
    if s is None:
        return start
    fitted = target._fit(s[0][0], s[0][2], tuple(res.x))
    return fitted if fitted.distance <= start.distance else start


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    target = ngl_target(term_weights=True)
    trees = fits_to_make(args.trees, args.seed)
    methods = {
        "LM (hand-written), 4 steps": lambda n: target.fit_constants(n, 4),
        "LM (hand-written), 12 steps": lambda n: target.fit_constants(n, 12),
        "least_squares trf, max_nfev=5": lambda n: scipy_fit(target, n, 5),
        "least_squares trf, default tol": lambda n: scipy_fit(target, n, None),
    }
    for fn in methods.values():  # warm-up
        fn(trees[0])
    times = {k: [] for k in methods}
    dist = {k: [] for k in methods}
    for nodes in trees:
        for k, fn in methods.items():
            t = time.perf_counter()
            fit = fn(nodes)
            times[k].append(time.perf_counter() - t)
            dist[k].append(fit.distance)
    print(f"bench_fit: {len(trees)} fits (random 'paper' trees, depth 1-4, seed {args.seed}, "
          f"with >= 1 constant; NGL target, term weights); load average {os.getloadavg()[0]:.1f}")
    ref = dist["LM (hand-written), 4 steps"]
    print(f"{'method':<33}{'median ms':>10}{'total s':>9}{'median D':>10}{'mean D':>8}"
          f"{'digits':>8}{'better':>8}{'worse':>7}")
    for k in methods:
        d = dist[k]
        digits = statistics.fmean(-math.log10(max(x, 1e-10)) for x in d)
        better = sum(x < r - 1e-9 for x, r in zip(d, ref))
        worse = sum(x > r + 1e-9 for x, r in zip(d, ref))
        print(f"{k:<33}{1e3 * statistics.median(times[k]):>10.2f}{sum(times[k]):>9.2f}"
              f"{statistics.median(d):>10.4f}{statistics.fmean(d):>8.4f}{digits:>8.3f}"
              f"{better:>8}{worse:>7}")
    base = sum(times["LM (hand-written), 4 steps"])
    for k in methods:
        print(f"  time {k} / LM 4 steps: {sum(times[k]) / base:.2f}x")


if __name__ == "__main__":
    main()
