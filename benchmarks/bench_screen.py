"""Benchmark of screening at several class counts: what it rejects, and what it costs per candidate.

Draws N random trees as ``bench_core.py`` does (DEAP ramped half-and-half over the paper
primitive set, depth 1-6, seed 0), screens each at K = 10 only (the screening before class counts
were checked) and at every K of ``screen.CLASSES``, and prints:

* how many of the trees accepted at K = 10 each other class count rejects (a tree can fail at
  several), and how many pass everywhere;
* which checks the reference losses (as trees of the extended set) and the two found losses of
  issue 15 pass at each K;
* seconds per candidate of both screenings, best of ``--rounds`` interleaved rounds over all N
  trees (one torch thread; the machine is shared, so the ratio matters more than the times).

    python benchmarks/bench_screen.py [--n 1000] [--rounds 3]
"""

import argparse
import random
import time
from collections import Counter

import torch
from deap import gp

from gp_search import NGL, parse
from gp_search.lang import primitives as P
from gp_search.engine.screen import CLASSES, screen

LOSSES = {
    "ce": "-y_real*plog(y_pred)",
    "ngl": NGL.prefix,
    "focal (gamma 2)": "-y_real*(1 - y_pred)**2*plog(y_pred)",
    "label smoothing (0.1, K = 10)": "-(0.9*y_real + 0.01)*plog(y_pred)",
    "mse": "(y_pred - y_real)**2",
    "found: quick preset": "0.326933*exp(y_pred*y_real + exp(y_pred) - sin(y_real))",
    "found: paper preset": "-sin(cos(y_real) + 0.118524 - 6.09702*exp(-y_pred))",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    random.seed(0)
    ps = P.pset("paper")
    exprs = [parse(str(gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, 6))), "paper")
             for _ in range(args.n)]
    for e in exprs:  # compile once (cached per tree) and warm up: excluded from the timings
        screen(e, (10,)), screen(e)

    best = {"K = 10 only": float("inf"), f"K in {CLASSES}": float("inf")}
    for _ in range(args.rounds):
        for name, classes in zip(best, ((10,), CLASSES)):
            t0 = time.perf_counter()
            for e in exprs:
                screen(e, classes)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(exprs))

    accepted = [e for e in exprs if screen(e, (10,)).passed]
    fails = Counter()
    everywhere = 0
    for e in accepted:
        bad = tuple(k for k in CLASSES if not screen(e, (k,)).passed)
        fails.update(bad)
        everywhere += not bad
    print(f"{len(exprs)} random paper trees (ramped half-and-half, depth 1-6, seed 0)")
    print(f"accepted at K = 10 only: {len(accepted)}; at every K of {CLASSES}: {everywhere} "
          f"(check: screen() accepts {sum(screen(e).passed for e in exprs)})")
    for k in CLASSES:
        print(f"  rejected at K = {k:>3}: {fails[k]:>3} of the {len(accepted)}")
    print("\nloss (tree)                      " + "  ".join(f"K={k:<3}" for k in CLASSES))
    for name, text in LOSSES.items():
        e = parse(text)
        marks = ["pass " if screen(e, (k,)).passed else "FAIL " for k in CLASSES]
        print(f"{name:<32} " + "  ".join(marks))
    print(f"\nms per candidate, best of {args.rounds} interleaved rounds over {len(exprs)} trees:")
    base = best["K = 10 only"]
    for name, sec in best.items():
        print(f"  {name:<24} {sec * 1e3:6.2f} ms  ({sec / base:.2f}x)")


if __name__ == "__main__":
    main()
