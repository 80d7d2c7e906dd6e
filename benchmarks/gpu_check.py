"""GPU check of the population-batched path: equality with the sequential path on CUDA, then speed.

1. Equality: on ``digits-mlp`` with 5 steps, a population of reference losses and random trees
   is trained by ``gp_search.proxies.batched.train_population`` and, one by one, by the sequential loop;
   parameters must agree to 1e-5 and ``train_loss`` to 1e-5 (relative) with ``train_one``.
2. Speed: candidates/s of the batched path at P = 64, 256, 1024 (warm-up excluded, CUDA
   synchronised around the timed run) on ``digits-mlp`` and on MNIST-1D — with an MLP
   (40-128-10, the ``mnist1d-cnn`` budget: Adam 3e-3, batch 128, 500 steps), because the
   batched path supports MLPs only; ``mnist1d-cnn`` itself is trained sequentially. The
   sequential ``train_one`` rate on a few candidates is printed for comparison, and the batched
   rate with ``bf16=True`` at the largest P.

Runs in a few minutes on one GPU. Without a CUDA device it prints a message and exits with 0.
Exit status 1 when the equality check fails.

Usage:
    python benchmarks/gpu_check.py [--sizes 64,256,1024] [--seq 4]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import proxies
from gp_search.lang.losses import REFERENCE
from gp_search.search.screen import screen
from gp_search.proxies import batched, models, train
from gp_search.proxies.base import ProxySpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_proxies import candidates


def sync() -> None:
    torch.cuda.synchronize()


def equality(device: str) -> bool:
    """Batched vs sequential on ``device`` after 5 steps; prints the worst differences."""
    spec = proxies.get("digits-mlp", steps=5).spec
    # Random trees that pass screening: a loss with no real gradient (e.g. c * y_pred, constant
    # under softmax) trains on rounding noise, which Adam amplifies in any two implementations.
    trees = [c for c in candidates(200, 5)[1:] if screen(c.expr).passed][:8]
    losses = [REFERENCE[r] for r in ("ngl", "ce", "focal", "ce_l2", "mse")] + trees
    pop = batched._Population(spec, losses, 0, 5, torch.device(device), False)
    for s in range(5):
        pop.step(s)
    ds = train.dataset_for(spec, device)
    worst_p = worst_l = 0.0
    for k, loss in enumerate(losses):
        model = models.build(spec.model, ds.input_shape, ds.num_classes, 0,
                             **dict(spec.model_kw)).to(device)
        params = list(model.parameters())
        weights = [w for w in params if w.dim() > 1]
        opt = torch.optim.Adam(params, lr=spec.lr)
        b = train.batch_indices(ds.n_train, spec.batch_size, 5, 0).to(device)
        for s in range(5):
            v = loss.fn(model(ds.x_train[b[s]]), ds.y_train[b[s]])
            if loss.l2 > 0:
                v = v + loss.l2 / 2 * sum(w.square().sum() for w in weights)
            opt.zero_grad()
            v.backward()
            opt.step()
        worst_p = max(worst_p, max(float((a - r.detach()).abs().max()) for a, r in
                                   zip(pop.parameters(k), params)))
    got = batched.train_population(spec, losses, 0, device=device)
    for loss, r in zip(losses, got):
        ref = train.train_one(spec, loss, 0, device=device)
        if r.status != ref.status:
            print(f"  status differs for {loss.name}: batched {r.status}, sequential {ref.status}")
            return False
        if r.ok:
            worst_l = max(worst_l, abs(r.train_loss - ref.train_loss) / max(1e-6, abs(ref.train_loss)))
    ok = worst_p <= 1e-5 and worst_l <= 1e-5
    print(f"equality on {device} (digits-mlp, 5 steps, {len(losses)} losses): max |param diff| "
          f"{worst_p:.2e}, max relative train_loss diff {worst_l:.2e} -> {'PASS' if ok else 'FAIL'}")
    return ok


def speed(spec: ProxySpec, label: str, sizes: list[int], n_seq: int, device: str) -> None:
    pool = candidates(max(sizes), 0)
    print(f"\n{label}: {spec.steps} steps, batch {spec.batch_size}, lr {spec.lr:g}")
    train.train_one(spec, pool[0], 0, 10, device)
    sync()
    t = time.perf_counter()
    for c in pool[:n_seq]:
        train.train_one(spec, c, 0, device=device)
    sync()
    print(f"  sequential train_one: {n_seq / (time.perf_counter() - t):8.1f} cand/s (n = {n_seq})")
    for n in sizes:
        for bf16 in (False, True) if n == max(sizes) else (False,):
            batched.train_population(spec, pool[:n], 0, 20, device, bf16=bf16)  # warm-up
            sync()
            t = time.perf_counter()
            res = batched.train_population(spec, pool[:n], 0, None, device, bf16=bf16)
            sync()
            dt = time.perf_counter() - t
            ok = sum(r.ok for r in res)
            acc = sorted(r.accuracy for r in res if r.ok)
            print(f"  batched P = {n:5d}{' bf16' if bf16 else '     '}: {n / dt:8.1f} cand/s "
                  f"({dt:.2f} s; {ok} ok; median accuracy {acc[len(acc) // 2] if acc else float('nan'):.3f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="64,256,1024")
    ap.add_argument("--seq", type=int, default=4, help="candidates timed on the sequential path")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); nothing to "
              "check. Run this on a machine with a GPU and a CUDA build of torch.")
        return 0
    device = "cuda"
    print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"TF32 matmul {'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}")
    ok = equality(device)
    sizes = [int(s) for s in args.sizes.split(",")]
    speed(proxies.get("digits-mlp").spec, "digits-mlp (MLP 64-128-10)", sizes, args.seq, device)
    cnn = proxies.get("mnist1d-cnn").spec
    mlp = ProxySpec("mnist1d-mlp", "mnist1d", "mlp", (("hidden", (128,)),), steps=cnn.steps,
                    batch_size=cnn.batch_size, lr=cnn.lr)
    speed(mlp, "mnist1d with an MLP 40-128-10 (the batched path has no convs; mnist1d-cnn's "
          "budget)", sizes, args.seq, device)
    train.train_one(cnn, REFERENCE["ce"], 0, 10, device)  # warm-up (cuDNN picks its kernels)
    sync()
    t = time.perf_counter()
    for c in candidates(args.seq, 0):
        train.train_one(cnn, c, 0, device=device)
    sync()
    print(f"\nmnist1d-cnn, sequential train_one only: {args.seq / (time.perf_counter() - t):.1f} "
          f"cand/s (n = {args.seq})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
