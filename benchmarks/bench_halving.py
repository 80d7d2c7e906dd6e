"""Successive halving: full trainings saved and best fitness, with and without, on one fixed seed.

Runs the same search twice (only ``successive_halving`` differs) and prints, for each: trainings
at the full budget, short trainings, best fitness and best loss, and wall time.

    python benchmarks/bench_halving.py [--preset quick] [--seed 0] [--generations N] [--out DIR]
"""

import argparse
import tempfile
import time

from gp_search.engine import config
from gp_search.engine import rundir as store
from gp_search.engine.runner import run_search


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--generations", type=int)
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="halving-"))
    args = ap.parse_args()
    rows = []
    for halving in (True, False):
        cfg = config.build(args.preset, None, seed=args.seed, successive_halving=halving,
                           generations=args.generations, time_budget=0.0,
                           out=f"{args.out}/{'sh' if halving else 'full'}")
        t0 = time.perf_counter()
        run = store.load_run(run_search(cfg, quiet=True))
        seconds = time.perf_counter() - t0
        state = run.checkpoint["scorer"]
        rows.append((halving, state["full_trainings"], state["short_trainings"],
                     run.best["fitness"], run.best["canonical"], seconds))
    print(f"preset {args.preset}, seed {args.seed}; trainings count (loss, proxy, seed) triples")
    print(f"{'halving':<8} {'full':>6} {'short':>6} {'best':>8} {'seconds':>8}  best loss")
    for halving, full, short, best, canon, sec in rows:
        print(f"{str(halving):<8} {full:>6} {short:>6} {best:>8.4f} {sec:>8.1f}  {canon}")
    saved = rows[1][1] - rows[0][1]
    print(f"full trainings saved by halving: {saved} of {rows[1][1]} "
          f"({saved / max(1, rows[1][1]):.0%}); same best fitness: {rows[0][3] == rows[1][3]}")


if __name__ == "__main__":
    main()
