"""Search for a loss on your own data and model from Python: tensors and a torch model in, the run out.

    python examples/search_on_tensors.py [OUT_DIR]

Builds a 3-class task from tensors (three interleaved noisy spirals in 2-D), with a small
torch model of its own, runs a small search on it (8 candidates, 2 generations, 2 worker
processes), then retrains the best loss, CE and NGL on the task's test part with 5 seeds each
and prints the comparison (paired by seed). A few minutes on 2 CPU cores.

The model class sits at the top level of this file and the work under
``if __name__ == "__main__":``: the worker processes import this file by its path to build the
model, as multiprocessing's spawn does.
"""

import math
import sys

import torch
from torch import nn

import gp_search


class SpiralNet(nn.Module):
    """Your model: built as ``SpiralNet(input_shape, num_classes)`` (gp-search's contract)."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_shape[0], 64), nn.Tanh(),
                                 nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.net(x)


def spirals(n_per_class: int = 300, noise: float = 0.1, seed: int = 0):
    """``(x, y)`` tensors: three interleaved spirals in 2-D, one turn each, Gaussian noise."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for k in range(3):
        r = torch.linspace(0.2, 2.0, n_per_class)
        theta = r * math.pi + 2 * math.pi * k / 3
        pts = torch.stack([r * torch.cos(theta), r * torch.sin(theta)], 1)
        xs.append(pts + noise * torch.randn(pts.shape, generator=g))
        ys.append(torch.full((n_per_class,), k))
    return torch.cat(xs), torch.cat(ys)


def main(out: str) -> None:
    x, y = spirals()
    task = gp_search.Task(x_train=x, y_train=y, model=SpiralNet, name="spirals", steps=400,
                          batch_size=64, lr=3e-3)
    run = gp_search.search(dict(population=8, generations=2, seeds=1, jobs=2, out=out,
                                fitness_aggregate="mean", seed=0), tasks=[task], quiet=False)
    best = run.best
    print(f"\nbest loss: {best['canonical']} (fitness {best['fitness']:+.4f} vs CE on the "
          f"validation part, n = {best['n']} seed)")

    proxy, _ = task.proxy(workdir=run.path / "tasks")  # scored on the task's test part
    losses = ["ce", "ngl", best["infix"]]
    results = gp_search.evaluate(losses, proxy=proxy, seeds=5, jobs=2)
    ce = [r.accuracy for r in results[:5]]
    for i, name in enumerate(["CE", "NGL", "best"]):
        acc = [r.accuracy for r in results[5 * i:5 * i + 5]]
        diff = sum(a - c for a, c in zip(acc, ce)) / 5
        print(f"{name:>4}: test accuracy {sum(acc) / 5:.4f} (n = 5 seeds), vs CE {diff:+.4f}")
    print(f"run directory: {run.path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/runs")
