"""Markdown, CSV and PNG reports: a loss comparison (compare.md …) and a search run (report.md).

:func:`write_comparison` turns a :class:`gp_search.analysis.compare.Comparison` into

* ``compare.md`` — the paper-style summary (change against CE in percentage points per proxy,
  with the paired 95 % CI), one detailed table per proxy (accuracy, change, CI, p, n, ECE,
  confidence), the plots and how every number was made;
* ``compare.csv`` — one row per (proxy, loss), :data:`gp_search.analysis.compare.ROW_FIELDS`, fractions;
* ``compare_seeds.csv`` — one row per (proxy, loss, seed): what the golden test checks;
* ``reliability.csv`` / ``confidence.csv`` — the pooled bins behind the two calibration plots;
* ``loss_shapes.png``, ``confidence.png``, ``reliability.png`` (:mod:`gp_search.analysis.plots`).

:func:`write_run_report` writes ``report.md`` with ``fitness.png`` and ``routes.png`` for any
run directory (running, killed or finished). Nothing here trains; everything is text or PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

from gp_search.analysis import plots
from gp_search.analysis.compare import BASELINE, CONFIDENCE_BINS, ROW_FIELDS, Comparison
from gp_search.analysis.tables import code_label, csv_text, md_table, number
from gp_search.core import Route, Split, write_env
from gp_search.proxies import metric_label, reliability
from gp_search.engine import describe


# --- comparison ----------------------------------------------------------------------------------

def _metrics(rows) -> str:
    """The metrics of ``rows`` as printed, e.g. ``"accuracy"`` or ``"accuracy/mIoU"``."""
    return "/".join(dict.fromkeys(metric_label(r.get("metric", "accuracy")) for r in rows))


def summary_rows(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    """The paper-style table: CE accuracy, then each loss's change (pp) per proxy and the mean."""
    rows = {(r["proxy"], r["loss"]): r for r in cmp.rows}
    header = ["loss"] + cmp.proxies + ["mean"]
    ce = [rows[(p, BASELINE)]["acc_mean"] for p in cmp.proxies]
    metric = _metrics(cmp.rows)
    out = [[f"CE ({metric} %)"] + [number(100 * a, ".1f") for a in ce] + ["0"]]
    for e in cmp.entries:
        if e.label == BASELINE:
            continue
        cells, diffs = [], []
        for p in cmp.proxies:
            r = rows[(p, e.label)]
            diffs.append(r["diff_vs_ce"])
            cells.append(f"{number(100 * r['diff_vs_ce'], '+.2f')} "
                         f"[{number(100 * r['diff_ci_low'], '+.2f')}, "
                         f"{number(100 * r['diff_ci_high'], '+.2f')}]")
        finite = [d for d in diffs if math.isfinite(d)]
        mean = 100 * sum(finite) / len(finite) if len(finite) == len(diffs) else math.nan
        out.append([code_label(e.label)] + cells + [number(mean, "+.2f")])
    return header, out


def calibration_rows(cmp: Comparison) -> tuple[list[str], list[list[str]]]:
    """ECE (mean over seeds) and median top probability, loss by proxy."""
    rows = {(r["proxy"], r["loss"]): r for r in cmp.rows}
    out = [[code_label(e.label)] + [f"{number(rows[(p, e.label)]['ece_mean'], '.3f')} "
                               f"({number(rows[(p, e.label)]['top_median'], '.2f')})"
                               for p in cmp.proxies] for e in cmp.entries]
    return ["loss"] + cmp.proxies, out


def detail_rows(cmp: Comparison, proxy: str) -> tuple[list[str], list[list[str]]]:
    """One proxy's rows: accuracy, change vs CE, CI, p, n, ECE, confidence, failures."""
    metric = _metrics(r for r in cmp.rows if r["proxy"] == proxy)
    header = ["loss", f"{metric} % (mean ± sd)", "95% CI", "change vs CE (pp)",
              "95% CI (paired)", "p (paired t)", "n", "ECE (mean ± sd)", "ECE after T (T)",
              "top prob mean / median", "not ok"]
    out = []
    for r in (r for r in cmp.rows if r["proxy"] == proxy):
        out.append([
            code_label(r["loss"]), f"{number(100 * r['acc_mean'], '.2f')} ± {number(100 * r['acc_std'], '.2f')}",
            f"[{number(100 * r['acc_ci_low'], '.2f')}, {number(100 * r['acc_ci_high'], '.2f')}]",
            number(100 * r["diff_vs_ce"], "+.2f"),
            f"[{number(100 * r['diff_ci_low'], '+.2f')}, {number(100 * r['diff_ci_high'], '+.2f')}]",
            number(r["p_value"], ".3g"), str(r["n"]),
            f"{number(r['ece_mean'], '.3f')} ± {number(r['ece_std'], '.3f')}",
            f"{number(r['ece_scaled_mean'], '.3f')} ({number(r['temperature_mean'], '.3g')})",
            f"{number(r['top_mean'], '.3f')} / {number(r['top_median'], '.3f')}", r["not_ok"] or "–"])
    return header, out


def format_table(cmp: Comparison) -> str:
    """The detailed tables as plain fixed-width text (what ``gp-search compare`` prints)."""
    lines = []
    for proxy in cmp.proxies:
        header, rows = detail_rows(cmp, proxy)
        rows = [[c.strip("`") for c in r] for r in rows]
        widths = [max(len(x[i]) for x in [header] + rows) for i in range(len(header))]
        lines.append(f"{proxy}: {cmp.budgets[proxy]}; n = {len(cmp.seeds)} seeds, paired by seed "
                     f"with CE")
        for r in [header] + rows:
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        lines.append("")
    return "\n".join(lines).rstrip()


def _seeds_text(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}..{seeds[-1]}"
    return ",".join(map(str, seeds))


def comparison_markdown(cmp: Comparison, command: str = "", shape_notes=(),
                        environment: dict | None = None) -> str:
    """``compare.md``: summary, per-proxy tables, plots, method."""
    n = len(cmp.seeds)
    ok = sum(r.ok for res in cmp.results.values() for r in res)
    agree = sum(int(r["replay_agree"].split("/")[0]) for r in cmp.rows)
    md = ["# Losses against cross-entropy", ""]
    if command:
        md += ["Command:", "", "```", command, "```", ""]
    md += [(f"Seeds {_seeds_text(cmp.seeds)} (n = {n} trainings per loss and proxy, every loss "
           f"with the same seeds: same initial weights and batch order as CE)."), ""]
    for p in cmp.proxies:
        md.append(f"* `{p}`: {cmp.budgets[p]}")
    md += ["", f"## Change in test {_metrics(cmp.rows)} against CE (percentage points)", "",
           (f"Mean change over n = {n} seed pairs and its paired 95 % t-interval in brackets; "
           "`mean`: unweighted mean over the proxies (as the paper's last column). The paper "
           "counted a change within ±0.5 as \"same as CE\" and gave no intervals."), ""]
    md += md_table(*summary_rows(cmp))
    md += ["", "## Calibration: ECE (median top softmax probability)", "",
           (f"ECE: mean over n = {n} seeds, 15 bins. In brackets: the median top probability "
            "over the held-out samples of all n seeds (far below the accuracy: under-confident; "
            "above it: over-confident). The per-proxy tables add `ECE after T`: the ECE after "
            "temperature scaling, the temperature T fitted by NLL on one half of the test split "
            "and applied to the other (both ways), with T in brackets (T > 1: the loss left the "
            "model over-confident, T < 1: under-confident; dividing the logits by T undoes it "
            "without changing a prediction)."), ""]
    md += md_table(*calibration_rows(cmp))
    for p in cmp.proxies:
        md += ["", f"## {p}", "", f"{cmp.budgets[p]}; n = {n} seeds.", ""]
        md += md_table(*detail_rows(cmp, p))
    md += ["", "## Losses", ""]
    md += md_table(["label", "text", "from"], [[code_label(e.label), f"`{e.spec}`", e.origin]
                                                for e in cmp.entries], "lll")
    md += ["", "## Plots", "", "![per-element loss and slope](loss_shapes.png)", ""]
    md += [f"* {note}" for note in shape_notes] + ([""] if shape_notes else [])
    md += ["![top softmax probability on held-out data](confidence.png)", "",
           "![reliability diagrams](reliability.png)", "",
           "## How the numbers are made", "",
           ("* Accuracies: the standard path, `gp_search.parallel.evaluate.evaluate` (what `gp-search "
           f"evaluate` prints), batched = {cmp.settings.get('batched')!r}, device "
           f"{cmp.settings.get('device')}, one torch thread per training; deterministic per seed."),
           ("* Change vs CE: per seed, loss minus CE on the same seed; mean, Student-t 95 % CI and "
           "two-sided paired t-test p-value over the n pairs (`gp_search.analysis.stats.paired`). "
           "Accuracy CIs are t-intervals of the n accuracies and may pass 100 % for small n."),
           ("* Calibration: each ok training is replayed (`gp_search.analysis.compare.replay`, the "
           "sequential training rebuilt from `gp_search.proxies.train`'s public pieces) to read the test "
           f"softmax; its accuracy equals the table's in {agree} of {ok} trainings. ECE: 15 "
           "equal-width bins of the top probability, Σ (n_b/N)·|accuracy_b − confidence_b|, per "
           "seed, then mean ± sd over seeds. Confidence: top softmax probability of every test "
           "sample, pooled over seeds."),
           ("* Files: `compare.csv` (these rows, fractions), `compare_seeds.csv` (every "
           "training), `reliability.csv` and `confidence.csv` (the pooled bins of the plots).")]
    if environment:
        md += ["", "Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()) + "."]
    return "\n".join(md) + "\n"


def write_comparison(cmp: Comparison, out: str | Path, command: str = "",
                     environment: dict | None = None) -> list[Path]:
    """Write the comparison's Markdown, CSVs and PNGs into ``out``.

    Args:
        cmp: the result of :func:`gp_search.analysis.compare.compare`.
        out: directory (created).
        command: the command line that produced it, quoted in ``compare.md``.
        environment: versions and machine, listed at the end of ``compare.md``.

    Returns:
        The files written.

    Raises:
        OSError: ``out`` cannot be written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_env(out)
    files = {}
    files["compare.csv"] = csv_text(ROW_FIELDS, [[r[k] for k in ROW_FIELDS] for r in cmp.rows])
    seeds_rows, rel_rows, conf_rows = [], [], []
    for p in cmp.proxies:
        for e in cmp.entries:
            cal = cmp.calibration[(p, e.label)]
            for j, res in enumerate(cmp.results[(p, e.label)]):
                seeds_rows.append([p, e.label, res.seed, res.status, res.accuracy,
                                   cal["replay_accuracy"][j], cal["ece"][j], cal["mean_top"][j]])
            for b in reliability(cal["top"], cal["correct"]):
                rel_rows.append([p, e.label, b["lo"], b["hi"], b["count"], b["confidence"],
                                 b["accuracy"]])
            counts = [0] * CONFIDENCE_BINS
            for v in cal["top"]:
                counts[min(int(v * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)] += 1
            conf_rows += [[p, e.label, i / CONFIDENCE_BINS, (i + 1) / CONFIDENCE_BINS, c]
                          for i, c in enumerate(counts)]
    files["compare_seeds.csv"] = csv_text(("proxy", "loss", "seed", "status", "accuracy",
                                       "replay_accuracy", "ece", "mean_top"), seeds_rows)
    files["reliability.csv"] = csv_text(("proxy", "loss", "bin_low", "bin_high", "count",
                                     "confidence", "accuracy"), rel_rows)
    files["confidence.csv"] = csv_text(("proxy", "loss", "bin_low", "bin_high", "count"), conf_rows)
    notes = plots.plot_loss_shapes(cmp.entries, out / "loss_shapes.png")
    plots.plot_confidence(cmp, out / "confidence.png")
    plots.plot_reliability(cmp, out / "reliability.png")
    files["compare.md"] = comparison_markdown(cmp, command, notes, environment)
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / n for n in files] + [out / n for n in ("loss_shapes.png", "confidence.png",
                                                         "reliability.png")]


# --- search runs ---------------------------------------------------------------------------------

def run_markdown(run) -> str:
    """``report.md`` of a :class:`gp_search.engine.rundir.Run`."""
    cfg = run.config
    state = "finished" if run.finished else (
        f"not finished (last generation {run.generations[-1]['generation']})"
        if run.generations else "no generation finished yet")
    md = [f"# Search run {run.path.name}", "",
          (f"{state}; population {cfg.population}, generations {cfg.generations}, scored on "
          f"{', '.join(cfg.scored_names()) or 'nothing'} (n = {cfg.seeds} training seed(s) per candidate"
          f"{', ' + str(cfg.steps) + ' steps' if cfg.steps else ''}), primitive set "
          f"{cfg.primitive_set}, seed {cfg.seed}, preset {cfg.preset or 'none'}."), ""]
    if run.generations:
        md += ["## Fitness by generation", "", "![best and median fitness](fitness.png)", "",
               "![scoring routes](routes.png)", "",
               ("Routes per generation (candidates scored then): rejected before training, "
               "duplicate (same key or fingerprint), cached, trained to the full budget, halted "
               "short by successive halving. The hall of fame's best counts full-budget "
               "trainings only; the population's best also short and raced ones, whose fitness "
               "is noisier (short) or an upper bound (raced), so it can lie above the hall of "
               "fame's (runs made before the hall of fame's best was logged show –)."), ""]
        header = (["generation", "hall-of-fame best (full budget)", "population best (any budget)",
                   "median"] + [route.value for route in Route] + ["seconds (cumulative)"])
        rows = [[str(r["generation"]), number(r.get("hof_best"), ".4f"),
                 number(r.get("best"), ".4f"), number(r.get("median"), ".4f")]
                + [str(r.get(k, 0)) for k in Route] + [number(r.get("seconds"), ".1f")]
                for r in run.generations]
        md += md_table(header, rows)
        md.append("")
    md += ["## Hall of fame", ""]
    if run.hall_of_fame:
        proxy_flags = " ".join(f"--proxy {p}" for p in cfg.proxies)
        where = ("validation (a held-out fifth of each proxy's training split)"
                 if cfg.fitness_split == Split.VAL else "test")
        md.append(f"Fitness: {describe(cfg.fitness_aggregate, where)}, mean ± sd over "
                  f"n training seeds (the search's own score); to compare the best with the "
                  f"baselines on the test splits: `gp-search compare {proxy_flags} --run "
                  f"{run.path}`.")
        md.append("")
        md += md_table(["rank", "fitness (mean ± sd)", "n", "size", "canonical form"],
                        [[str(e["rank"]), f"{e['fitness']:.4f} ± {e['std']:.4f}", str(e["n"]),
                          str(e["size"]), f"`{e['canonical']}`"] for e in run.hall_of_fame],
                        "rrrrl")
    else:
        md.append("empty (no generation finished yet)")
    return "\n".join(md) + "\n"


def write_run_report(run_dir: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write ``report.md``, ``fitness.png`` and ``routes.png`` for a run directory.

    Args:
        run_dir: a run directory (``results/runs/<run-id>``).
        out: where to write (default ``run_dir/report``).

    Returns:
        The files written.

    Raises:
        gp_search.engine.rundir.RunFileError: not a readable run directory.
        OSError: ``out`` cannot be written.
    """
    from gp_search.engine import RunDir, load_run

    run = load_run(run_dir)
    out = Path(out) if out is not None else RunDir(run.path).report
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if run.generations:
        title = f"{run.path.name}: population {run.config.population}, {', '.join(run.config.scored_names())}"
        plots.plot_run_fitness(run.generations, out / "fitness.png", title)
        plots.plot_run_routes(run.generations, out / "routes.png", title)
        written += [out / "fitness.png", out / "routes.png"]
    (out / "report.md").write_text(run_markdown(run))
    return [out / "report.md"] + written
