"""Dask vs loky throughput on this machine, and what Dask's MALLOC_TRIM_THRESHOLD_ default costs.

The same trainings (``--losses`` candidates: the expression reference losses and random
``paper`` trees that pass screening, drawn from a fixed seed; ``--seeds`` seeds each; proxy
``--proxy`` at its full budget; one training per task, ``batched=False``) go through:

* ``loky``              ``gp_search.evaluate(backend="loky", jobs=J)``;
* ``dask``              ``backend="dask", jobs=J``: the backend's own local cluster (workers
                        started without ``MALLOC_TRIM_THRESHOLD_``);
* ``dask-nanny-default`` a ``LocalCluster`` with Dask's default nanny environment (workers get
                        ``MALLOC_TRIM_THRESHOLD_=65536``), joined by address;

and, without any Dask, one process training them in a row with and without the variable
(``plain`` / ``plain+MALLOC_TRIM``), which isolates the variable's effect from Dask's.

Every path is warmed up first (workers started, data loaded); the paths take turns for
``--repeat`` rounds and the best and median of each are printed, with candidates/s = trainings
per second, n = trainings per round, and the ratios. The load average is printed before and
after: on a shared machine, compare rows from the same run only.

Usage:
    python benchmarks/bench_dask.py [--proxy mnist1d-cnn] [--losses 8] [--seeds 2] [--jobs 2]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gp_search.parallel import dask_cluster as dask_backend
from gp_search import evaluate

PLAIN = """
import json, sys, time
from gp_search import proxies
from gp_search.lang.losses import resolve
texts, proxy, seeds = json.loads(sys.argv[1])
p = proxies.get(proxy)
losses = [resolve(t) for t in texts]
p.evaluate(losses[0], seeds[0])  # warm-up: data, allocator
t = time.perf_counter()
for loss in losses:
    for s in seeds:
        p.evaluate(loss, s)
print(time.perf_counter() - t)
"""


def candidates(n: int, seed: int) -> list[str]:
    """Expression reference losses, then random 'paper' trees that pass screening."""
    from deap import gp

    from gp_search.lang import primitives as P
    from gp_search.lang.expr import from_tree
    from gp_search.lang.losses import REFERENCE
    from gp_search.engine.screen import screen

    out = [r.expr.prefix for r in REFERENCE.values() if r.expr is not None][:n]
    rng_state = random.getstate()
    random.seed(seed)
    try:
        ps = P.pset("paper")
        while len(out) < n:
            e = from_tree(gp.genHalfAndHalf(ps, 1, 4), "paper")
            if screen(e).passed:
                out.append(e.prefix)
    finally:
        random.setstate(rng_state)
    return out


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default="mnist1d-cnn")
    ap.add_argument("--losses", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from distributed import LocalCluster

    texts = candidates(args.losses, 0)
    seeds = list(range(args.seeds))
    n = len(texts) * len(seeds)
    print(f"# bench_dask: {args.proxy}, {len(texts)} losses x {len(seeds)} seeds = {n} trainings "
          f"per round, jobs {args.jobs}, {args.repeat} rounds; {os.cpu_count()} CPUs; "
          f"load average before: {load()}", flush=True)

    environ = dict(os.environ)
    trapped = LocalCluster(n_workers=args.jobs, threads_per_worker=1, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR,
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
    os.environ.clear()  # the default nanny wrote MALLOC_TRIM_THRESHOLD_ into os.environ
    os.environ.update(environ)

    def run(backend: str, scheduler: str | None = None):
        def go():
            rs = evaluate(texts, proxy=args.proxy, seeds=seeds, jobs=args.jobs, backend=backend,
                          scheduler=scheduler, batched=False)
            bad = [r for r in rs if r.status not in ("ok", "nan", "diverged")]
            assert not bad, bad[0]
            return rs
        return go

    def plain(trim: bool):
        env = dict(environ, PYTHONPATH=str(ROOT))
        env.pop(dask_backend.MALLOC_VAR, None)
        if trim:
            env[dask_backend.MALLOC_VAR] = "65536"

        def go():
            # Throughput of J such processes side by side, like J workers.
            procs = [subprocess.Popen([sys.executable, "-c", PLAIN,
                                       json.dumps([texts[j::args.jobs], args.proxy, seeds])],
                                      env=env, stdout=subprocess.PIPE, text=True)
                     for j in range(args.jobs)]
            outs = [float(p.communicate()[0].split()[-1]) for p in procs]
            return max(outs)
        return go

    paths = {"loky": run("loky"), "dask": run("dask"),
             "dask-nanny-default": run("dask", trapped.scheduler_address),
             "plain": plain(False), "plain+MALLOC_TRIM": plain(True)}
    for name in ("loky", "dask", "dask-nanny-default"):  # start workers, load data
        paths[name]()
    trap_env = dask_backend.client(trapped.scheduler_address, args.jobs).run(
        dask_backend._malloc_trim)
    own_env = dask_backend.client(None, args.jobs).run(dask_backend._malloc_trim)
    print(f"# {dask_backend.MALLOC_VAR} in workers: dask {sorted(set(own_env.values()), key=str)}, "
          f"dask-nanny-default {sorted(set(trap_env.values()), key=str)}", flush=True)

    times: dict[str, list[float]] = {k: [] for k in paths}
    for r in range(args.repeat):
        for name, go in paths.items():
            t = time.perf_counter()
            inner = go()
            wall = time.perf_counter() - t
            times[name].append(inner if name.startswith("plain") else wall)
            print(f"  round {r + 1} {name:<20} {times[name][-1]:7.2f} s", flush=True)

    print(f"\n{'path':<20} {'n':>4} {'best s':>8} {'median s':>9} {'cand/s':>8} {'vs loky':>8}")
    best = {k: min(v) for k, v in times.items()}
    for name, ts in times.items():
        # plain rows time the trainings alone (no dispatch, no start-up): not comparable to loky
        ratio = "-" if name.startswith("plain") else f"{best['loky'] / best[name]:.2f}x"
        print(f"{name:<20} {n:>4} {best[name]:8.2f} {statistics.median(ts):9.2f} "
              f"{n / best[name]:8.2f} {ratio:>8}")
    print(f"\nMALLOC_TRIM_THRESHOLD_=65536 slowdown (best of {args.repeat}): "
          f"Dask workers {best['dask-nanny-default'] / best['dask']:.2f}x, "
          f"plain processes {best['plain+MALLOC_TRIM'] / best['plain']:.2f}x")
    print(f"# load average after: {load()}")
    dask_backend.close(trapped.scheduler_address)
    trapped.close()


if __name__ == "__main__":
    main()
