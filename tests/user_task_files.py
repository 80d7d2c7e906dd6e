"""Small task files of every kind the user-task tests need, generated (no downloads).

Each writer makes a learnable 3-class problem: Gaussian clusters for the .npz and the CSV,
class-dependent stripes for the image folder, and a factory module whose ``make()`` returns
arrays and a torch model builder.
"""

import csv
import textwrap
from pathlib import Path

import numpy as np

CLASSES = ("cat", "dog", "eel")


def clusters(n_per_class: int = 30, dim: int = 5, seed: int = 0):
    """``(x, y)``: 3 Gaussian clusters in ``dim`` dimensions, shuffled."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(3, dim))
    x = np.concatenate([c + rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat(np.arange(3), n_per_class)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def write_npz(path: Path, **arrays) -> Path:
    """An .npz of clusters (or of the ``arrays`` given)."""
    if not arrays:
        x, y = clusters()
        arrays = {"x_train": x, "y_train": y}
    np.savez(path, **arrays)
    return path


def write_csv(path: Path, rows: list | None = None, delimiter: str = ",") -> Path:
    """A CSV with features f0..f4 and a string 'species' label column (in the middle)."""
    if rows is None:
        x, y = clusters(seed=1)
        rows = [["f0", "f1", "species", "f2", "f3", "f4"]]
        rows += [[*map(repr, map(float, r[:2])), CLASSES[k], *map(repr, map(float, r[2:]))]
                 for r, k in zip(x, y)]
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def write_images(root: Path, per_class: int = 12, size: int = 10, seed: int = 0) -> Path:
    """``root/<class>/<i>.png``: RGB images whose stripe direction and colour give the class."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            a = rng.uniform(0, 80, size=(size, size, 3))
            if k == 0:
                a[::2, :, 0] += 150
            elif k == 1:
                a[:, ::2, 1] += 150
            else:
                a[: size // 2, : size // 2, 2] += 150
            Image.fromarray(a.clip(0, 255).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


FACTORY_SOURCE = '''
"""A task factory for the tests: data and a model builder, imported by name."""
import numpy as np
import torch


def make():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)
    return {"x_train": x, "y_train": y,
            "model": lambda shape, k: torch.nn.Sequential(
                torch.nn.Linear(shape[0], 16), torch.nn.Tanh(), torch.nn.Linear(16, k))}


def not_a_task():
    return [1, 2, 3]


def no_model():
    out = make()
    out["model"] = "not callable"
    return out
'''


def write_factory(folder: Path, module: str = "my_tasks") -> str:
    """Write ``folder/<module>.py``; returns the import path of its ``make``."""
    (folder / f"{module}.py").write_text(textwrap.dedent(FACTORY_SOURCE))
    return f"{module}:make"
