"""GPU check of population training: equality with one-at-a-time training on CUDA, then speed.

One script, under 5 minutes on one GPU (``--max-seconds`` caps the speed part):

1. Equality, per built-in model kind (``digits-mlp`` mlp, ``mnist1d-cnn`` cnn1d, ``digits-cnn``
   cnn2d, ``digits-resnet`` resnet; Adam, and SGD on ``mnist1d-cnn``): reference losses and
   screened random trees trained 3 steps by ``batched.train_population`` and one by one by
   ``train.train_one`` on CUDA, TF32 off (so both do float32 arithmetic): same status, and
   ``train_loss`` (the 3rd step's loss) within 1e-5 relative. Exit status 1 when one differs.
   (Few steps on purpose: Adam moves a parameter whose gradient is rounding noise by ±lr either
   way, so after 5 steps one loss of ``digits-resnet`` already differed by 3e-5 on this CPU.)
2. Speed, per proxy: candidates/s of ``train_population`` at P = 64, 256, 1024, 4096
   (``--sizes``; ``--steps`` steps each, held-out scoring included; one warm-up run of the same
   P first, CUDA synchronised around each timed run), the peak GPU memory per candidate
   (``torch.cuda.max_memory_allocated`` above the data, / P) next to the estimate the path
   chunks with (``batched_func.bytes_per_candidate``), and the ratio to ``train_one`` one at a
   time on the same GPU (``--seq`` candidates). A P whose predicted time (linear in P from the
   previous one) would pass the proxy's share of ``--max-seconds`` is skipped, and says so.

TF32 is left at torch's defaults for the speed part (printed). Not measured here: CUDA graphs
and ``torch.compile`` of the stacked step (untested on a GPU). Without a CUDA device it prints a
message and exits with status 0.

Usage:
    python benchmarks/gpu_check.py [--sizes 64,256,1024,4096] [--steps 50] [--seq 4]
        [--max-seconds 200]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import proxies
from gp_search.lang.losses import REFERENCE
from gp_search.proxies import models, train
from gp_search.proxies.population import choose as batched
from gp_search.proxies.population.func import bytes_per_candidate
from gp_search.engine.screen import screen

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxies import DIGITS_RESNET, candidates  # noqa: E402

PROXIES = ("digits-mlp", "mnist1d-cnn", "digits-cnn", "digits-resnet")


def spec_of(name: str, **over):
    spec = DIGITS_RESNET if name == DIGITS_RESNET.name else proxies.get(name).spec
    return dataclasses.replace(spec, time_limit=1e9, **over)


def equality(device: str) -> bool:
    """Population vs one at a time on ``device``, 3 steps, every kind; prints the worst gaps."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    trees = [c for c in candidates(200, 5)[1:] if screen(c.expr).passed][:6]
    losses = [REFERENCE[r] for r in ("ngl", "ce", "focal", "ce_l2", "mse")] + trees
    ok = True
    cases = [(name, "adam") for name in PROXIES] + [("mnist1d-cnn", "sgd")]
    for name, opt in cases:
        spec = spec_of(name, steps=3, **({"optimizer": "sgd", "lr": train.SGD_LR}
                                          if opt == "sgd" else {}))
        got = batched.train_population(spec, losses, 0, device=device)
        worst, same = 0.0, True
        for loss, r in zip(losses, got):
            ref = train.train_one(spec, loss, 0, device=device)
            same &= r.status == ref.status
            if r.ok and ref.ok:
                worst = max(worst, abs(r.train_loss - ref.train_loss) / max(1e-6, abs(ref.train_loss)))
        good = same and worst <= 1e-5
        ok &= good
        print(f"  {name:<14} {opt:<5} {len(losses)} losses: statuses {'equal' if same else 'DIFFER'}, "
              f"max relative train_loss gap {worst:.2e} -> {'PASS' if good else 'FAIL'}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # torch's default for matmul
    torch.backends.cudnn.allow_tf32 = True  # and for cuDNN convolutions
    return ok


def speed(name: str, sizes: list[int], steps: int, n_seq: int, share: float, device: str) -> None:
    spec = spec_of(name, steps=steps)
    ds = train.dataset_for(spec, device)
    pool = candidates(max(max(sizes), n_seq), 0)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                         **dict(spec.model_kw)).to(device)
    estimate = bytes_per_candidate(model, ds.x_train[:spec.batch_size], spec.optimizer)
    start = time.perf_counter()
    train.train_one(spec, pool[0], 0, 5, device)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for c in pool[:n_seq]:
        train.train_one(spec, c, 0, device=device)
    torch.cuda.synchronize()
    seq = n_seq / (time.perf_counter() - t)
    print(f"\n{name} ({spec.model}, {steps} steps, batch {spec.batch_size}): one at a time "
          f"{seq:.1f} cand/s (n = {n_seq}); estimated {estimate / 2 ** 20:.2f} MiB per candidate")
    last = None
    for n in sizes:
        left = share - (time.perf_counter() - start)
        if last is not None and last * n / sizes[sizes.index(n) - 1] * 1.3 > left:
            print(f"  P = {n:5d}: skipped (predicted {last * n / sizes[sizes.index(n) - 1]:.0f} s "
                  f"with a warm-up, {left:.0f} s left of this proxy's share)")
            break
        tw = time.perf_counter()
        batched.train_population(spec, pool[:n], 0, 3, device)  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        warm = time.perf_counter() - tw
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        res = batched.train_population(spec, pool[:n], 0, device=device)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        last = dt + warm
        per = (torch.cuda.max_memory_allocated() - base) / n / 2 ** 20
        acc = sorted(r.accuracy for r in res if r.ok)
        median = acc[len(acc) // 2] if acc else math.nan
        print(f"  P = {n:5d}: {n / dt:9.1f} cand/s = {n / dt / seq:6.1f}x one at a time; "
              f"{dt:6.2f} s; peak {per:7.2f} MiB per candidate; {sum(r.ok for r in res)} ok, "
              f"median {spec.metric} {median:.3f}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="64,256,1024,4096")
    ap.add_argument("--steps", type=int, default=50, help="steps per training in the speed part")
    ap.add_argument("--seq", type=int, default=4, help="candidates timed one at a time")
    ap.add_argument("--max-seconds", type=float, default=200.0,
                    help="time for the speed part, shared equally by the proxies")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to "
              "check. Run this on a machine with a GPU and a CUDA build of torch.")
        return 0
    device = "cuda"
    t0 = time.perf_counter()
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{torch.cuda.get_device_properties(0).total_memory / 2 ** 30:.0f} GiB")
    print("1. equality, population vs one at a time, 3 steps, TF32 off:")
    ok = equality(device)
    print(f"2. speed (TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN "
          f"{torch.backends.cudnn.allow_tf32}); default stack budget "
          f"{batched.default_stack_mb(device):.0f} MiB")
    names = args.proxies.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]
    for name in names:
        speed(name, sizes, args.steps, args.seq, args.max_seconds / len(names), device)
    print(f"\ngpu_check: {'PASS' if ok else 'FAIL'} in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
