"""Segmentation: NGL against CE, focal, label smoothing and soft Dice on a segmentation proxy.

Trains each loss with the same seeds on the proxy (``gp_search.analysis.compare.compare``: the
standard path, then a replay for the per-pixel probabilities), and writes into ``--out``:

* the standard comparison files of ``gp-search compare`` (``compare.md``, ``compare.csv``,
  ``compare_seeds.csv``, calibration CSVs and PNGs, ``env.json``), scored by mIoU;
* ``segmentation.md`` — mIoU and pixel accuracy per loss, each with its change against CE and
  the paired 95 % CI over the seeds, the seconds of one training, and the data's class shares;
* ``per_class_iou.csv`` and ``masks.png`` — CE's and NGL's seed-0 trainings once more: the IoU
  of each class over the test split, and predicted masks beside the ground truth for a few test
  scenes.

    python benchmarks/segmentation_compare.py --seeds 5 --jobs 2 --out results/segmentation
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gp_search import proxies
from gp_search.core import environment
from gp_search.analysis.compare import compare
from gp_search.analysis.report import write_comparison
from gp_search.analysis.tables import code_label, csv_text, md_table, number
from gp_search.analysis.stats import paired, summarize
from gp_search.lang.losses import REFERENCE
from gp_search.proxies import metrics
from gp_search.proxies.data.scenes import class_shares
from gp_search.proxies.train import dataset_for, one_thread, train_one
from gp_search.proxies.data.voc import voc_palette

LOSSES = ("ce", "focal", "label_smoothing", "dice", "ngl")
PICTURED = ("ce", "ngl")
SCENES = 6


def pixel_accuracies(cmp, proxy: str, label: str) -> list[float]:
    """Per-seed pixel accuracy from the replays' per-pixel correctness (NaN where not ok)."""
    cal = cmp.calibration[(proxy, label)]
    ok = [r.ok for r in cmp.results[(proxy, label)]]
    chunks = np.split(cal["correct"], sum(ok)) if sum(ok) else []
    it = iter(chunks)
    return [float(next(it).mean()) if good else float("nan") for good in ok]


def table(cmp, proxy: str) -> list[str]:
    """The Markdown table: mIoU and pixel accuracy, each against CE, paired by seed."""
    miou = {e.label: [r.accuracy for r in cmp.results[(proxy, e.label)]] for e in cmp.entries}
    pix = {e.label: pixel_accuracies(cmp, proxy, e.label) for e in cmp.entries}
    header = ["loss", "mIoU % (mean ± sd)", "change vs CE (pp) [paired 95% CI]", "p",
              "pixel acc % (mean ± sd)", "change vs CE (pp) [paired 95% CI]", "n"]
    rows = []
    for e in cmp.entries:
        cells = [code_label(e.label)]
        for values in (miou, pix):
            s, d = summarize(values[e.label]), paired(values[e.label], values["ce"])
            cells.append(f"{number(100 * s['mean'], '.2f')} ± {number(100 * s['std'], '.2f')}")
            cells.append("–" if e.label == "ce" else
                         f"{number(100 * d['diff'], '+.2f')} [{number(100 * d['ci_low'], '+.2f')}, "
                         f"{number(100 * d['ci_high'], '+.2f')}]")
            if values is miou:
                cells.append("–" if e.label == "ce" else number(d["p_value"], ".3g"))
        cells.append(str(summarize(miou[e.label])["n"]))
        rows.append(cells)
    return md_table(header, rows)


def pictured_trainings(spec, seed: int = 0) -> dict:
    """CE's and NGL's trainings with ``seed`` again: per-class IoU and a few predicted masks."""
    out = {}
    for name in PICTURED:
        got = {}

        @torch.no_grad()
        def keep(model, ds, got=got):
            model.eval()
            cm = torch.zeros(ds.num_classes, ds.num_classes, dtype=torch.long)
            for start in range(0, ds.n_test, spec.eval_batch):
                pred = model(ds.x_test[start:start + spec.eval_batch]).argmax(1)
                cm += metrics.confusion(pred, ds.y_test[start:start + spec.eval_batch],
                                        ds.num_classes)
            got["cm"], got["masks"] = cm, model(ds.x_test[:SCENES]).argmax(1).numpy()

        with one_thread():
            result = train_one(spec, REFERENCE[name], seed, on_trained=keep)
        tp, cm = got["cm"].diag().double(), got["cm"].double()
        got["iou"] = (tp / (cm.sum(0) + cm.sum(1) - tp)).tolist()
        got["miou"] = result.accuracy
        out[name] = got
    return out


def plot_masks(ds, pictured: dict, path: Path) -> None:
    """Input, ground truth and each pictured loss's predicted mask for the first test scenes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    k = ds.num_classes
    colours = np.array(voc_palette()[:3 * k]).reshape(k, 3) / 255.0
    cmap = ListedColormap(colours)
    cols = ["input", "ground truth"] + [f"{n.upper()} (mIoU {100 * pictured[n]['miou']:.1f} %)"
                                        for n in PICTURED]
    fig, axes = plt.subplots(SCENES, len(cols), figsize=(2.2 * len(cols), 2.2 * SCENES))
    for i in range(SCENES):
        images = [ds.x_test[i, 0].numpy(), ds.y_test[i].numpy()] + \
                 [pictured[n]["masks"][i] for n in PICTURED]
        for j, img in enumerate(images):
            ax = axes[i, j]
            if j == 0:
                ax.imshow(img, cmap="gray")
            else:
                ax.imshow(img, cmap=cmap, vmin=-0.5, vmax=k - 0.5, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(cols[j], fontsize=8)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[c]) for c in range(k)]
    names = ["background"] + [f"digit {c - 1}" for c in range(1, k)]
    fig.legend(handles, names, loc="lower center", ncol=k, fontsize=8)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--proxy", default="seg-digits-unet")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--steps", type=int, help="optimiser steps instead of the proxy's budget")
    ap.add_argument("--lr", type=float, help="learning rate instead of the proxy's")
    ap.add_argument("--out", default="results/segmentation")
    args = ap.parse_args()
    out = Path(args.out)
    command = environment.command_line(sys.argv)
    over = {k: v for k, v in (("steps", args.steps), ("lr", args.lr)) if v}
    proxy = proxies.get(args.proxy, **over)
    start = time.perf_counter()
    cmp = compare(list(LOSSES), [proxy], args.seeds, jobs=args.jobs,
                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    compare_seconds = time.perf_counter() - start
    write_comparison(cmp, out, command, environment.versions())
    ds = dataset_for(proxy.spec)
    pictured = pictured_trainings(proxy.spec)
    plot_masks(ds, pictured, out / "masks.png")
    k = ds.num_classes
    (out / "per_class_iou.csv").write_text(csv_text(
        ["loss", "seed"] + [f"iou_{c}" for c in range(k)],
        [[n, 0] + pictured[n]["iou"] for n in PICTURED]))
    seconds = [r.seconds for rs in cmp.results.values() for r in rs if r.ok]
    shares = class_shares(ds.y_train.numpy(), k)
    md = [f"# Segmentation: {proxy.name}", "", f"Command: `{command}`", "",
          f"Proxy: {proxy.spec.description}. Budget: {proxy.budget}"
          f"{f' (overridden: {over})' if over else ''}.", "",
          f"Seeds {cmp.seeds[0]}..{cmp.seeds[-1]} (n = {len(cmp.seeds)}), the same initial "
          f"weights and batches for every loss; changes against CE paired by seed, 95 % "
          f"t-intervals. mIoU: per-class IoU from the confusion accumulated over the whole test "
          f"split, averaged over the classes present in targets or predictions, background "
          f"counted as a class. Pixel accuracy: from the replayed trainings' per-pixel argmax.",
          "", *table(cmp, proxy.name), "",
          f"One training: median {statistics.median(seconds):.1f} s (range "
          f"{min(seconds):.1f}-{max(seconds):.1f} s, n = {len(seconds)}, one torch thread, "
          f"{args.jobs} jobs side by side, load average {os.getloadavg()[0]:.1f} when written); "
          f"the whole comparison {compare_seconds:.0f} s.", "",
          "Training pixels per class (background first): "
          + ", ".join(f"{100 * s:.1f} %" for s in shares) + ".", "",
          "Per-class IoU of the seed-0 trainings (background first): "
          + "; ".join(f"{n.upper()} " + ", ".join(f"{100 * v:.1f}" for v in pictured[n]["iou"])
                      for n in PICTURED) + ". Masks: `masks.png`."]
    (out / "segmentation.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
