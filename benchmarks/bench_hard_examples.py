"""Benchmark of the hard-examples check: which losses it passes, what it rejects, what it costs.

Draws N initial trees as the quick preset's search does (its toolbox: ramped half-and-half,
depth and limits; seed 0), screens each with the checks before it (structural, numeric,
behavioural) and then with :func:`gp_search.engine.screen.hard_examples`, and prints:

* the verdict and the class share it reached for the named losses (CE, NGL, label smoothing,
  focal as torch losses; the shipped paper best and the quick preset's old best as trees);
* how many of the trees that pass the earlier checks it rejects;
* ms per candidate of the earlier checks and of this one, best of ``--rounds`` rounds (one
  torch thread; the machine is shared, so the ratio matters more than the times).

    python benchmarks/bench_hard_examples.py [--n 300] [--rounds 2]
"""

import argparse
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search.lang.expr import parse  # noqa: E402
from gp_search.lang.losses import REFERENCE  # noqa: E402
from gp_search.engine import screen as S  # noqa: E402
from gp_search.engine.config import preset  # noqa: E402
from gp_search.engine.variation import toolbox  # noqa: E402

NAMED = {
    "ce": REFERENCE["ce"].fn,
    "ngl": REFERENCE["ngl"].fn,
    "label smoothing": REFERENCE["label_smoothing"].fn,
    "focal": REFERENCE["focal"].fn,
    "paper best (shipped)": parse("(y_real - sin(y_pred) - cos(y_pred) + 1.33446)"
                                  "*cos(2.07459*sin(y_pred) + 2.07459)"),
    "quick best (issue 20)": parse("exp(-8.24*y_pred*y_real*cos(y_real))"),
}


def earlier(e) -> bool:
    return all(check(e, S.CLASSES).passed if check is not S.structural else check(e).passed
               for check in (S.structural, S.numeric, S.behavioural))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, loss in NAMED.items():
        v = S.hard_examples(loss)
        print(f"{name:<24} {'pass' if v.passed else 'FAIL'}  {v.message}")
    random.seed(0)
    tb = toolbox(preset("quick"))
    exprs = [parse(str(tb.init()), "paper") for _ in range(args.n)]
    passing = []
    for e in exprs:
        try:
            if earlier(e):
                passing.append(e)
        except Exception:  # screen() turns these into a verdict; here they are just not counted
            continue
    rejected = [e for e in passing if not S.hard_examples(e).passed]
    print(f"\n{args.n} initial trees of the quick preset (seed 0): {len(passing)} pass the earlier "
          f"checks; the hard-examples check rejects {len(rejected)} of them "
          f"({len(rejected) / max(len(passing), 1):.0%})")
    for e in rejected[:5]:
        print(f"  e.g. {e.canonical}")
    best = {"earlier checks": float("inf"), "hard examples": float("inf")}
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for e in passing:
            earlier(e)
        best["earlier checks"] = min(best["earlier checks"], (time.perf_counter() - t0) / len(passing))
        t0 = time.perf_counter()
        for e in passing:
            S.hard_examples(e)
        best["hard examples"] = min(best["hard examples"], (time.perf_counter() - t0) / len(passing))
    print(f"ms per candidate (of those {len(passing)}), best of {args.rounds} rounds: " +
          ", ".join(f"{k} {v * 1e3:.1f}" for k, v in best.items()))


if __name__ == "__main__":
    main()
