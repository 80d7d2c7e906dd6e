"""Write example task files in each format ``gp-search run --task`` reads (nothing is downloaded).

    python examples/make_task_files.py OUT_DIR

writes

* ``OUT_DIR/blobs.npz`` — ``x_train``/``y_train`` of 4 noisy Gaussian classes in 20-D (1200
  samples; no test part, so gp-search holds out a stratified 20 %);
* ``OUT_DIR/tabular.csv`` — 1500 rows of scikit-learn's ``make_classification`` (12 numeric
  features, 4 classes, 5 % flipped labels) with a string ``label`` column (``alpha`` … ``delta``);
* ``OUT_DIR/digits/<digit>/<i>.png`` — scikit-learn's embedded 8x8 digits (1797 images,
  10 classes) as grayscale PNG files in class folders.

Then, for example:

    gp-search run --task OUT_DIR/tabular.csv --label-column label
    gp-search run --task OUT_DIR/digits --image-size 8
"""

import csv
import sys
from pathlib import Path

import numpy as np


def write_all(out: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits, make_classification

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=0.6, size=(4, 20))
    y = np.repeat(np.arange(4), 300)
    x = centres[y] + rng.normal(size=(len(y), 20))
    np.savez(out / "blobs.npz", x_train=x.astype(np.float32), y_train=y)

    x, y = make_classification(n_samples=1500, n_features=12, n_informative=6, n_redundant=2,
                               n_classes=4, n_clusters_per_class=2, flip_y=0.05, random_state=0)
    names = ("alpha", "beta", "gamma", "delta")
    with open(out / "tabular.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"x{i}" for i in range(x.shape[1])] + ["label"])
        w.writerows([*map("{:.6g}".format, row), names[k]] for row, k in zip(x, y))

    digits = load_digits()
    for i, (image, k) in enumerate(zip(digits.images, digits.target)):
        folder = out / "digits" / str(k)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 255 / 16).astype(np.uint8), mode="L").save(folder / f"{i}.png")
    print(f"wrote {out / 'blobs.npz'}, {out / 'tabular.csv'} and {out / 'digits'}/")


if __name__ == "__main__":
    write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "task-files"))
