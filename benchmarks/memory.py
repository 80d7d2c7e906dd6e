"""Memory over a long run: a 1000-generation search on a tiny proxy, RSS every 100 generations.

The search (population 8, ``synthetic-mlp`` with 5 steps, one seed, sequential backend, seed 0)
runs through :func:`gp_search.engine.runner.resume`'s machinery with one extra hook that records,
every ``--every`` generations: the process's resident set size (psutil), the size of the per-run
memo state (the scorer's canonical-form and fingerprint maps, its screening memo, SymPy's cache) and
of ``checkpoint.json``. It prints one row per sample, then the RSS growth from the first sample (the
warm process) to the last, per 100 generations, and a least-squares slope.

What is expected to grow, and why: the scorer remembers every canonical form it has scored and
every fingerprint (``by_key``, ``by_fingerprint``), because a resumed run must make the same
dedup decisions as an unbroken one; they are in the checkpoint too. That is a few hundred bytes
per distinct candidate, proportional to the work done (like the SQLite cache), not a leak.

Usage:
    python benchmarks/memory.py [--generations 1000] [--every 100] [--population 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search.engine import runner
from gp_search.engine import rundir as store
from gp_search.engine.config import SearchConfig


def sympy_cache_entries() -> int:
    """Entries in SymPy's LRU caches (bounded by SYMPY_CACHE_SIZE per function)."""
    from sympy.core import cache

    total = 0
    for fn in getattr(cache, "CACHE", []):
        info = getattr(fn, "cache_info", None)
        if info is not None:
            total += info().currsize
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=1000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--population", type=int, default=8)
    args = ap.parse_args()

    # Screening runs in this process; torch's default intra-op threads make its tiny tensor
    # ops crawl on a loaded 2-core machine (7 ms per 64x10 softmax measured), so one thread.
    import torch
    torch.set_num_threads(1)
    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SearchConfig(population=args.population, generations=args.generations,
                           proxies=("synthetic-mlp",), steps=5, seeds=1, jobs=1,
                           backend="sequential", out=tmp, seed=0, hall_of_fame=10,
                           seed_individuals=("ngl",))
        run_dir = store.new_run_dir(tmp, cfg)
        store.write_atomic(run_dir / "config.json", cfg.to_json())
        search = runner._open(cfg, run_dir, quiet=True, evaluator=None)
        rows = []
        t0 = time.perf_counter()

        def sample(rec: dict) -> None:
            g = rec["generation"]
            if g % args.every:
                return
            sc = search.scorer
            rows.append((g, proc.memory_info().rss / 2**20, len(sc.by_key),
                         len(sc.by_fingerprint), len(sc.verdicts), sympy_cache_entries(),
                         (run_dir / "checkpoint.json").stat().st_size / 2**10
                         if (run_dir / "checkpoint.json").exists() else 0.0,
                         time.perf_counter() - t0))
            print(f"gen {g:>5}  RSS {rows[-1][1]:7.1f} MiB  by_key {rows[-1][2]:>6}  "
                  f"by_fingerprint {rows[-1][3]:>6}  verdicts {rows[-1][4]:>6}  "
                  f"sympy cache {rows[-1][5]:>6}  checkpoint {rows[-1][6]:8.1f} KiB  "
                  f"{rows[-1][7]:6.0f} s", flush=True)

        search.hooks.after_generation.insert(0, sample)  # before the checkpoint writer: the size lags by one
        print(f"# memory: {args.generations} generations, population {args.population}, "
              f"synthetic-mlp 5 steps, sequential; load average {os.getloadavg()[0]:.2f}",
              flush=True)
        runner._drive(search, quiet=True)

    # Generation 0 is the cold process (before the first training, imports half done): the
    # growth is measured from the first sample after it.
    warm = rows[1:] if len(rows) > 2 else rows
    first, last = warm[0], warm[-1]
    gens = last[0] - first[0]
    n = len(warm)
    mx = sum(r[0] for r in warm) / n
    my = sum(r[1] for r in warm) / n
    slope = (sum((r[0] - mx) * (r[1] - my) for r in warm)
             / max(1e-9, sum((r[0] - mx) ** 2 for r in warm)))
    print(f"\nRSS: {rows[0][1]:.1f} MiB at generation 0 (cold); {first[1]:.1f} MiB at "
          f"generation {first[0]} -> {last[1]:.1f} MiB at "
          f"generation {last[0]}: {last[1] - first[1]:+.1f} MiB over {gens} generations "
          f"({(last[1] - first[1]) / max(gens, 1) * 100:+.2f} MiB per 100; least-squares slope "
          f"{slope * 100:+.2f} MiB per 100 generations, n = {n} samples); peak "
          f"{max(r[1] for r in rows):.1f} MiB")
    print(f"memo state at the end: {last[2]} canonical forms, {last[3]} fingerprints, "
          f"{last[4]} screening verdicts, checkpoint {last[6]:.0f} KiB; {last[7]:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
