"""The ways to score candidate losses on an MLP proxy, measured side by side in one run.

Paths, on the same proxy, seed and candidates (NGL + random ``paper`` trees that depend on
``y_pred``, drawn from a fixed seed):

(a) a research-script loop: ``DataLoader(TensorDataset(...), batch_size, shuffle=True)`` with
    per-sample indexing, an ``nn.Module``, ``torch.optim.Adam``, the loss from
    ``expr.to_torch()`` — one candidate at a time;
(b) the project's sequential path, ``gp_search.proxies.train.train_one``, one candidate at a time;
(c) the population-batched path, ``gp_search.proxies.population.choose.train_population``,
    all candidates at once;
(d) the joblib path, ``gp_search.evaluate(jobs=2, batched=False)`` (loky workers, one torch
    thread each; workers started and warmed before timing);
(e) not a project path yet, a measured proposal: the batched path in 2 loky workers, one torch
    thread each, each training half of the population (batched results do not depend on how the
    population is split: ``tests/proxies/population/test_batched.py::test_chunks_give_the_same_results``);
(f) the library way to train a population, beside (c): ``torch.func.stack_module_state`` of P
    copies of the proxy's model, ``torch.func.vmap(torch.func.functional_call)`` for the forward
    pass, autograd for the backward pass and ``torch.optim.Adam(fused=True)`` over the stacked
    parameters; the loss and its logit gradient come from the same ``LossProgram`` as (c), so
    (f) against (c) compares the model and the optimiser step, nothing else. Same initial weights,
    batches, steps and thread counts as (c); the largest accuracy difference between them is
    printed (rounding only: the same training written two ways).

Prints candidates/s, the ratio to (a), and achieved GFLOP/s against this machine's fp32 matmul
peak measured in the same run (``torch.mm`` 2048³, best of 10 after 2 warm-ups, per thread
count; the higher one is "peak"). FLOPs are counted analytically as model FLOPs: per candidate
``steps·6·B·Σ(in·out) + 2·n_test·Σ(in·out)`` (forward 2, backward 4 per multiply-add, as in the
usual model-FLOPs-utilisation convention). The batched path skips the first layer's input
gradient, which nothing needs, so it executes fewer FLOPs than counted; the executed figure is
printed as well. Every path is warmed up (a short run) before it is timed. (a) and (b) are slow,
so they time an evenly spaced subset of the candidates and report candidates/s over that subset
(the count is in the n column). No asserts: figures only.

Usage:
    python benchmarks/bench_mlp_paths.py [--proxy digits-mlp] [--candidates 128] [--n-loop 8]
        [--n-seq 32] [--threads 1,2] [--base-threads 1] [--repeat 2] [--no-joblib]
        [--paths a,b,c,d,e,f]

    python benchmarks/bench_mlp_paths.py --paths c,f --threads 1 --candidates 32 --repeat 2
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import proxies
from gp_search.proxies import models, train
from gp_search.proxies.population import choose as batched
from gp_search.proxies.population import mlp as batched_mlp
from gp_search.proxies.population.programs import LossProgram

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxies import candidates  # noqa: E402


def matmul_peak(threads: int, size: int = 2048, reps: int = 10) -> float:
    """Best fp32 GFLOP/s of ``torch.mm`` on ``size``³ with ``threads`` threads (2 warm-ups)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(2):
        torch.mm(a, b)
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best / 1e9


def research_loop(spec, loss, seed: int, steps: int) -> float:
    """Path (a): how a research script trains one candidate. Returns test accuracy."""
    ds = train.dataset_for(spec)
    torch.manual_seed(seed)
    hidden = dict(spec.model_kw).get("hidden", (128,))
    widths = [math.prod(ds.input_shape), *hidden]
    layers = [torch.nn.Flatten()]
    for w_in, w_out in itertools.pairwise(widths):
        layers += [torch.nn.Linear(w_in, w_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], ds.num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(ds.x_train, ds.y_train),
                                         batch_size=spec.batch_size, shuffle=True)
    loss_fn = loss.expr.to_torch()
    step = 0
    while step < steps:
        for xb, yb in loader:
            value = loss_fn(model(xb), yb)
            opt.zero_grad()
            value.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    with torch.no_grad():
        return (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()


def library_population(spec, losses: list, seed: int, steps: int | None = None) -> torch.Tensor:
    """Path (f): one model per candidate stacked by ``torch.func``, trained by autograd and
    ``torch.optim.Adam`` on the stacked tensors. Returns the test accuracies ``(P,)``."""
    budget = spec.steps if steps is None else steps
    ds = train.dataset_for(spec)
    model = models.build(spec.model, ds.input_shape, ds.num_classes, seed, **dict(spec.model_kw))
    params, buffers = torch.func.stack_module_state([model] * len(losses))  # fresh leaf tensors
    skeleton = copy.deepcopy(model).to("meta")
    forward = torch.func.vmap(
        lambda p, b, x: torch.func.functional_call(skeleton, (p, b), (x,)), in_dims=(0, 0, None))
    opt = torch.optim.Adam(list(params.values()), lr=spec.lr, fused=True)
    program = LossProgram([c.expr for c in losses])
    batches = train.batch_indices(ds.n_train, spec.batch_size, budget, seed)
    for step in range(budget):
        idx = batches[step]
        logits = forward(params, buffers, ds.x_train[idx])  # (P, B, C)
        with torch.no_grad():  # the loss as (c) computes it: classes first, (P, C, B)
            p = torch.softmax(logits.detach().transpose(1, 2), dim=1)
            t = torch.nn.functional.one_hot(ds.y_train[idx], ds.num_classes).t().float()
            program.losses(p, t)
            dlogits = torch._softmax_backward_data(program.backward(), p, 1, p.dtype)
        opt.zero_grad(set_to_none=True)
        logits.backward(dlogits.transpose(1, 2))
        opt.step()
    with torch.no_grad():
        return (forward(params, buffers, ds.x_test).argmax(2) == ds.y_test).double().mean(1)


def batched_half(proxy: dict, texts: list[str], seed: int) -> list:
    """Path (e), in a worker: one torch thread, the batched path on part of the population."""
    from gp_search.lang.losses import resolve
    torch.set_num_threads(1)
    return batched.train_population(proxies.from_dict(proxy).spec, [resolve(t) for t in texts],
                                    seed)


def timed(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls of ``fn``."""
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", default="digits-mlp")
    ap.add_argument("--candidates", type=int, default=128)
    ap.add_argument("--n-loop", type=int, default=8, help="candidates timed on path (a)")
    ap.add_argument("--n-seq", type=int, default=32, help="candidates timed on path (b)")
    ap.add_argument("--threads", default="1,2", help="torch thread counts tried on (c)")
    ap.add_argument("--base-threads", type=int, default=1,
                    help="torch threads of (a) and (b): 1, their faster setting here (tiny "
                         "per-step ops gain nothing from a second thread; on the shared 2-core "
                         "machine two threads made them 10-50x slower)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="rounds over all paths (the best round of each path is kept)")
    ap.add_argument("--seed", type=int, default=0, help="training seed (and candidate draw)")
    ap.add_argument("--no-joblib", action="store_true", help="skip paths (d) and (e)")
    ap.add_argument("--paths", default="a,b,c,d,e,f",
                    help="paths to run (letters); ratios are to (a) when it runs, else to (c)")
    args = ap.parse_args(argv)
    chosen = set(args.paths.split(","))
    if not chosen <= set("abcdef") or not chosen & {"a", "c"}:
        sys.exit(f"--paths takes letters of a,b,c,d,e,f including a or c (the ratio base); "
                 f"got {args.paths!r}")
    args.no_joblib = args.no_joblib or not chosen & {"d", "e"}

    spec = proxies.get(args.proxy).spec
    if spec.model != "mlp":
        sys.exit(f"{args.proxy} has model {spec.model!r}; this benchmark compares the MLP "
                 f"paths: pick an MLP proxy (benchmarks/bench_proxies.py covers every kind)")
    ds = train.dataset_for(spec)
    shapes = batched_mlp.layer_shapes(spec, ds)
    macs = sum(i * o for i, o in shapes)
    first_in, first_out = shapes[0]
    flops = spec.steps * 6 * spec.batch_size * macs + 2 * ds.n_test * macs
    executed = flops - spec.steps * 2 * spec.batch_size * first_in * first_out
    threads = [int(t) for t in args.threads.split(",")]
    losses = candidates(args.candidates, args.seed)
    subset = lambda n: losses[::max(1, len(losses) // n)][:n]

    print(f"bench_mlp_paths: {spec.name}, {len(losses)} candidates (NGL + random 'paper' trees "
          f"that depend on y_pred, seed {args.seed}), {spec.steps} steps, batch "
          f"{spec.batch_size}, layers {shapes}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}; load average at start {os.getloadavg()[0]:.2f}")
    print(f"model FLOPs per candidate: {flops / 1e9:.3f} GFLOP "
          f"(steps*6*B*{macs} + 2*n_test*{macs}); executed by (c): {executed / 1e9:.3f}")

    # Every path: (label, threads, n, run, warm-up). Rounds visit the paths in turn, so that a
    # change in the machine's load hits all of them alike; the best round of each is kept.
    paths = []
    out, lib = [], []
    sub_a, sub_b, tb = subset(args.n_loop), subset(args.n_seq), args.base_threads
    paths += [
        ("(a) DataLoader loop", tb, len(sub_a),
         lambda: [research_loop(spec, c, args.seed, spec.steps) for c in sub_a],
         lambda: research_loop(spec, sub_a[0], args.seed, 20)),
        ("(b) train.train_one", tb, len(sub_b),
         lambda: [train.train_one(spec, c, args.seed) for c in sub_b],
         lambda: train.train_one(spec, sub_b[0], args.seed, 20)),
    ]
    for t in threads:
        paths.append(("(c) batched.train_population", t, len(losses),
                      lambda: out.append(batched.train_population(spec, losses, args.seed)),
                      lambda: batched.train_population(spec, losses[:8], args.seed, 20)))
        paths.append(("(f) torch.func vmap + Adam", t, len(losses),
                      lambda: lib.append(library_population(spec, losses, args.seed)),
                      lambda: library_population(spec, losses[:8], args.seed, 20)))
    if not args.no_joblib:
        from gp_search.parallel.evaluate import evaluate
        from joblib import Parallel, delayed
        texts = [c.spec for c in losses]
        kw = {"proxy": spec.name, "seeds": [args.seed], "jobs": 2, "device": "cpu",
              "batched": False}
        wire = proxies.get(spec.name).to_dict()
        halves = [texts[0::2], texts[1::2]]
        par = Parallel(n_jobs=2, backend="loky")
        paths += [
            ("(d) evaluate jobs=2 (loky)", "1/worker", len(texts),
             lambda: evaluate(texts, **kw), lambda: evaluate(texts[:4], steps=20, **kw)),
            ("(e) batched, 2 loky workers", "1/worker", len(texts),
             lambda: par(delayed(batched_half)(wire, h, args.seed) for h in halves),
             lambda: par(delayed(batched_half)(wire, h[:4], args.seed) for h in halves)),
        ]
    paths = [p for p in paths if p[0][1] in chosen]
    for _, t, _, _, warm in paths:  # warm-up (and worker start-up) excluded from timings
        torch.set_num_threads(t if isinstance(t, int) else 1)
        warm()
    peaks = {t: 0.0 for t in sorted({*threads, args.base_threads})}
    best = {i: math.inf for i in range(len(paths))}
    times: dict[int, list[float]] = {i: [] for i in range(len(paths))}
    for r in range(args.repeat):
        for t, g in peaks.items():
            peaks[t] = max(g, matmul_peak(t))
        for i, (label, t, n, run, _) in enumerate(paths):
            torch.set_num_threads(t if isinstance(t, int) else 1)
            seconds = timed(run, 1)
            best[i] = min(best[i], seconds)
            times[i].append(seconds)
            print(f"  round {r + 1}: {label:<30} threads {t}: {n} in {seconds:.2f} s "
                  f"(load {os.getloadavg()[0]:.1f})", flush=True)
    peak = max(peaks.values())
    print("fp32 matmul peak (torch.mm 2048^3, best of 10 per round): " +
          ", ".join(f"{t} thread{'s' * (t > 1)} {g:.0f} GFLOP/s" for t, g in peaks.items()) +
          f" -> peak {peak:.0f} GFLOP/s")
    if out:
        statuses = {}
        for r in out[-1]:
            statuses[r.status] = statuses.get(r.status, 0) + 1
        print(f"statuses of the {len(losses)} candidates (batched): {statuses}")
    if out and lib:
        acc_c = torch.tensor([r.accuracy for r in out[-1]], dtype=torch.float64)
        diff = (acc_c - lib[-1]).abs().nan_to_num(0.0).max().item()
        print(f"(f) vs (c): largest test-accuracy difference over the {len(losses)} candidates "
              f"{diff:.4f} (rounding; candidates (c) re-ran alone after a non-finite step aside)")
    rows = [(label, t, n, best[i]) for i, (label, t, n, _, _) in enumerate(paths)]
    if chosen & {"a", "b"}:
        print(f"(a) and (b) are timed on {args.n_loop} and {args.n_seq} evenly spaced candidates "
              f"of the {len(losses)}; their cand/s is n / seconds over that subset (a full run "
              f"would take {len(losses)} / cand/s)")

    key = "(a)" if "a" in chosen else "(c)"
    base = max(n / s for label, _, n, s in rows if label.startswith(key))
    print(f"\nload average at end {os.getloadavg()[0]:.2f}; ratios against the best {key} "
          f"({base:.2f} cand/s); GFLOP/s = model FLOPs / time; % of the {peak:.0f} GFLOP/s peak")
    print(f"{'path':<31}{'threads':>9}{'n':>6}{'seconds':>9}{'cand/s':>9}{'x ' + key:>8}"
          f"{'GFLOP/s':>9}{'% peak':>8}")
    for label, t, n, s in rows:
        rate = n / s
        gf = rate * flops / 1e9
        print(f"{label:<31}{t!s:>9}{n:>6}{s:>9.2f}{rate:>9.2f}{rate / base:>8.1f}{gf:>9.1f}"
              f"{100 * gf / peak:>8.1f}")
    if "c" in chosen:
        best_c = max((n / s, str(t)) for label, t, n, s in rows if label.startswith("(c)"))
        print(f"(c) best: {best_c[0]:.1f} cand/s with {best_c[1]} thread(s) = "
              f"{best_c[0] / base:.1f}x {key}: model {best_c[0] * flops / 1e9:.1f} GFLOP/s = "
              f"{100 * best_c[0] * flops / 1e9 / peak:.1f} % of peak; executed "
              f"{best_c[0] * executed / 1e9:.1f} GFLOP/s = "
              f"{100 * best_c[0] * executed / 1e9 / peak:.1f} %")
    top = max(rows, key=lambda row: row[2] / row[3])
    print(f"fastest path: {top[0]} ({top[1]} thread(s)): {top[2] / top[3]:.1f} cand/s = "
          f"{top[2] / top[3] / base:.1f}x {key}")
    # Best-of ratios favour whichever path met a quiet moment; ratios within one round do not.
    a = next(i for i, p in enumerate(paths) if p[0].startswith(key))
    print(f"ratio to {key} within each round (n = {args.repeat} rounds): median [min, max]")
    for i, (label, t, n, _, _) in enumerate(paths):
        if i == a:
            continue
        r = sorted((n / ti) / (paths[a][2] / ta) for ti, ta in zip(times[i], times[a]))
        print(f"  {label:<30} threads {t!s:<9} {statistics.median(r):6.2f}x "
              f"[{r[0]:.2f}, {r[-1]:.2f}]")
    if {"c", "f"} <= chosen:  # the library path against the hand-written one, same threads
        print(f"(c) / (f) within each round, same thread count (n = {args.repeat} rounds): "
              f"median [min, max]")
        for t in threads:
            ic, jf = (next(i for i, p in enumerate(paths) if p[0].startswith(k) and p[1] == t)
                      for k in ("(c)", "(f)"))
            r = sorted(tf / tc for tc, tf in zip(times[ic], times[jf]))
            print(f"  threads {t}: (c) is {statistics.median(r):.2f}x (f) "
                  f"[{r[0]:.2f}, {r[-1]:.2f}]")

if __name__ == "__main__":
    main()
