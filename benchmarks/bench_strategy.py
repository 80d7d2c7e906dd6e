"""Does evolution help? GP (and its ablations) against random search at an equal number of trainings.

Every run searches as the quick preset does (its suite, soft-min fitness, racing, population,
seeds, halving) and stops at the first generation whose cost reaches ``--trainings``; its best
is read at the last generation whose cost is at most that, so no strategy gets more. The cost is
counted as the search counts it, full + short/eta trainings (one per loss, task and seed; a short
training runs steps/eta steps), cache hits included: the variants of one search seed share one
SQLite cache (their generation 0 is the same), so a training is run once but counted by every
run that needs it.

Two steps, so that the runs can be spread over processes and a killed benchmark resumes:

    python benchmarks/bench_strategy.py run --seeds 0-7 --variants random,gp --trainings 300 \\
        --out results/runs/strategy
    python benchmarks/bench_strategy.py record --out results/runs/strategy \\
        [--report-suite transfer-quick --report-seeds 2] [--record results/strategy]

``run`` writes one ``runs/VARIANT-SEED.json`` per (variant, search seed) and skips those that
exist. ``record`` pairs every variant with ``random`` by search seed (:func:`paired`: mean
difference of best fitness, 95 % t-interval, p), gives the trainings each needed to reach
random's final best, optionally retrains every run's best on ``--report-suite``
(:func:`gp_search.analysis.transfer.transfer`; ``report_mean_change`` is the mean change of
accuracy against CE over its tasks in points, ``holds_floor`` that no task's paired CI lies wholly
below CE), and writes ``strategy.json`` (the default ``gp`` and ``random`` runs under ``runs``,
every other variant under ``ablations``), ``strategy.png`` (median best-so-far against trainings
over the seeds, interquartile band) and ``ablations.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search.engine.cache import Cache
from gp_search.engine import rundir as store  # noqa: E402
from gp_search.analysis.stats import paired  # noqa: E402
from gp_search.proxies.train import one_thread  # noqa: E402
from gp_search.engine.config import PRESETS, SearchConfig  # noqa: E402
from gp_search.engine.evolve import Search  # noqa: E402
from gp_search.engine.runner import make_scorer  # noqa: E402

OLD = dict(screen_hard_examples=False, surrogate=1)
"""The quick preset's search before this issue's screening and surrogate."""
VARIANTS = {
    "random": dict(strategy="random", niche_radius=0.0, immigrants=0.0, **OLD),
    "gp": dict(strategy="gp"),
    "gp-plain": dict(strategy="gp", niche_radius=0.0, immigrants=0.0, **OLD),
    "gp-niche-immigrants": dict(strategy="gp", niche_radius=0.3, immigrants=0.25, **OLD),
    "random-screen": dict(strategy="random", niche_radius=0.0, immigrants=0.0,
                          screen_hard_examples=True),
    "gp-screen": dict(strategy="gp", screen_hard_examples=True),
    "gp-plain-screen": dict(strategy="gp", niche_radius=0.0, immigrants=0.0,
                            screen_hard_examples=True),
    "gp-surrogate-screen": dict(strategy="gp", surrogate=3, screen_hard_examples=True),
    "gp-constants-screen": dict(strategy="gp", constants_in_loop=4, screen_hard_examples=True),
    "gp-halving2-screen": dict(strategy="gp", halving_eta=2, screen_hard_examples=True),
    "gp-nohalving-screen": dict(strategy="gp", successive_halving=False,
                                screen_hard_examples=True),
}
"""What each run changes in the quick preset's search. ``gp`` is the default as shipped (today
``gp-surrogate-screen``'s settings); ``gp-plain`` is GP without niching and immigrants (the
search before issue 20); ``gp-niche-immigrants`` adds clearing and a diverse hall of fame at
fingerprint distance 0.3 and a quarter of each generation drawn fresh (the default before the
screening and the surrogate). The hall of fame's hard-examples bar is on in all
(the config's default). The ``-screen`` variants make it a rejection before training
(``screen_hard_examples``), the random baseline included (``random-screen``): no training is
spent on a loss the hall of fame would refuse. ``gp-surrogate-screen`` breeds three times the
offspring and trains the third the surrogate predicts best (``gp_search.engine.surrogate``);
``gp-constants-screen`` tunes the best's constants inside the loop (``constants_in_loop``, up
to 4 trainings per new best); ``gp-halving2-screen`` and ``gp-nohalving-screen`` change
successive halving."""


def seed_list(text: str) -> list[int]:
    """``0-7`` or ``0,1,2``."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def config(variant: str, seed: int, out: Path, args) -> SearchConfig:
    """The quick preset's search (no time budget, no transfer stage), with ``--population`` and
    ``--train-seeds`` where given, and the variant's changes."""
    base = {k: v for k, v in PRESETS["quick"].items()
            if k not in ("time_budget", "transfer_suite", "report_suite", "transfer_seeds",
                           "preset")}
    if args.population:
        base["population"] = args.population
    if args.train_seeds:
        base["seeds"] = args.train_seeds
    if args.proxies:
        base["proxies"] = tuple(args.proxies.split(","))
    return SearchConfig(**{**base, **VARIANTS[variant], "seed": seed, "jobs": args.jobs,
                           "generations": 10_000, "out": str(out), "optimize_constants": False})


def run_one(variant: str, seed: int, trainings: float, out: Path, args) -> dict:
    """One search to ``trainings``; its record (the curve is best-so-far against cost)."""
    cfg = config(variant, seed, out, args)
    cache = Cache(out / f"cache-{seed}.sqlite")
    scorer = make_scorer(cfg, cache)
    search = Search(cfg, out, scorer, cache)
    curve: list[list] = []

    def record(rec: dict) -> None:
        cost = scorer.full_needed + scorer.short_needed / cfg.halving_eta
        top = search.hof.entries[0] if search.hof.entries else None
        curve.append([cost, top["fitness"] if top else None, top["canonical"] if top else None])
        if cost >= trainings:
            search.stop()

    search.hooks.after_generation.append(record)
    t0 = time.perf_counter()
    try:
        with one_thread():
            search.run()
    finally:
        cache.close()
    end = [p for p in curve if p[0] <= trainings + 1e-9][-1]
    return {"search_seed": seed, "strategy": "random" if variant.startswith("random") else "gp",
            "variant": variant, "trainings": end[0], "best_fitness": end[1],
            "best_canonical": end[2], "curve": [p[:2] for p in curve if p[1] is not None],
            "budget": trainings, "generations": len(curve) - 1,
            "seconds": round(time.perf_counter() - t0, 1)}


def cmd_run(args) -> None:
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f}; budget {args.trainings} trainings; "
          f"{config('gp', 0, out, args)}", flush=True)
    for seed in seed_list(args.seeds):
        for variant in args.variants.split(","):
            path = out / "runs" / f"{variant}-{seed}.json"
            if path.exists():
                continue
            rec = run_one(variant, seed, args.trainings, out, args)
            store.write_atomic(path, json.dumps(rec, indent=1))
            print(f"seed {seed} {variant}: best {rec['best_fitness']:+.4f} at "
                  f"{rec['trainings']:.0f} trainings, {rec['generations']} generations, "
                  f"{rec['seconds']:.0f}s: {rec['best_canonical']}", flush=True)


def best_at(curve: list, cost: float) -> float:
    """Best-so-far at ``cost`` trainings (NaN before the first full-budget score)."""
    within = [f for c, f in curve if c <= cost + 1e-9]
    return within[-1] if within else float("nan")


def to_reach(curve: list, target: float) -> float:
    """Trainings at which ``curve`` first reaches ``target`` (inf: never)."""
    return next((c for c, f in curve if f >= target - 1e-12), float("inf"))


def compare(runs: dict, variant: str, seeds: list[int], baseline: str = "random") -> dict:
    """``variant`` against ``baseline``, paired by search seed, at equal trainings."""
    a = [runs[variant, s]["best_fitness"] for s in seeds]
    b = [runs[baseline, s]["best_fitness"] for s in seeds]
    d = paired(a, b)
    reach = [to_reach(runs[variant, s]["curve"], runs[baseline, s]["best_fitness"])
             / runs[baseline, s]["trainings"] for s in seeds]
    out = {"variant": variant, "baseline": baseline, "n": d["n"], "mean": float(np.mean(a)),
           "diff": d["diff"],
           "ci_low": d["ci_low"], "ci_high": d["ci_high"], "p_value": d["p_value"],
           "reach_median": float(np.median(reach)), "wins": int(sum(x > y for x, y in zip(a, b)))}
    changes = [runs[variant, s].get("report_mean_change") for s in seeds]
    if all(c is not None for c in changes):
        base = [runs[baseline, s]["report_mean_change"] for s in seeds]
        r = paired(changes, base)
        out.update(report_mean=float(np.mean(changes)), report_diff=r["diff"],
                   report_ci_low=r["ci_low"], report_ci_high=r["ci_high"],
                   holds_floor=int(sum(runs[variant, s]["holds_floor"] for s in seeds)))
    return out


def report_suite(runs: dict, suite: str, n_seeds: int, jobs: int) -> None:
    """Retrain every run's best on ``suite``; store its mean change vs CE and the floor."""
    from gp_search.analysis.compare import LossEntry
    from gp_search.analysis.transfer import transfer

    labels = {f"{v}-{s}": (v, s) for v, s in runs}
    entries = [LossEntry(label, runs[key]["best_canonical"], "bench_strategy")
               for label, key in labels.items()]
    res = transfer(entries, suite=suite, seeds=n_seeds, jobs=jobs, baselines=("ce",))
    for a in res.aggregate:
        rec = runs[labels[a["loss"]]]
        rec["report_mean_change"] = round(100 * a["mean_diff"], 3)
        rec["holds_floor"] = a["tasks_worse"] == 0


def plot(runs: dict, variants: list[str], seeds, path: Path, default: str) -> None:
    """Median best-so-far against trainings per variant over ``seeds(variant)``, IQR band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = max(r["budget"] for r in runs.values())
    grid = np.linspace(0, budget, 200)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for i, v in enumerate(variants):
        ys = np.array([[best_at(runs[v, s]["curve"], g) for g in grid] for s in seeds(v)])
        ok = ~np.isnan(ys).any(axis=0)
        q1, med, q3 = np.percentile(ys[:, ok], [25, 50, 75], axis=0)
        ax.plot(grid[ok], med, color=f"C{i}", label=f"{v} (median, n = {len(seeds(v))})"
                + (" = default" if v == default else ""))
        ax.fill_between(grid[ok], q1, q3, color=f"C{i}", alpha=0.2)
    ax.set_xlabel("trainings (full + short/eta)")
    ax.set_ylabel("best-so-far fitness (soft-min delta vs CE)")
    ax.set_title("Best-so-far against trainings: median over search seeds, IQR band")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def baseline_of(variant: str, variants: list[str]) -> str:
    """The random baseline a variant is paired with: the one with the same screening."""
    return "random-screen" if variant.endswith("-screen") and "random-screen" in variants \
        else "random"


def _fmt(c: dict) -> str:
    name = f"{c['variant']} vs {c['baseline']}" + (f" (= {c['same_as']})" if "same_as" in c else "")
    line = (f"| {name} | {c['n']} | {c['mean']:+.4f} | {c['diff']:+.4f} "
            f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_value']:.3f} | {c['wins']}/{c['n']}"
            f" | {c['reach_median']:.0%} |")
    if "report_mean" in c:
        line += (f" {c['report_mean']:+.2f} ({c['report_diff']:+.2f} [{c['report_ci_low']:+.2f}, "
                 f"{c['report_ci_high']:+.2f}]) | {c['holds_floor']}/{c['n']} |")
    return line


def cmd_record(args) -> None:
    out = Path(args.out)
    runs = {}
    for path in sorted((out / "runs").glob("*.json")):
        rec = json.loads(path.read_text())
        runs[rec["variant"], rec["search_seed"]] = rec
    variants = sorted({v for v, _ in runs if not args.variants or v in args.variants.split(",")},
                      key=lambda v: list(VARIANTS).index(v))
    runs = {(v, s): r for (v, s), r in runs.items() if v in variants}

    def seeds(*names: str) -> list[int]:
        """The search seeds every one of ``names`` was run for (each pair is compared on its
        own common seeds)."""
        return sorted({s for _, s in runs if all((v, s) in runs for v in names)})

    if args.report_suite != "none":
        report_suite(runs, args.report_suite, args.report_seeds, args.jobs)
    # the default GP and the baseline it is judged against are recorded as "gp" and "random"
    default = {"gp": args.gp, "random": args.random}
    pairs = [(v, baseline_of(v, variants)) for v in variants if not v.startswith("random")]
    pairs += [tuple(p.split(":")) for p in args.pairs if p]
    table = [compare(runs, a, seeds(a, b), b) for a, b in pairs]
    table.append({**compare(runs, args.gp, seeds(args.gp, args.random), args.random),
                  "variant": "gp", "baseline": "random",
                  "same_as": f"{args.gp} vs {args.random}"})
    head = ("| variant | n | mean best | vs baseline: diff [95% CI] | p | wins | trainings to "
            "the baseline's final best (median) |")
    if args.report_suite != "none":
        head += (f" {args.report_suite}: mean change vs CE, pp (vs baseline [95% CI]) | floor "
                 "held |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    lines += [_fmt(c) for c in table]
    print("\n".join(lines))
    dest = Path(args.record)
    dest.mkdir(parents=True, exist_ok=True)
    keep = ("search_seed", "strategy", "trainings", "best_fitness", "curve", "best_canonical",
            "report_mean_change", "holds_floor")
    record = {"preset": "quick", "command": " ".join(shlex.quote(a) for a in sys.argv),
              "budget_trainings": max(r["budget"] for r in runs.values()),
              "report_suite": args.report_suite,
              "runs": [{**{k: runs[v, s].get(k) for k in keep}, "strategy": name, "variant": v}
                       for s in seeds(args.gp, args.random) for name, v in default.items()],
              "default": args.gp, "baseline": args.random,
              "ablations": [{"variant": v, **{k: runs[v, s].get(k) for k in keep}}
                            for v in variants if v not in default.values() for s in seeds(v)],
              "comparisons": table}
    store.write_atomic(dest / "strategy.json", json.dumps(record, indent=1))
    store.write_atomic(dest / "ablations.md", "\n".join(lines) + "\n")
    plot(runs, variants, seeds, dest / "strategy.png", args.gp)  # every variant, default marked
    print(f"wrote {dest / 'strategy.json'}, {dest / 'strategy.png'}, {dest / 'ablations.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run the searches (skips those already written)")
    r.add_argument("--seeds", default="0-7", help="search seeds: 0-7 or 0,1,2")
    r.add_argument("--variants", default="random,gp", help=f"comma-separated, of {list(VARIANTS)}")
    r.add_argument("--trainings", type=float, default=300.0,
                   help="budget: full + short/eta trainings per run")
    r.add_argument("--population", type=int, default=0, help="0: the quick preset's")
    r.add_argument("--train-seeds", type=int, default=0, help="0: the quick preset's")
    r.add_argument("--proxies", default="", help="comma-separated; empty: the quick preset's")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--out", default="results/runs/strategy")
    c = sub.add_parser("record", help="compare, plot and write the record")
    c.add_argument("--out", default="results/runs/strategy")
    c.add_argument("--record", default="results/strategy")
    c.add_argument("--variants", default="", help="comma-separated (empty: every one run); "
                                                  "only the seeds where each was run count")
    c.add_argument("--report-suite", default="transfer-quick",
                   help="suite each run's best is retrained on ('none': skip)")
    c.add_argument("--report-seeds", type=int, default=2)
    c.add_argument("--gp", default="gp", help="the variant that is the default GP (recorded as "
                                              "strategy 'gp')")
    c.add_argument("--random", default="random", help="the random-search variant the default is "
                                                      "judged against (recorded as 'random')")
    c.add_argument("--pairs", default=[], type=lambda t: t.split(","),
                   help="more comparisons, A:B,... (A against B)")
    c.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    cmd_run(args) if args.command == "run" else cmd_record(args)


if __name__ == "__main__":
    main()
