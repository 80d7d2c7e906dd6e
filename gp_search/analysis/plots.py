"""PNG plots of a loss comparison and of a search run (matplotlib, Agg backend, no display).

Comparison plots (data from :class:`gp_search.analysis.compare.Comparison`):

* :func:`plot_loss_shapes` — each loss's per-element term ``ℓ(p, t)`` and its slope ``∂ℓ/∂p``
  for ``t = 1`` and ``t = 0`` (:func:`element_form` says how each reference loss is written
  per element, and which part has no per-element form);
* :func:`plot_confidence` — the distribution of the top softmax probability on held-out data;
* :func:`plot_reliability` — reliability diagrams with each loss's ECE.

Run plots (data from :func:`gp_search.engine.rundir.load_run`): :func:`plot_run_fitness` (best and
median fitness by generation) and :func:`plot_run_routes` (share of candidates rejected,
duplicate, cached, trained, halted short, per generation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window, also on machines with a display
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from gp_search.lang import losses as L

NGL_CAP_K10 = 0.391
"""Target probability that minimises one sample's NGL for K = 10 (``../shared/NGL.md``)."""
DPI = 110
_STYLES = ["-", "--", "-.", ":"]


def _color(i: int):
    return plt.get_cmap("tab10")(i % 10)


def element_form(spec: str, k: int = 10
                 ) -> tuple[Callable[[np.ndarray, float], np.ndarray] | None, str]:
    """The per-element term ``ℓ(p, t)`` of a loss, for one class entry with target ``t``.

    Expression losses are their own per-element term (training takes the mean over batch ×
    classes). The reference losses are sums over classes, so their term is the summand: CE
    ``−t log p``; focal ``−t (1−p)^γ log p``; PolyLoss-1 ``t(−log p + ε(1−p))``; SCE
    ``−α t log p − β p log max(t, 1e-4)``; label smoothing ``−((1−ε)t + ε/K) log p``.

    Args:
        spec: a reference name or an expression.
        k: classes, for label smoothing's ``ε/K``.

    Returns:
        ``(f, note)``: ``f(p, t)`` on a NumPy array of probabilities, or ``None`` when the loss
        has no per-element form; ``note`` says what the curve leaves out ('' when nothing).
    """
    loss = L.resolve(spec)
    if loss.expr is not None:
        fn = loss.expr.elementwise

        def f(p, t):
            pt = torch.as_tensor(p, dtype=torch.float64)
            return fn(pt, torch.full_like(pt, float(t))).detach().numpy()
        return f, ""
    forms = {
        "ce": lambda p, t: -t * np.log(p),
        "focal": lambda p, t: -t * (1 - p) ** L.FOCAL_GAMMA * np.log(p),
        "poly1": lambda p, t: t * (-np.log(p) + L.POLY1_EPSILON * (1 - p)),
        "sce": lambda p, t: (-L.SCE_ALPHA * t * np.log(p)
                             - L.SCE_BETA * p * np.log(max(t, L.SCE_LOG_CLIP))),
        "label_smoothing": lambda p, t: -((1 - L.LABEL_SMOOTHING) * t + L.LABEL_SMOOTHING / k)
                                        * np.log(p),
    }
    if loss.name == "ce_l2":
        return forms["ce"], f"+ {L.CE_L2_LAMBDA:g}/2·Σ‖w‖² on the weights (no per-element form)"
    if loss.name in forms:
        return forms[loss.name], ""
    return None, f"no per-element form known for {loss.name!r}"


def plot_loss_shapes(entries: Sequence, path: Path) -> list[str]:
    """Per-element loss and slope for t = 1 and t = 0, one curve per loss (2 x 2 panels).

    Args:
        entries: :class:`gp_search.analysis.compare.LossEntry` items (``label``, ``spec``).
        path: the PNG to write.

    Returns:
        Notes for the caption: what each curve leaves out, and the losses skipped.
    """
    p = np.linspace(0.01, 1.0, 400)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), sharex=True)
    notes = []
    for i, e in enumerate(entries):
        f, note = element_form(e.spec)
        if f is None:
            notes.append(f"{e.label}: skipped ({note})")
            continue
        if note:
            notes.append(f"{e.label}: {note}")
        for col, t in enumerate((1.0, 0.0)):
            y = np.asarray(f(p, t), dtype=float) * np.ones_like(p)
            kw = {"color": _color(i), "ls": _STYLES[i % 4], "lw": 1.8, "label": e.label}
            axes[0, col].plot(p, y, **kw)
            axes[1, col].plot(p, np.gradient(y, p), **kw)
    for col, t in enumerate((1, 0)):
        who = "target class" if t else "other classes"
        axes[0, col].set_title(f"t = {t} ({who}): per-element loss ℓ(p, t)")
        axes[1, col].set_title(f"t = {t} ({who}): slope ∂ℓ/∂p")
        axes[0, col].set_ylabel("ℓ(p, t)")
        axes[1, col].set_ylabel("∂ℓ/∂p")
        axes[1, col].set_xlabel("p (softmax probability of the entry)")
        axes[1, col].axhline(0, color="0.6", lw=0.8)
        for ax in axes[:, col]:
            _clip_y(ax)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    fig.suptitle("Loss as a function of p: per-element term before the reduction\n"
                 "(expressions: mean over batch × classes; CE family: sum over classes)",
                 fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return notes


def _clip_y(ax) -> None:
    """Keep the interesting range when a curve shoots off near p = 0."""
    ys = np.concatenate([line.get_ydata() for line in ax.get_lines()
                         if len(line.get_ydata()) > 2] or [np.zeros(1)])
    ys = ys[np.isfinite(ys)]
    if ys.size:
        lo, hi = np.percentile(ys, [1, 99])
        pad = 0.05 * (hi - lo or 1.0)
        ax.set_ylim(lo - pad, hi + pad)


def plot_confidence(cmp, path: Path) -> None:
    """Violins of the top softmax probability on the test set, one panel per proxy.

    Args:
        cmp: a :class:`gp_search.analysis.compare.Comparison`.
        path: the PNG to write.
    """
    labels = [e.label for e in cmp.entries]
    fig, axes = plt.subplots(1, len(cmp.proxies), figsize=(4.2 * len(cmp.proxies) + 1, 5.2),
                             sharey=True, squeeze=False)
    for ax, proxy in zip(axes[0], cmp.proxies):
        data, pos, cols = [], [], []
        for i, lab in enumerate(labels):
            top = cmp.calibration[(proxy, lab)]["top"]
            if top.size:
                data.append(top)
                pos.append(i)
                cols.append(_color(i))
        if data:
            parts = ax.violinplot(data, positions=pos, widths=0.8, showmedians=True,
                                  showextrema=False)
            for body, c in zip(parts["bodies"], cols):
                body.set_facecolor(c)
                body.set_alpha(0.6)
            parts["cmedians"].set_color("k")
        ax.axhline(NGL_CAP_K10, color="k", ls="--", lw=1,
                   label=f"NGL's single-sample optimum, K = 10 (q ≈ {NGL_CAP_K10})")
        ax.axhline(0.1, color="0.5", ls=":", lw=1, label="1/K (uniform)")
        ax.set_xticks(range(len(labels)), [_short(s) for s in labels], rotation=35, ha="right")
        n = _n_text(cmp, proxy)
        ax.set_title(f"{proxy}\n{n}", fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("top softmax probability (held-out samples)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="lower center", ncol=2, frameon=False)
    fig.suptitle("Confidence on held-out data: top softmax probability per test sample\n"
                 "(violin: distribution pooled over seeds; bar: median)", fontsize=11)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    _save(fig, path)


def plot_reliability(cmp, path: Path, min_count: int = 10) -> None:
    """Reliability diagrams (accuracy against confidence per bin), one panel per proxy.

    Args:
        cmp: a :class:`gp_search.analysis.compare.Comparison`.
        path: the PNG to write.
        min_count: bins with fewer pooled samples are not drawn (too noisy to read).
    """
    from gp_search.proxies import reliability

    fig, axes = plt.subplots(1, len(cmp.proxies), figsize=(5.2 * len(cmp.proxies) + 1, 7.0),
                             squeeze=False)
    rows = {(r["proxy"], r["loss"]): r for r in cmp.rows}
    for ax, proxy in zip(axes[0], cmp.proxies):
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="perfect calibration")
        for i, e in enumerate(cmp.entries):
            cal = cmp.calibration[(proxy, e.label)]
            if not cal["top"].size:
                continue
            pts = [b for b in reliability(cal["top"], cal["correct"]) if b["count"] >= min_count]
            ece = rows[(proxy, e.label)]["ece_mean"]
            ax.plot([b["confidence"] for b in pts], [b["accuracy"] for b in pts], marker="o",
                    ms=3, color=_color(i), ls=_STYLES[i % 4], lw=1.4,
                    label=f"{_short(e.label)} (ECE {ece:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence (mean top probability in the bin)")
        ax.set_title(f"{proxy}\n{_n_text(cmp, proxy)}", fontsize=10)
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2,
                  frameon=False)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("accuracy in the bin")
    fig.suptitle("Calibration (reliability diagram): 15 equal-width bins pooled over seeds, bins "
                 f"with < {min_count} samples not drawn;\nECE in the legend: mean over seeds; "
                 "above the diagonal = under-confident", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _n_text(cmp, proxy: str) -> str:
    return f"n = {len(cmp.seeds)} seeds per loss; {cmp.budgets.get(proxy, '')}"


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


# --- search runs ---------------------------------------------------------------------------------

def plot_run_fitness(generations: list[dict], path: Path, title: str,
                     reference: tuple | None = None) -> None:
    """Best and median fitness of the population by generation.

    Args:
        generations: the run's ``generations.jsonl`` records.
        path: the PNG to write.
        title: the figure title (e.g. the run id).
        reference: ``(label, mean, ci_low, ci_high)`` of a loss scored the same way (e.g. NGL),
            drawn as a line with its band.
    """
    g = [r["generation"] for r in generations]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    if any(r.get("hof_best") is not None for r in generations):
        ax.plot(g, [_num(r.get("hof_best")) for r in generations], marker="D", ms=3,
                label="hall of fame's best (full budget)")
    ax.plot(g, [_num(r.get("best")) for r in generations], marker="o", ms=3,
            label="population's best (any budget)")
    ax.plot(g, [_num(r.get("median")) for r in generations], marker="s", ms=3,
            label="population's median")
    if reference is not None:
        label, mean, low, high = reference
        ax.axhline(mean, color="black", ls="--", lw=1, label=label)
        if math.isfinite(_num(low)) and math.isfinite(_num(high)):
            ax.axhspan(low, high, color="black", alpha=0.08)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness: mean held-out accuracy\n(raw, before parsimony; 0 = failed)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, path)


ROUTES = ("rejected", "duplicate", "cached", "trained", "short")


def plot_run_routes(generations: list[dict], path: Path, title: str) -> None:
    """Stacked share of each scoring route per generation (of the candidates scored then).

    Args:
        generations: the run's ``generations.jsonl`` records.
        path: the PNG to write.
        title: the figure title.
    """
    g = np.array([r["generation"] for r in generations])
    counts = np.array([[r.get(k, 0) or 0 for k in ROUTES] for r in generations], dtype=float)
    totals = counts.sum(1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    bottom = np.zeros(len(g))
    for i, k in enumerate(ROUTES):
        ax.bar(g, shares[:, i], bottom=bottom, color=_color(i), label=k, width=0.8)
        bottom += shares[:, i]
    ax.set_xlabel("generation")
    ax.set_ylabel("share of candidates scored")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    _save(fig, path)


def _num(x) -> float:
    return math.nan if x is None else float(x)


def _save(fig, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamps in the file, so regenerating the same data gives the same bytes.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)
