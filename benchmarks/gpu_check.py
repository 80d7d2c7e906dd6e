"""GPU check of population training: equality with one-at-a-time training, then speed, to a JSON file.

One script for a short GPU loan (its default run on one H100 is planned to fit 5 minutes;
``--max-seconds`` caps the speed part), with a dry run on the CPU:

1. Equality, per built-in model kind (``digits-mlp`` mlp, ``mnist1d-cnn`` cnn1d, ``digits-cnn``
   cnn2d, ``digits-resnet`` resnet; Adam, and SGD on ``mnist1d-cnn``): reference losses, screened
   random trees and a loss that turns NaN (``BAD``: it must leave the stack alone) trained 3
   steps by ``train_population`` and one by one by ``train_one``, TF32 off (both then do float32
   arithmetic): same status, and ``train_loss`` (the 3rd step's loss) within 1e-5 relative. Exit
   status 1 when one differs. (Few steps on purpose: Adam moves a parameter whose gradient is
   rounding noise by ±lr either way, so after 5 steps one loss of ``digits-resnet`` already
   differed by 3e-5 on a CPU.)
2. Speed, per proxy and population size P (``--sizes``): ``train_population`` with ``--steps``
   steps as a search trains (the validation split: held-out scoring without the per-candidate
   calibration fits that ``evaluate``'s test split adds), after a 3-step warm-up of the same P; the caching allocator is emptied before each
   (so one run's cache does not shrink the next one's memory budget). Training and held-out
   scoring are timed apart (the device is synchronised around each ``scores()`` call), the number
   of chunks the memory budget split P into is counted, and the peak memory per candidate
   (``max_memory_allocated`` above the data, / the largest chunk) is printed beside the estimate
   the path chunks with. A P is skipped when its predicted time would pass the proxy's share of
   ``--max-seconds``, predicted linear in P from the last size measured, warm-up included; a
   size more than 8 times the last gets sizes inserted between them, so that prediction never
   extrapolates further.

TF32 is chosen, not inherited: ``--tf32 off`` (the default, the CPU's arithmetic) or ``on`` for
the speed part; the JSON says which. Every figure is written to ``--out`` (JSON) after each
measurement, so a loan cut short still leaves a file. Asked for CUDA where there is none, it
exits with status 2 and says so. ``--device cpu`` dry-runs every part on the CPU (no memory
figures there).

Usage:
    python benchmarks/gpu_check.py [--device cuda] [--sizes 64,256,1024,4096] [--steps 50]
        [--seq 4] [--max-seconds 200] [--tf32 off] [--out gpu_check.json]
    python benchmarks/gpu_check.py --device cpu --sizes 8,4096 --steps 2     # the dry run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import proxies
from gp_search.core import environment
from gp_search.engine.screen import screen
from gp_search.lang import REFERENCE, parse
from gp_search.lang.losses import from_expr
from gp_search.proxies import models, train
from gp_search.proxies.population import choose as batched
from gp_search.proxies.population.conv import ConvPopulation
from gp_search.proxies.population.func import FuncPopulation, bytes_per_candidate
from gp_search.proxies.population.mlp import MlpPopulation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxies import DIGITS_RESNET, candidates  # noqa: E402

PROXIES = ("digits-mlp", "mnist1d-cnn", "digits-cnn", "digits-resnet")
MAX_JUMP = 8
"""The skip rule extrapolates from one size to at most this many times it (sizes are inserted)."""
DISTINCT = 512
"""Distinct candidates drawn (NGL + random trees; drawing is SymPy-bound, ~25 ms each); a larger
P repeats them (a loss's cost does not depend on its neighbours)."""
BAD = "exp(exp(exp(mul(y_pred, 40.0))))"
"""A loss whose value overflows at once: it must leave the stack without touching the others."""


def spec_of(name: str, **over):
    spec = DIGITS_RESNET if name == DIGITS_RESNET.name else proxies.get(name).spec
    return dataclasses.replace(spec, time_limit=1e9, **over)


def is_cuda(device: str) -> bool:
    return device.startswith("cuda")


def sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def set_tf32(on: bool) -> None:
    """TF32 on or off, through the switch every training applies (``GP_SEARCH_TF32``)."""
    os.environ[environment.TF32_ENV] = "1" if on else "0"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on


class Probe:
    """Times every population's ``scores()`` (device synchronised around it) and counts the
    chunks (one population built per chunk), by wrapping them for the life of the probe."""

    def __init__(self, device: str):
        self.device, self.scoring, self.chunks, self._saved = device, 0.0, 0, []

    def __enter__(self):
        for cls in (MlpPopulation, ConvPopulation, FuncPopulation):
            self._wrap(cls, "scores", self._timed)
            self._wrap(cls, "__init__", self._counted)
        return self

    def __exit__(self, *exc):
        for owner, name, fn in reversed(self._saved):
            setattr(owner, name, fn)

    def _wrap(self, owner, name: str, make) -> None:
        fn = getattr(owner, name)
        self._saved.append((owner, name, fn))
        setattr(owner, name, make(fn))

    def _timed(self, fn):
        def scores(pop):
            sync(self.device)
            t = time.perf_counter()
            out = fn(pop)
            sync(self.device)
            self.scoring += time.perf_counter() - t
            return out
        return scores

    def _counted(self, fn):
        def init(pop, *args, **kwargs):
            self.chunks += 1
            return fn(pop, *args, **kwargs)
        return init


def equality(device: str) -> tuple[bool, list[dict]]:
    """Population vs one at a time on ``device``, 3 steps, every kind; prints the worst gaps."""
    set_tf32(False)
    trees = [c for c in candidates(200, 5)[1:] if screen(c.expr).passed][:6]
    losses = [REFERENCE[r] for r in ("ngl", "ce", "focal", "ce_l2", "mse")] + trees + \
        [from_expr(parse(BAD))]
    ok, rows = True, []
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
        bad_left = got[-1].status != "ok"
        good = same and bad_left and worst <= 1e-5
        ok &= good
        rows.append(dict(proxy=name, optimizer=opt, losses=len(losses), statuses_equal=same,
                         nan_isolated=bad_left, max_rel_gap=worst, passed=good))
        print(f"  {name:<14} {opt:<5} {len(losses)} losses: statuses {'equal' if same else 'DIFFER'}"
              f", NaN loss {'left alone' if bad_left else 'NOT isolated'}, max relative "
              f"train_loss gap {worst:.2e} -> {'PASS' if good else 'FAIL'}", flush=True)
    return ok, rows


def timed_population(spec, pool, device: str, steps: int | None = None) -> dict:
    """One ``train_population`` call: wall, scoring and training seconds, chunks, results."""
    if is_cuda(device):
        torch.cuda.empty_cache()
    with Probe(device) as probe:
        sync(device)
        t = time.perf_counter()
        res = batched.train_population(spec, pool, 0, steps, device)
        sync(device)
        wall = time.perf_counter() - t
    return dict(wall=wall, scoring=probe.scoring, training=wall - probe.scoring,
                chunks=probe.chunks, results=res)


def predict(last: dict | None, n_last: int, n: int) -> float:
    """Seconds a size-``n`` measurement (warm-up + timed) should take, from the last size's:
    linear in P (training, and scoring: one pass per chunk, chunks in proportion to P)."""
    if last is None:
        return 0.0
    return (last["warmup"] + last["wall"]) * n / n_last


def with_bridges(sizes: list[int], factor: int = MAX_JUMP) -> list[int]:
    """``sizes`` with sizes inserted wherever one is more than ``factor`` times the last, so that
    the skip rule never extrapolates further than that."""
    out: list[int] = []
    for n in sizes:
        while out and n > out[-1] * factor:
            out.append(out[-1] * factor)
        out.append(n)
    return out


def speed(name: str, pool: list, sizes: list[int], steps: int, n_seq: int, share: float,
          device: str, record: dict, save) -> None:
    spec = spec_of(name, steps=steps, split="val")  # as a search scores: no calibration fits
    ds = train.dataset_for(spec, device)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                         **dict(spec.model_kw)).to(device)
    estimate = bytes_per_candidate(model, ds.x_train[:spec.batch_size], spec.optimizer)
    start = time.perf_counter()
    train.train_one(spec, pool[0], 0, 3, device)  # warm-up
    sync(device)
    t = time.perf_counter()
    for c in pool[:n_seq]:
        train.train_one(spec, c, 0, device=device)
    sync(device)
    seq = n_seq / (time.perf_counter() - t)
    rows = []
    record["proxies"][name] = dict(model=spec.model, steps=steps, batch_size=spec.batch_size,
                                   one_at_a_time_cand_per_s=seq, n_seq=n_seq,
                                   estimate_mib_per_candidate=estimate / 2 ** 20, sizes=rows)
    print(f"\n{name} ({spec.model}, {steps} steps, batch {spec.batch_size}): one at a time "
          f"{seq:.1f} cand/s (n = {n_seq}); estimated {estimate / 2 ** 20:.2f} MiB per candidate",
          flush=True)
    last, n_last = None, None
    for n in sizes:
        left = share - (time.perf_counter() - start)
        guess = predict(last, n_last, n)
        if guess * 1.3 > left:
            print(f"  P = {n:5d}: skipped (predicted {guess:.0f} s with its warm-up and scoring, "
                  f"{left:.0f} s left of this proxy's share)", flush=True)
            rows.append(dict(P=n, skipped=True, predicted_s=guess, left_s=left))
            save()
            break
        warm = timed_population(spec, pool[:n], device, steps=3)
        base = torch.cuda.memory_allocated(device) if is_cuda(device) else 0
        if is_cuda(device):
            torch.cuda.reset_peak_memory_stats(device)
        m = timed_population(spec, pool[:n], device)
        peak = ((torch.cuda.max_memory_allocated(device) - base) / math.ceil(n / m["chunks"])
                / 2 ** 20) if is_cuda(device) else None
        res = m.pop("results")
        acc = sorted(r.accuracy for r in res if r.ok)
        row = dict(P=n, skipped=False, warmup=warm["wall"], **m,
                   cand_per_s=n / m["wall"], ratio_to_one_at_a_time=n / m["wall"] / seq,
                   peak_mib_per_candidate=peak, ok=sum(r.ok for r in res),
                   median_metric=acc[len(acc) // 2] if acc else None, metric=spec.metric)
        rows.append(row)
        save()
        last, n_last = row, n
        print(f"  P = {n:5d}: {n / m['wall']:9.1f} cand/s = {row['ratio_to_one_at_a_time']:6.1f}x "
              f"one at a time; {m['wall']:6.2f} s = training {m['training']:.2f} + scoring "
              f"{m['scoring']:.2f}; {m['chunks']} chunk(s); peak "
              f"{'n/a' if peak is None else f'{peak:.2f} MiB'} per candidate; {row['ok']} ok, "
              f"median {spec.metric} {row['median_metric'] or math.nan:.3f}", flush=True)


def check_device(device: str) -> str | None:
    """Why ``device`` cannot run here, or None."""
    if device == "cpu":
        return None
    if not is_cuda(device):
        return f"--device must be cpu, cuda or cuda:N; got {device!r}"
    if not torch.cuda.is_available():
        return (f"no CUDA device here (torch {torch.__version__}, torch.cuda.is_available() is "
                f"False); run on a machine with a GPU and a CUDA build of torch, or dry-run with "
                f"--device cpu")
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (a dry run)")
    ap.add_argument("--sizes", default="64,256,1024,4096")
    ap.add_argument("--steps", type=int, default=50, help="steps per training in the speed part")
    ap.add_argument("--seq", type=int, default=4, help="candidates timed one at a time")
    ap.add_argument("--max-seconds", type=float, default=200.0,
                    help="time for the speed part, shared equally by the proxies")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--tf32", choices=("off", "on"), default="off",
                    help="TF32 matmuls and convolutions in the speed part (equality: always off)")
    ap.add_argument("--out", default="gpu_check.json", help="JSON file of every figure")
    args = ap.parse_args(argv)
    problem = check_device(args.device)
    if problem:
        print(f"gpu_check: {problem}", file=sys.stderr)
        return 2
    device, t0 = args.device, time.perf_counter()
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if is_cuda(device) else platform.processor() or \
        platform.machine()
    record = dict(device=device, device_name=name, torch=torch.__version__,
                  cuda=torch.version.cuda, tf32=args.tf32, steps=args.steps,
                  command=" ".join(["python", "benchmarks/gpu_check.py", *(argv or sys.argv[1:])]),
                  equality=None, proxies={})
    out = Path(args.out)

    def save():
        out.write_text(json.dumps(record, indent=2, default=str))

    print(f"gpu_check: {name} ({device}), torch {torch.__version__}"
          + (f", {torch.cuda.get_device_properties(device).total_memory / 2 ** 30:.0f} GiB"
             if is_cuda(device) else ""), flush=True)
    print("1. equality, population vs one at a time, 3 steps, TF32 off:", flush=True)
    ok, rows = equality(device)
    record["equality"] = dict(passed=ok, cases=rows, seconds=time.perf_counter() - t0)
    save()
    set_tf32(args.tf32 == "on")
    names = args.proxies.split(",")
    sizes = with_bridges([int(s) for s in args.sizes.split(",")])
    t = time.perf_counter()
    distinct = candidates(min(max(max(sizes), args.seq), DISTINCT), 0)  # once, for every proxy
    pool = [distinct[i % len(distinct)] for i in range(max(max(sizes), args.seq))]
    print(f"2. speed (TF32 {args.tf32}); sizes {sizes}; default stack budget "
          f"{batched.default_stack_mb(device):.0f} MiB; {len(distinct)} distinct candidates drawn "
          f"in {time.perf_counter() - t:.1f} s", flush=True)
    for proxy in names:
        speed(proxy, pool, sizes, args.steps, args.seq, args.max_seconds / len(names), device,
              record, save)
    record["seconds"] = time.perf_counter() - t0
    record["passed"] = ok
    save()
    print(f"\ngpu_check: {'PASS' if ok else 'FAIL'} in {record['seconds']:.0f} s; figures in "
          f"{out}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
