"""Your own training recipe as the search's fitness: a CNN on 8x8 digits, written as a user would.

The recipe (:func:`objective`): a small CNN, SGD with Nesterov momentum and weight decay, a
one-cycle learning-rate schedule (warm-up, then cosine decay), augmentation (random shifts of
up to one pixel and pixel noise), mini-batches, and the score on a validation split that the
training never sees. scikit-learn's embedded digits; nothing is downloaded. The loss to try is
the only thing the search changes.

Search with it (``budget`` is the fraction of the 8 epochs to run, so successive halving and
racing work; the fitness is accuracy minus CE's, CE trained by this same recipe and seeds)::

    gp-search run --objective examples/objective_recipe.py:objective --objective-version 1 \\
        --population 16 --generations 6 --jobs 2 --transfer-suite none --time-budget 0

then measure the best against CE and NGL on the test split, which the search never saw
(paired by seed)::

    python examples/objective_recipe.py compare RUN_DIR [SEEDS]

or from Python: ``gp_search.search(dict(...), objective=objective)``. The work sits under
``if __name__ == "__main__":`` because every worker process imports this file by its path to
call :func:`objective`, as multiprocessing's spawn does.
"""

import sys

import numpy as np
import torch
from torch import nn

EPOCHS = 8
BATCH = 64
_DATA: dict = {}


def splits() -> dict:
    """Digits as tensors, loaded once per process: train 1077 / validation 360 / test 360
    (stratified, fixed). The search scores on validation; only ``compare`` looks at test."""
    if not _DATA:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
        y = torch.tensor(y)
        idx = np.arange(len(y))
        rest, test = train_test_split(idx, test_size=360, stratify=y, random_state=0)
        train, val = train_test_split(rest, test_size=360, stratify=y[rest], random_state=0)
        _DATA.update({name: (x[i], y[i]) for name, i in
                      (("train", train), ("val", val), ("test", test))})
    return _DATA


def net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * 16, 10))


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Shift each image by up to one pixel (zero-padded) and add a little noise."""
    padded = nn.functional.pad(x, (1, 1, 1, 1))
    dx, dy = torch.randint(0, 3, (2,), generator=g).tolist()
    return padded[:, :, dy:dy + 8, dx:dx + 8] + 0.05 * torch.randn(x.shape, generator=g)


def train(loss, seed: int, epochs: int) -> nn.Module:
    """The recipe: the model trained with ``loss`` for ``epochs`` (``seed``: weights, order,
    augmentation)."""
    x, y = splits()["train"]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = net()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                          weight_decay=5e-4)
    per_epoch = -(-len(y) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=epochs * per_epoch)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g)
        for start in range(0, len(y), BATCH):
            i = order[start:start + BATCH]
            opt.zero_grad()
            loss(model(augment(x[i], g)), y[i]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
    return model


def accuracy(model: nn.Module, split: str) -> float:
    x, y = splits()[split]
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def objective(loss, seed: int, budget: float = 1.0) -> float:
    """The search's fitness: validation accuracy after ``budget`` of the recipe's epochs."""
    return accuracy(train(loss, seed, max(1, round(EPOCHS * budget))), "val")


def compare(run_dir: str, seeds: int = 5) -> None:
    """The run's best loss against CE and NGL on the test split, ``seeds`` seeds, paired."""
    import gp_search
    from gp_search.analysis.stats import paired, summarize

    best = gp_search.load_run(run_dir).best
    names = {"CE": "ce", "NGL": "ngl", "best": best["infix"]}
    torch.set_num_threads(1)
    acc = {k: [accuracy(train(gp_search.resolve(text), 1000 + s, EPOCHS), "test")
               for s in range(seeds)] for k, text in names.items()}
    print(f"best loss of {run_dir}: {best['canonical']} (search fitness {best['fitness']:+.4f} "
          f"vs CE on validation, n = {best['n']} seeds)")
    for k in names:
        s = summarize(acc[k])
        line = f"{k:>4}: test accuracy {s['mean']:.4f} ± {s['std']:.4f} (n = {s['n']} seeds)"
        if k != "CE":
            d = paired(acc[k], acc["CE"])
            line += (f", vs CE {d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] "
                     f"(paired 95 % CI, p = {d['p_value']:.2f})")
        print(line)


if __name__ == "__main__":
    if sys.argv[1:2] == ["compare"]:
        compare(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
    else:
        import gp_search

        run = gp_search.search(dict(population=8, generations=2, seeds=1, jobs=2,
                                    fitness_aggregate="softmin", seed=0,
                                    out=sys.argv[1] if len(sys.argv) > 1 else "results/runs"),
                               objective=objective, objective_version="1", quiet=False)
        compare(str(run.path), 3)
