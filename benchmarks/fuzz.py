"""Fuzz the loss pipeline at scale: tests/lang/test_fuzz.py's generators, counts per outcome, seconds.

Every input goes through parse -> LossExpr (canonical form, fingerprint, ``to_torch()`` on
float32 logits) -> screen -> one
training step on ``synthetic-mlp`` (see ``tests/lang/test_fuzz.py::outcome``), under a per-input
time limit. The script stops at the first crash or broken invariant and prints the input;
otherwise it prints how many inputs ended in each outcome (``parse-error``, ``no-finite-value``,
``screen:<verdict>/train:<status>``, ``over-limit``), the five slowest inputs with their times,
and the time taken; it exits 1 if any input ran over the limit. With the defaults it runs the
inputs of the slow test ``tests/lang/test_fuzz.py::test_ten_thousand_random_inputs_all_get_an_outcome``.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/fuzz.py [--n 10000] [--seed 2] [--limit 20] [--shard K/N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "lang")]

import test_fuzz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="inputs (the adversarial list included)")
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--limit", type=float, default=test_fuzz.LIMIT,
                    help="seconds per input; an input over it is reported as a failure")
    ap.add_argument("--shard", default="0/1",
                    help="K/N: run every N-th input from the K-th (N processes cover the whole set)")
    args = ap.parse_args()
    k, n = map(int, args.shard.split("/"))
    texts = test_fuzz.mix(args.n, args.seed)[k::n]
    print(f"# fuzz: {len(texts)} inputs (seed {args.seed}), limit {args.limit:g} s each; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    counts: dict[str, int] = {}
    times: list[tuple[float, str]] = []
    over = []
    t0 = time.perf_counter()
    warnings.simplefilter("ignore")  # numeric warnings from hostile constants are expected
    for i, text in enumerate(texts, 1):
        try:
            got, seconds = test_fuzz.timed_outcome(text, args.limit)
        except BaseException as exc:
            print(f"CRASH on input {i}: {text[:300]!r}\n  {type(exc).__name__}: {exc}")
            raise
        counts[got] = counts.get(got, 0) + 1
        times.append((seconds, text))
        if got == "over-limit":
            over.append(text)
        if i % 1000 == 0:
            print(f"  {i} inputs, {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - t0
    print(f"\n{'outcome':<44} {'count':>6}")
    for name, c in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{name:<44} {c:>6}")
    print(f"{'total':<44} {sum(counts.values()):>6}")
    times.sort(key=lambda st: -st[0])
    print("\nslowest inputs (seconds through the whole pipeline):")
    for s, text in times[:5]:
        print(f"  {s:7.2f}  {text[:160]!r}{' ...' if len(text) > 160 else ''}")
    print(f"\n{len(texts)} inputs, 0 crashes, {len(over)} over the {args.limit:g} s limit, "
          f"{seconds:.0f} s ({len(texts) / seconds:.1f} inputs/s); load average after "
          f"{os.getloadavg()[0]:.2f}")
    if over:
        sys.exit(1)


if __name__ == "__main__":
    main()
