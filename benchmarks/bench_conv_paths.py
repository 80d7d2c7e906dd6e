"""Convolution proxies end to end through ``gp-search evaluate``: population against one at a time.

For each proxy, the same losses (NGL, CE and the other expression references, then random
``paper`` trees that pass the screen, fixed seed; ``--losses`` in all) and seeds train twice
through the CLI, ``gp-search evaluate --jobs 1 --device cpu``: ``--batched on`` (the population
path ``train_population`` takes: the convolution stack for ``cnn1d``/``cnn2d``, ``torch.func``
for the others) and ``--batched off`` (``train_one``, one at a time). Each run is a fresh process
timed end to end (start-up, data, training, scoring), as a user meets it; ``--repeat`` rounds
alternate the two (best kept).

Also printed, per path: achieved GFLOP/s and its share of this machine's fp32 matmul peak, both
measured in the same run: the peak is ``torch.mm`` 2048³ with one thread (best of 5 after 2
warm-ups); a training's FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
sequential training step of the proxy's model (forward and backward as ``train_one`` runs them)
times the steps, plus the held-out forward passes. And the accuracy gap (population − one at a
time) over every (loss, seed): mean with a 95 % t interval, and mean absolute gap.

``--extra unet,user,big`` adds the same measurement for ``seg-digits-unet`` and for a user's
model (a small CNN class written as a user would, not an ``nn.Sequential``, on the digits as an
``.npz`` task: ``--task … --model bench_user_cnn:Net``), which train through ``torch.func``, and
(``big``) for ``cnn2d`` at Fashion-MNIST's shape (the digits resized to 28x28, batch 128, as an
``.npz`` task), which takes the convolution stack; the extras train 100 steps unless ``--steps``.

Usage:
    python benchmarks/bench_conv_paths.py [--proxies mnist1d-cnn,digits-cnn] [--losses 16]
        [--seeds 2] [--steps N] [--repeat 1] [--extra unet,user] [--json FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dask import candidates  # noqa: E402

from gp_search import proxies  # noqa: E402
from gp_search.proxies import models, train  # noqa: E402

USER_CNN = '''
import torch
from torch import nn


class Net(nn.Module):
    """A user's small CNN on 8x8 one-channel images (flat samples of 64 values)."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        x = x.reshape(x.shape[0], 1, 8, 8)
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.relu(self.conv2(x)).mean((2, 3))
        return self.head(x)
'''


def peak_gflops() -> float:
    """One-thread fp32 ``torch.mm`` 2048³, best of 5 after 2 warm-ups (GFLOP/s)."""
    torch.set_num_threads(1)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(2):
        a @ b
    best = math.inf
    for _ in range(5):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 ** 3 / best / 1e9


def training_flops(spec, model: torch.nn.Module, ds, steps: int) -> float:
    """FLOPs of one training as ``train_one`` runs it: ``steps`` forward-backward passes on a
    batch, plus the forward passes over the held-out split."""
    from torch.utils.flop_counter import FlopCounterMode
    x = ds.x_train[:spec.batch_size]
    with FlopCounterMode(display=False) as count:
        model(x).sum().backward()
    step = count.get_total_flops()
    with FlopCounterMode(display=False) as count, torch.no_grad():
        model(ds.x_test[:spec.batch_size])
    per_sample = count.get_total_flops() / spec.batch_size
    return steps * step + per_sample * ds.n_test


def run_cli(args: list[str], env: dict) -> tuple[float, list[dict]]:
    """``gp-search evaluate`` with ``args`` in a fresh process: (wall seconds, results)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "gp_search", "evaluate", *args, "--json",
                               str(out)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - t
        if done.returncode:
            raise RuntimeError(f"gp-search evaluate failed ({done.returncode}):\n"
                               f"{done.stderr[-2000:]}")
        return wall, json.loads(out.read_text())["results"]


def gaps(pop: list[dict], seq: list[dict]) -> dict:
    """Accuracy of the population minus one at a time, per (loss, seed) both trained ok."""
    d = [a["accuracy"] - b["accuracy"] for a, b in zip(pop, seq)
         if a["status"] == b["status"] == "ok"]
    if len(d) < 2:
        return {"n": len(d)}
    lo, hi = stats.t.interval(0.95, len(d) - 1, loc=np.mean(d), scale=stats.sem(d)) \
        if np.std(d) > 0 else (np.mean(d), np.mean(d))
    return {"n": len(d), "mean": float(np.mean(d)), "ci": [float(lo), float(hi)],
            "mean_abs": float(np.mean(np.abs(d))),
            "status_agree": sum(a["status"] == b["status"] for a, b in zip(pop, seq)),
            "n_all": len(pop)}


def measure(name: str, cli: list[str], spec, model, ds, n_runs: int, args, env, peak) -> dict:
    steps = args.steps or spec.steps
    flops = training_flops(spec, model, ds, steps) * n_runs
    walls: dict[str, list[float]] = {"on": [], "off": []}
    results: dict[str, list] = {}
    for _ in range(args.repeat):
        for mode in ("on", "off"):
            wall, res = run_cli([*cli, "--batched", mode], env)
            walls[mode].append(wall)
            results[mode] = res
    on, off = min(walls["on"]), min(walls["off"])
    row = {"proxy": name, "trainings": n_runs, "steps": steps,
           "paths": sorted({r["path"] for r in results["on"]}),
           "pop_s": on, "seq_s": off, "speedup": off / on,
           "pop_gflops": flops / on / 1e9, "seq_gflops": flops / off / 1e9,
           "pop_peak_pct": 100 * flops / on / 1e9 / peak,
           "seq_peak_pct": 100 * flops / off / 1e9 / peak,
           "walls": walls, "accuracy_gap": gaps(results["on"], results["off"])}
    g = row["accuracy_gap"]
    print(f"{name:16s} {'/'.join(row['paths']):>10s} {n_runs:3d} x {steps:4d} steps  one at a "
          f"time {off:6.1f} s  population {on:6.1f} s  {row['speedup']:.2f}x  GFLOP/s "
          f"{row['seq_gflops']:.1f} ({row['seq_peak_pct']:.0f} %) -> {row['pop_gflops']:.1f} "
          f"({row['pop_peak_pct']:.0f} %)", flush=True)
    if "mean" in g:
        print(f"{'':16s} accuracy gap (pop - one) {100 * g['mean']:+.2f} pp "
              f"[{100 * g['ci'][0]:+.2f}, {100 * g['ci'][1]:+.2f}], mean |gap| "
              f"{100 * g['mean_abs']:.2f} pp, n = {g['n']}; statuses agree "
              f"{g['status_agree']}/{g['n_all']}", flush=True)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxies", default="mnist1d-cnn,digits-cnn")
    ap.add_argument("--losses", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=None, help="default: each proxy's budget")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--extra", default="", help="comma list of: unet, user, big")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    losses = candidates(args.losses, 0)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))}
    peak = peak_gflops()
    print(f"bench_conv_paths: {args.losses} losses x {args.seeds} seeds, 1 job, "
          f"{args.repeat} round(s); machine {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__}; one-thread fp32 mm peak "
          f"{peak:.1f} GFLOP/s; load average {os.getloadavg()[0]:.2f}", flush=True)
    common = ["--seeds", str(args.seeds), "--jobs", "1", "--device", "cpu"]
    common += [f"--loss={loss}" for loss in losses]
    if args.steps:
        common += ["--steps", str(args.steps)]
    rows = []
    names = [p for p in args.proxies.split(",") if p]
    names += ["seg-digits-unet"] if "unet" in args.extra else []
    for name in names:
        spec = proxies.get(name).spec
        ds = train.dataset_for(spec)
        model = models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                             **dict(spec.model_kw))
        cli = ["--proxy", name, *common]
        if spec.model == "unet" and not args.steps:  # an extra: 100 steps
            spec = dataclasses.replace(spec, steps=100)
            cli += ["--steps", "100"]
        rows.append(measure(name, cli, spec, model, ds, len(losses) * args.seeds, args, env,
                            peak))
    if "big" in args.extra:  # cnn2d at Fashion-MNIST's shape: the digits resized to 28x28
        with tempfile.TemporaryDirectory() as tmp:
            ds = train.dataset_for(proxies.get("digits-cnn").spec)
            big = {k: torch.nn.functional.interpolate(getattr(ds, k).reshape(-1, 1, 8, 8),
                                                      size=(28, 28), mode="bilinear").numpy()
                   for k in ("x_train", "x_test")}
            np.savez(Path(tmp) / "digits28.npz", **big, y_train=ds.y_train.numpy(),
                     y_test=ds.y_test.numpy())
            steps = args.steps or 100
            cli = ["--task", str(Path(tmp) / "digits28.npz"), "--model", "cnn2d",
                   "--batch-size", "128", *common] + ([] if args.steps else ["--steps", str(steps)])
            spec = proxies.get("fashion-mnist-cnn").spec
            model = models.build("cnn2d", (1, 28, 28), 10, 0)
            big_ds = dataclasses.replace(ds, x_train=torch.from_numpy(big["x_train"]),
                                         x_test=torch.from_numpy(big["x_test"]))
            rows.append(measure("digits28-cnn2d", cli, dataclasses.replace(spec, steps=steps),
                                model, big_ds, len(losses) * args.seeds, args, env, peak))
    if "user" in args.extra:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "bench_user_cnn.py").write_text(USER_CNN)
            ds = train.dataset_for(proxies.get("digits-cnn").spec)
            np.savez(Path(tmp) / "digits.npz", x_train=ds.x_train.numpy(),
                     y_train=ds.y_train.numpy(), x_test=ds.x_test.numpy(),
                     y_test=ds.y_test.numpy())
            user_env = {**env, "PYTHONPATH": tmp + os.pathsep + env["PYTHONPATH"]}
            sys.path.insert(0, tmp)
            from bench_user_cnn import Net
            spec = proxies.get("digits-cnn").spec
            steps = args.steps or 100
            cli = ["--task", str(Path(tmp) / "digits.npz"), "--model", "bench_user_cnn:Net",
                   "--lr", "2e-3", *common] + ([] if args.steps else ["--steps", str(steps)])
            model = Net(ds.input_shape, ds.num_classes)
            rows.append(measure("user-cnn", cli, dataclasses.replace(spec, steps=steps), model,
                                ds, len(losses) * args.seeds, args, user_env, peak))
    if args.json:
        Path(args.json).write_text(json.dumps({"peak_gflops": peak, "argv": sys.argv[1:],
                                               "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
