"""Benchmark of the loss language: parse + canonicalise + compile time, compile success, key counts.

Draws N random trees with DEAP's ramped half-and-half over the paper primitive set (depth 1-6,
seed 0), and for each times: parse of its prefix text, SymPy canonical key, fingerprint, and the
torch compile + one forward/backward on a (64, 10) batch. Prints medians, the share of trees whose
loss is finite with a finite gradient, and the distinct canonical keys and fingerprints.

    python benchmarks/bench_core.py [--n 1000] [--set paper]
"""

import argparse
import random
import statistics
import time

import torch
from deap import gp

from gp_search import parse
from gp_search.lang import primitives as P


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--set", default="paper")
    args = ap.parse_args()
    torch.set_num_threads(1)
    random.seed(0)
    ps = P.pset(args.set)
    texts = [str(gp.PrimitiveTree(gp.genHalfAndHalf(ps, 1, 6))) for _ in range(args.n)]
    logits = torch.randn(64, 10)
    target = torch.randint(0, 10, (64,))
    parse(texts[0]).to_torch()(logits, target)  # warm-up, excluded

    t_parse, t_key, t_fp, t_compile, t_total = [], [], [], [], []
    keys, fps, working, invalid = set(), set(), 0, 0
    for text in texts:
        t0 = time.perf_counter()
        e = parse(text, args.set)
        t1 = time.perf_counter()
        try:
            keys.add(e.canonical)
        except ValueError:
            invalid += 1
        t2 = time.perf_counter()
        fps.add(e.fingerprint)
        t3 = time.perf_counter()
        z = logits.clone().requires_grad_(True)
        value = e.to_torch()(z, target)
        ok = bool(torch.isfinite(value))
        if ok and value.requires_grad:
            (g,) = torch.autograd.grad(value, z)
            ok = bool(torch.isfinite(g).all())
        t4 = time.perf_counter()
        working += ok
        t_parse.append(t1 - t0)
        t_key.append(t2 - t1)
        t_fp.append(t3 - t2)
        t_compile.append(t4 - t3)
        t_total.append((t1 - t0) + (t2 - t1) + (t4 - t3))

    ms = lambda xs: f"{1e3 * statistics.median(xs):.3f} ms"  # noqa: E731
    print(f"random trees: n = {args.n}, set {args.set!r}, ramped half-and-half depth 1-6, seed 0")
    print(f"median parse                          {ms(t_parse)}")
    print(f"median canonical key (SymPy)          {ms(t_key)}")
    print(f"median fingerprint (probe gradient)   {ms(t_fp)}")
    print(f"median compile + forward/backward     {ms(t_compile)}")
    print(f"median parse + canonicalise + compile {ms(t_total)}")
    print(f"working torch loss (finite value and gradient on a (64, 10) batch): "
          f"{working}/{args.n} = {working / args.n:.1%}")
    print(f"constant overflow (no canonical key): {invalid}")
    print(f"distinct canonical keys: {len(keys)}; distinct fingerprints: {len(fps)} "
          f"(incl. 'constant' and 'nonfinite')")


if __name__ == "__main__":
    main()
