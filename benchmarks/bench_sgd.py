"""Losses under SGD: the lr sweep for CE, and CE / NGL / two found losses with and without scale.

Under Adam a loss's scale is invisible; under SGD (momentum 0.9) it multiplies the learning rate.
``gp_search.lang.losses.loss_scale`` gives a found loss CE's logit-gradient norm on a fixed probe,
and SGD trainings (``ProxySpec.optimizer == "sgd"``) train ``s·f``. This script measures, on a
proxy with ``optimizer="sgd"`` (test split, the proxy's own budget and batch size):

* ``--sweep``: CE's test accuracy for each lr of ``--lrs`` (how ``train.SGD_LR`` was chosen);
* otherwise: CE, NGL (at s = 1 and at its computed s), the two found losses of issue 15 scaled (as SGD trains them) and unscaled
  (s = 1, the loss as found), at lr ``--lr``, each minus CE with a paired 95 % CI over the seeds.

    python benchmarks/bench_sgd.py --proxy digits-mlp --sweep --seeds 2
    python benchmarks/bench_sgd.py --proxy mnist1d-cnn --seeds 5
"""

import argparse
import dataclasses

from gp_search import parse, proxies
from gp_search.analysis.stats import paired
from gp_search.lang.losses import REFERENCE, Loss, from_expr, grad_scale, loss_scale
from gp_search.proxies.train import SGD_LR, one_thread, train_one

FOUND = {"quick": "0.326933*exp(y_pred*y_real + exp(y_pred) - sin(y_real))",
         "paper": "-sin(cos(y_real) + 0.118524 - 6.09702*exp(-y_pred))"}


def _unscaled(loss: Loss) -> Loss:
    """The same function without its expression, so that its scale is 1 (as found)."""
    return dataclasses.replace(loss, name=loss.name + " (s = 1)", expr=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", default="digits-mlp")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--lr", type=float, default=SGD_LR)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--lrs", default="0.01,0.03,0.1,0.3")
    args = ap.parse_args()
    seeds = range(args.seeds)
    if args.sweep:
        for lr in (float(v) for v in args.lrs.split(",")):
            spec = proxies.get(args.proxy, optimizer="sgd", lr=lr).spec
            with one_thread():
                accs = [train_one(spec, REFERENCE["ce"], s).accuracy for s in seeds]
            print(f"{args.proxy} sgd lr {lr:g}: CE " + " ".join(f"{a:.4f}" for a in accs)
                  + f"  mean {sum(accs) / len(accs):.4f} (n = {len(accs)})", flush=True)
        return
    spec = proxies.get(args.proxy, optimizer="sgd", lr=args.lr).spec
    rows = {"ce": REFERENCE["ce"], "ngl": REFERENCE["ngl"]}
    ngl, s_ngl = REFERENCE["ngl"], grad_scale(REFERENCE["ngl"].fn)  # not applied by the rule
    rows[f"ngl, s = {s_ngl:.4g}"] = Loss("ngl scaled", lambda z, t: ngl.fn(z, t) * s_ngl, "s*ngl")
    for name, text in FOUND.items():
        found = from_expr(parse(text))
        rows[f"{name}, s = {loss_scale(found):.4g}"] = found
        rows[f"{name}, s = 1"] = _unscaled(found)
    accs = {}
    for name, loss in rows.items():
        with one_thread():
            results = [train_one(spec, loss, s) for s in seeds]
        accs[name] = [r.accuracy for r in results]
        bad = [f"{r.seed}:{r.status}" for r in results if not r.ok]
        print(f"  {name}: " + " ".join(f"{a:.4f}" for a in accs[name]) + (f" {bad}" if bad else ""),
              flush=True)
    print(f"\n{args.proxy}, SGD momentum 0.9, lr {args.lr:g}, test accuracy, n = {args.seeds} seeds")
    print("| loss | accuracy (mean) | − CE [95 % CI] |\n|---|---|---|")
    for name, a in accs.items():
        r = paired(a, accs["ce"])
        mean = sum(a) / len(a)
        ci = "—" if name == "ce" else f"{r['diff']:+.4f} [{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]"
        print(f"| {name} | {mean:.4f} | {ci} |")


if __name__ == "__main__":
    main()
