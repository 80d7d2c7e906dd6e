"""Fuzz the loss pipeline at scale: tests/test_fuzz.py's generators, counts per outcome, seconds.

Every input goes through parse -> LossExpr (canonical form, fingerprint, ``to_torch()`` on
float32 logits) -> screen -> one
training step on ``synthetic-mlp`` (see ``tests/test_fuzz.py::outcome``). The script stops at
the first crash or broken invariant and prints the input; otherwise it prints how many inputs
ended in each outcome (``parse-error``, ``no-finite-value``, or ``screen:<verdict>/train:<status>``)
and the time taken.

Usage:
    python benchmarks/fuzz.py [--n 10000] [--seed 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import test_fuzz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="inputs (the adversarial list included)")
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    rest = max(0, args.n - len(test_fuzz.adversarial()))
    texts = test_fuzz.cases(n_random=rest * 4 // 10, n_deap=rest * 3 // 10,
                            n_mutated=rest - rest * 4 // 10 - rest * 3 // 10, seed=args.seed)
    print(f"# fuzz: {len(texts)} inputs (seed {args.seed}); load average {os.getloadavg()[0]:.2f}",
          flush=True)
    counts: dict[str, int] = {}
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")  # numeric warnings from hostile constants are expected
    for i, text in enumerate(texts, 1):
        try:
            got = test_fuzz.outcome(text)
        except BaseException as exc:
            print(f"CRASH on input {i}: {text[:300]!r}\n  {type(exc).__name__}: {exc}")
            raise
        counts[got] = counts.get(got, 0) + 1
        if i % 1000 == 0:
            print(f"  {i} inputs, {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    print(f"\n{'outcome':<44} {'count':>6}")
    for name, c in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{name:<44} {c:>6}")
    print(f"{'total':<44} {sum(counts.values()):>6}")
    print(f"\n{len(texts)} inputs, 0 crashes, {seconds:.0f} s ({len(texts) / seconds:.0f} inputs/s); "
          f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
