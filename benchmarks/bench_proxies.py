"""One-at-a-time against population training, for each built-in proxy kind, side by side in one run.

For each proxy (one per model kind: ``digits-mlp`` mlp, ``mnist1d-cnn`` cnn1d, ``digits-cnn``
cnn2d, ``digits-resnet`` resnet — the residual CNN of ``cifar10-resnet`` on the digits viewed as
1x8x8 images, because CIFAR-10 is user files; ``--proxies cifar10-resnet --data-root DIR`` runs
the real one) and each torch thread count (``--threads``), it times on the same candidates (NGL +
random ``paper`` trees that depend on ``y_pred``, fixed seed), seed and ``--steps``:

* one at a time: ``gp_search.proxies.train.train_one`` on ``--n-seq`` of them, in turn;
* as a population: ``gp_search.proxies.population.choose.train_population`` on the first P of them,
  for each P in ``--sizes`` (default 8, 32, 128), with the path it picks (the hand-written MLP stack
  for ``mlp``, the convolution stack for ``cnn1d``/``cnn2d`` on CPU, ``torch.func`` for the others)
  and its default memory budget.

Both include the held-out scoring (what an evaluation costs). Every measurement is warmed up
first (a short run of the same path), and ``--repeat`` rounds visit them all in turn (best round
kept), so a change of load hits all alike. Prints candidates/s and the population's ratio to
one at a time with the same threads; no asserts. Without ``--steps`` each proxy trains
``min(spec.steps, 100)`` steps.

Usage:
    python benchmarks/bench_proxies.py [--proxies digits-mlp,mnist1d-cnn,digits-cnn,digits-resnet]
        [--sizes 8,32,128] [--threads 1,2] [--steps 100] [--n-seq 6] [--repeat 1]
        [--data-root DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import torch
from deap import gp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import proxies
from gp_search.lang import primitives as P
from gp_search.lang.expr import ExprError, from_tree
from gp_search.lang.losses import NGL, from_expr
from gp_search.proxies import train
from gp_search.proxies.population import choose as batched
from gp_search.proxies.spec import ProxySpec

DIGITS_RESNET = ProxySpec(
    "digits-resnet", "digits", "resnet", (("widths", (16, 32, 64)), ("image_shape", (1, 8, 8))),
    steps=500, batch_size=64, lr=1e-3,
    description="cifar10-resnet's residual CNN (16, 32, 64, GroupNorm) on digits as 1x8x8 images")


def candidates(n: int, seed: int) -> list:
    """NGL plus ``n - 1`` random 'paper' trees (depth 1-4) that depend on y_pred."""
    state = random.getstate()
    random.seed(seed)
    try:
        out = [from_expr(NGL)]
        ps = P.pset("paper")
        while len(out) < n:
            e = from_tree(gp.genHalfAndHalf(ps, 1, 4), "paper")
            try:
                if e.depends_on_pred:
                    out.append(from_expr(e))
            except ExprError:  # a constant subtree overflows (about 1 draw in 7,000): skip it
                continue
        return out
    finally:
        random.setstate(state)


def proxy_spec(name: str, data_root: str | None) -> ProxySpec:
    """A registered proxy's spec, or the ``digits-resnet`` stand-in."""
    if name == DIGITS_RESNET.name:
        return DIGITS_RESNET
    over = {"data_root": data_root} if data_root else {}
    return proxies.get(name, **over).spec


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxies", default="digits-mlp,mnist1d-cnn,digits-cnn,digits-resnet")
    ap.add_argument("--sizes", default="8,32,128", help="population sizes P")
    ap.add_argument("--threads", default="1,2", help="torch thread counts")
    ap.add_argument("--steps", type=int, default=None,
                    help="steps per training (default min(spec.steps, 100))")
    ap.add_argument("--n-seq", type=int, default=6, help="candidates timed one at a time")
    ap.add_argument("--repeat", type=int, default=1, help="rounds (the best of each is kept)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (and candidate draw)")
    ap.add_argument("--data-root", default=None, help="for file-backed proxies")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    pool = candidates(max(max(sizes), args.n_seq), args.seed)
    print(f"bench_proxies: P = {sizes}, threads {threads}, {args.n_seq} candidates one at a "
          f"time, seed {args.seed}, {args.repeat} round(s)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; load average at start {os.getloadavg()[0]:.2f}")

    # Every measurement: (proxy, threads, P or 0 for one at a time, run, warm-up).
    jobs = []
    for name in args.proxies.split(","):
        spec = proxy_spec(name, args.data_root)
        steps = args.steps or min(spec.steps, 100)
        spec = dataclasses.replace(spec, steps=steps, time_limit=1e9)
        train.dataset_for(spec)  # data load once per process: not part of any timing
        seq = pool[:args.n_seq]
        for t in threads:
            jobs.append((spec, t, 0, lambda s=spec, c=seq: [train.train_one(s, x, args.seed)
                                                             for x in c],
                         lambda s=spec: train.train_one(s, pool[0], args.seed, 5)))
            for n in sizes:
                jobs.append((spec, t, n,
                             lambda s=spec, n=n: batched.train_population(s, pool[:n], args.seed),
                             lambda s=spec, n=n: batched.train_population(s, pool[:n], args.seed,
                                                                          5)))
    best = [math.inf] * len(jobs)
    for _, t, _, _, warm in jobs:
        torch.set_num_threads(t)
        warm()
    for r in range(args.repeat):
        for i, (spec, t, n, run, _) in enumerate(jobs):
            torch.set_num_threads(t)
            seconds = timed(run)
            best[i] = min(best[i], seconds)
            print(f"  round {r + 1}: {spec.name:<14} threads {t} "
                  f"{'P = ' + str(n) if n else 'one at a time':<14} {seconds:7.2f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)

    print(f"\nload average at end {os.getloadavg()[0]:.2f}; candidates/s (best of "
          f"{args.repeat}), population / one at a time with the same threads in brackets")
    head = f"{'proxy':<14}{'model':<8}{'steps':>6}{'thr':>4}{'one at a time':>15}"
    print(head + "".join(f"{'P = ' + str(n):>17}" for n in sizes))
    for i, (spec, t, n, _, _) in enumerate(jobs):
        if n:
            continue
        base = args.n_seq / best[i]
        cells = [f"{k / best[i + 1 + j]:8.1f} ({k / best[i + 1 + j] / base:4.1f}x)"
                 for j, k in enumerate(sizes)]
        print(f"{spec.name:<14}{spec.model:<8}{spec.steps:>6}{t:>4}{base:>15.1f}"
              + "".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
