"""Does evolution help? GP against random search at an equal number of trainings.

For each search seed, runs the same config twice, ``strategy="gp"`` and ``strategy="random"``
(each generation drawn fresh from the initialiser, same screening, dedup, cache, halving,
elitism and hall of fame), in the same process, one after the other. Trainings are counted by
the run's scorer (what ``checkpoint.json`` records as ``full_trainings`` / ``short_trainings``,
one per (loss, proxy, seed)); the cost of a run is its full-budget-equivalent trainings,
``full + short / eta`` (a short training runs ``steps / eta`` steps). GP runs its generations;
random runs until its cost reaches GP's (at most ``--max-factor`` times the generations), and
its best is read at the last generation whose cost is <= GP's, so random never gets more
(and, to bracket it, at the first generation whose cost is >= GP's).

Prints per seed the hall-of-fame best (full-budget fitness) at equal trainings for both, the
paired comparison over seeds (mean difference GP - random, 95 % t-interval,
:func:`gp_search.analysis.stats.paired`), and the best-so-far at 25/50/75/100 % of GP's
trainings. With ``--transfer-seeds N`` it then retrains each run's best on the
``transfer-quick`` suite (:func:`gp_search.analysis.transfer.transfer`) and reports each one's
mean accuracy change against CE over the suite's tasks, paired GP vs random by search seed.

With ``--preset quick`` the runs search as that preset does (its suite, soft-min fitness,
racing); ``--variants gp,random,gp-mean`` adds the item-3 ablation: the same GP search with the
plain mean over the tasks as fitness, compared with GP on transfer.

    python benchmarks/bench_strategy.py [--seeds 0,1,2] [--preset quick | --proxy digits-mlp]
        [--variants gp,random,gp-mean] [--population 24] [--generations 8] [--train-seeds 2]
        [--jobs 2] [--transfer-seeds 3] [--transfer-suite transfer-quick] [--out DIR]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gp_search import store  # noqa: E402
from gp_search.analysis.stats import paired  # noqa: E402
from gp_search.proxies.train import one_thread  # noqa: E402
from gp_search.search.config import SearchConfig  # noqa: E402
from gp_search.search.evolve import Search  # noqa: E402
from gp_search.search.runner import make_scorer  # noqa: E402

FRACTIONS = (0.25, 0.5, 0.75, 1.0)


def run_curve(cfg: SearchConfig, run_dir: Path, limit: float | None = None) -> list[dict]:
    """Run one search; returns its best-so-far curve, one point per generation.

    Args:
        cfg: the search's config.
        run_dir: its directory (holds the cache).
        limit: stop after the generation whose cost reaches this many trainings (None: run all).

    Returns:
        Per generation: ``generation``, ``full``, ``short``, ``cost`` (cumulative, as counted by
        the scorer) and ``best`` / ``best_prefix`` (the hall of fame's first entry).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = store.Cache(run_dir / "cache.sqlite")
    scorer = make_scorer(cfg, cache)
    search = Search(cfg, run_dir, scorer, cache)
    curve: list[dict] = []

    def record(rec: dict) -> None:
        full, short = scorer.full_trainings, scorer.short_trainings
        top = search.hof.entries[0] if search.hof.entries else {"fitness": float("nan"),
                                                                 "prefix": None}
        curve.append({"generation": rec["generation"], "full": full, "short": short,
                      "cost": full + short / cfg.halving_eta, "best": top["fitness"],
                      "best_prefix": top["prefix"]})
        if limit is not None and curve[-1]["cost"] >= limit:
            search.stop()

    search.hooks.after_generation.append(record)
    try:
        with one_thread():
            search.run()
    finally:
        cache.close()
    return curve


def at_cost(curve: list[dict], cost: float) -> dict:
    """The last point of ``curve`` whose cost is <= ``cost`` (generation 0 at the least)."""
    within = [p for p in curve if p["cost"] <= cost + 1e-9]
    return within[-1] if within else curve[0]


def past_cost(curve: list[dict], cost: float) -> dict:
    """The first point of ``curve`` whose cost is >= ``cost`` (the last point at the most)."""
    return next((p for p in curve if p["cost"] >= cost - 1e-9), curve[-1])


VARIANTS = {
    "gp": dict(strategy="gp"),
    "random": dict(strategy="random"),
    "gp-mean": dict(strategy="gp", fitness_aggregate="mean"),
}
"""What each run of a search seed changes in the base config. ``random`` runs until its cost
reaches GP's; ``gp-mean`` is the item-3 ablation: the same GP search with the plain mean over the
tasks as fitness instead of the preset's soft minimum (its fitness is on another scale, so it is
compared with GP on transfer only)."""


def base_config(args, out: Path) -> dict:
    """The shared config: a preset's search (its suite, aggregate, racing, seeds) or one proxy."""
    if args.preset:
        from gp_search.search.config import PRESETS

        base = {k: v for k, v in PRESETS[args.preset].items()
                if k not in ("time_budget", "transfer_suite", "transfer_seeds", "preset")}
    else:
        base = dict(proxies=(args.proxy,), seeds=args.train_seeds)
    base.update(population=args.population, generations=args.generations, jobs=args.jobs,
                out=str(out), time_budget=0.0, optimize_constants=False)
    return base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="search seeds, comma-separated (n >= 3)")
    ap.add_argument("--preset", default="", choices=("", "quick", "paper"),
                    help="search as this preset does (its suite and fitness); else --proxy")
    ap.add_argument("--variants", default="gp,random",
                    help=f"comma-separated, from {sorted(VARIANTS)} (gp first)")
    ap.add_argument("--population", type=int, default=24)
    ap.add_argument("--generations", type=int, default=8)
    ap.add_argument("--proxy", default="digits-mlp")
    ap.add_argument("--train-seeds", type=int, default=2, help="training seeds per candidate")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--max-factor", type=int, default=4,
                    help="random may run up to this many times GP's generations")
    ap.add_argument("--transfer-seeds", type=int, default=0,
                    help="retrain each best on --transfer-suite with this many seeds (0: skip)")
    ap.add_argument("--transfer-suite", default="transfer-quick")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = args.variants.split(",")
    if variants[0] != "gp" or not set(variants) <= set(VARIANTS):
        ap.error(f"--variants must start with gp and name only {sorted(VARIANTS)}")
    out = Path(args.out or tempfile.mkdtemp(prefix="strategy-"))
    base = base_config(args, out)
    print(f"load average {os.getloadavg()[0]:.1f}; proxies {', '.join(base['proxies'])} "
          f"(fitness {base.get('fitness_aggregate', 'weighted-mean-accuracy')}), population "
          f"{args.population}, GP {args.generations} generations, {base['seeds']} training seeds, "
          f"search seeds {seeds}, variants {variants}; cost = full + short/eta trainings",
          flush=True)
    rows = []
    for seed in seeds:
        row = {"seed": seed, "ends": {}}
        for name in variants:
            t0 = time.perf_counter()
            cfg = {**base, **VARIANTS[name], "seed": seed}
            if cfg.get("fitness_aggregate") != "softmin":
                cfg["racing"] = False  # racing drops candidates by their soft-min fitness
            if name == "random":
                cfg["generations"] = args.max_factor * args.generations
            limit = row["gp"][-1]["cost"] if name == "random" else None
            row[name] = curve = run_curve(SearchConfig(**cfg), out / f"{name}-{seed}", limit)
            end = at_cost(curve, limit) if limit is not None else curve[-1]
            row["ends"][name] = end
            print(f"seed {seed} {name}: best {end['best']:.4f} at gen {end['generation']} (gen 0 "
                  f"{curve[0]['best']:.4f}; {end['full']} full + {end['short']} short = "
                  f"{end['cost']:.0f}; {time.perf_counter() - t0:.0f}s)\n    {end['best_prefix']}",
                  flush=True)
            if name == "random":
                row["rnd_over"] = past_cost(curve, limit)
        rows.append(row)
    if "random" in variants:
        compare_fitness(rows)
    if args.transfer_seeds:
        transfer_of_bests(rows, variants, args.transfer_suite, args.transfer_seeds, args.jobs)


def compare_fitness(rows: list[dict]) -> None:
    """GP against random at equal trainings: paired by search seed, and the best-so-far curve."""
    a = [row["ends"]["gp"]["best"] for row in rows]
    b = [row["ends"]["random"]["best"] for row in rows]
    d = paired(a, b)
    print(f"\nbest fitness at equal trainings, n = {d['n']} search seeds: GP mean "
          f"{sum(a) / len(a):.4f}, random mean {sum(b) / len(b):.4f}; GP - random "
          f"{d['diff']:+.4f} [95% CI {d['ci_low']:+.4f}, {d['ci_high']:+.4f}], p = "
          f"{d['p_value']:.3f}")
    c = [row["rnd_over"]["best"] for row in rows]
    d = paired(a, c)
    print(f"  random given its first generation at or past GP's trainings: mean "
          f"{sum(c) / len(c):.4f}; GP - random {d['diff']:+.4f} [95% CI {d['ci_low']:+.4f}, "
          f"{d['ci_high']:+.4f}]")
    print("best-so-far at a fraction of GP's trainings (mean over seeds):")
    for f in FRACTIONS:
        g = [at_cost(row["gp"], f * row["ends"]["gp"]["cost"])["best"] for row in rows]
        r = [at_cost(row["random"], f * row["ends"]["gp"]["cost"])["best"] for row in rows]
        print(f"  {f:>4.0%}: GP {sum(g) / len(g):.4f}  random {sum(r) / len(r):.4f}")


def transfer_of_bests(rows: list[dict], variants: list[str], suite: str, n_seeds: int,
                      jobs: int) -> None:
    """Retrain every run's best on ``suite``; print its mean change against CE, paired by seed."""
    from gp_search.analysis.compare import LossEntry
    from gp_search.analysis.transfer import transfer

    entries = {f"{name}-{row['seed']}": LossEntry(f"{name}-{row['seed']}",
                                                  row["ends"][name]["best_prefix"], "bench_strategy")
               for row in rows for name in variants}
    t0 = time.perf_counter()
    res = transfer(list(entries.values()), suite=suite, seeds=n_seeds, jobs=jobs,
                   baselines=("ce", "ngl"))
    change = {a["loss"]: a for a in res.aggregate}
    print(f"\n{suite} ({len(res.tasks)} tasks, {n_seeds} training seeds, "
          f"{time.perf_counter() - t0:.0f}s): mean accuracy change vs CE over the tasks, worst task")
    for label, a in change.items():
        print(f"  {label:<12} {100 * a['mean_diff']:+.2f} pp  worst {a['worst_task']} "
              f"{100 * a['worst_diff']:+.2f} pp  ({entries[label].spec if label in entries else 'reference'})")
    g = [change[f"gp-{row['seed']}"]["mean_diff"] for row in rows]
    for name in variants[1:]:
        r = [change[f"{name}-{row['seed']}"]["mean_diff"] for row in rows]
        d = paired(g, r)
        print(f"mean change vs CE: gp {100 * sum(g) / len(g):+.2f} pp, {name} "
              f"{100 * sum(r) / len(r):+.2f} pp; gp - {name} {100 * d['diff']:+.2f} pp "
              f"[95% CI {100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}], n = {d['n']} search "
              f"seeds")


if __name__ == "__main__":
    main()
