"""Does a long-tailed or a mixup task catch a loss that fails rare classes, and at what cost?

Trains each loss (one at a time, sequential path, one thread: the seconds are one training's
own) on the long-tailed and the mixup held-out tasks with the same seeds, and prints per task
and loss the mean score, the change against CE paired by seed (95 % CI, p) and the mean seconds
of one training. The known bad loss of issue 20, exp(-8.24*y_pred*y_real*cos(y_real)), whose
logit gradient vanishes on hard examples, is the one to catch.

    OMP_NUM_THREADS=1 python benchmarks/bench_soft_imbalance.py --seeds 5 --steps 300 1200
"""

from __future__ import annotations

import argparse

from gp_search import proxies
from gp_search.analysis.stats import paired, summarize
from gp_search.parallel.evaluate import evaluate

LOSSES = {
    "ce": "ce",
    "ngl": "ngl",
    "label_smoothing": "label_smoothing",
    "bad (issue 20)": "exp(-8.24*y_pred*y_real*cos(y_real))",
    "paper best": "(y_real - sin(y_pred) - cos(y_pred) + 1.33446)*cos(2.07459*sin(y_pred) + "
                  "2.07459)",
}
TASKS = ("t-digits-lt-mlp", "t-digits-mixup-mlp", "t-tabular20-lt-mlp", "t-tabular3-mixup-mlp")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, nargs="+", default=[300, 1200])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    args = ap.parse_args()
    seeds = list(range(args.seeds))
    for steps in args.steps:
        for task in args.tasks:
            proxy = proxies.get(task, steps=steps)
            res = evaluate(list(LOSSES.values()), proxy, seeds, jobs=1, device="cpu",
                           backend="sequential", batched=False)
            n = len(seeds)
            by = {label: res[i * n:(i + 1) * n] for i, label in enumerate(LOSSES)}
            ce = [r.accuracy for r in by["ce"]]
            print(f"\n{task} ({proxy.spec.metric}), {steps} steps, n = {n} seeds")
            for label, rs in by.items():
                acc = [r.accuracy for r in rs]
                s, d = summarize(acc), paired(acc, ce)
                sec = sum(r.seconds for r in rs) / n
                bad = sum(not r.ok for r in rs)
                print(f"  {label:<16} {100 * s['mean']:6.2f}  vs CE {100 * d['diff']:+6.2f} "
                      f"[{100 * d['ci_low']:+6.2f}, {100 * d['ci_high']:+6.2f}] "
                      f"p={d['p_value']:.3g}  {sec:5.2f} s/training"
                      + (f"  not ok {bad}" if bad else ""), flush=True)


if __name__ == "__main__":
    main()
