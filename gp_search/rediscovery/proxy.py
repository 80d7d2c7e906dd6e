"""Proxy rediscovery of NGL: the paper preset from scratch, and how close its best comes to NGL.

``gp-search reproduce-ngl proxy`` runs the engine's ``paper`` preset
(:data:`gp_search.engine.config.PRESETS`) unchanged and from scratch (random trees, NGL not
seeded) and then measures, from the run directory alone:

* **NGL's proxy fitness**, scored exactly like every candidate of the run: the same proxies and
  weights, the same training seeds, the same budget; mean over those seeds with its 95 %
  t-interval;
* **when** the search reached it: the first generation (and seconds) whose best raw fitness is
  at least NGL's mean;
* **how far** each generation's best is from NGL — symbolically
  (:func:`gp_search.rediscovery.symbolic.symbolic_distance`, and whether
  :func:`gp_search.rediscovery.symbolic.exact_form` matches up to a positive factor) and
  behaviourally (distance ``D`` and max relative gradient error ``E`` of
  :mod:`gp_search.rediscovery.behaviour`, one positive scale, as in targeted rediscovery);
* **the final best against NGL on fresh training seeds** ``0 … n−1`` (the search draws its
  seeds from ``[0, 2³¹)``) and on each proxy's test split (which a search with the default
  ``fitness_split = "val"`` never scored on), paired by seed, per proxy and for the weighted
  fitness.

Example:
    >>> cfg = proxy_config(seed=3, jobs=1)
    >>> cfg.preset, cfg.population, cfg.seed_individuals
    ('paper', 64, ())
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from gp_search.engine import Cache
from gp_search.analysis import plots
from gp_search.engine import rundir as store
from gp_search.engine import SearchConfig, preset
from gp_search.core import json_safe, write_env
from gp_search.rediscovery.symbolic import exact_form, symbolic_distance
from gp_search.lang import ExprError, parse
from gp_search.lang import NGL
from gp_search.analysis import md_table, number
from gp_search.engine import default_evaluator, draw_training_seeds, proxy_refs, resume, run_search
from gp_search.engine import per_seed_fitness
from gp_search.analysis import paired, summarize
from gp_search.rediscovery.behaviour import Target

FRESH_SEEDS = 5
"""Training seeds of the final comparison (0 … n−1)."""
PRESET = "paper"
PAPER_FITNESS = dict(proxies=("mnist1d-cnn", "digits-mlp"), proxy_weights=(2.0, 1.0),
                     fitness_aggregate="weighted-mean-accuracy", racing=False)
"""The fitness this study measures NGL against (the paper preset's before it scored the
search suite): weighted mean accuracy on MNIST-1D and digits, as :func:`per_seed_fitness`."""


def proxy_config(seed: int = 0, jobs: int = 2, **overrides) -> SearchConfig:
    """The paper preset for a proxy rediscovery, scored as :data:`PAPER_FITNESS` says; seeding
    individuals is refused.

    Raises:
        ValueError: ``seed_individuals`` given, or any invalid field.
    """
    if overrides.get("seed_individuals"):
        raise ValueError("proxy rediscovery starts from random trees: seed_individuals must be "
                         "empty")
    # No transfer stage (its fields at their defaults): this study compares the best with NGL
    # on fresh seeds of its own.
    no_stage = {"transfer_suite": "none", "transfer_top": _default("transfer_top"),
                "transfer_seeds": _default("transfer_seeds"),
                # The hall of fame as the shipped study kept it: no hard-examples bar (NGL, the
                # loss it looks for, passes the bar; the bar came later, issue 20).
                "hard_examples": False}
    return preset(PRESET, **{**PAPER_FITNESS, **no_stage, "seed": seed, "jobs": jobs,
                             **overrides})


def _default(name: str):
    return SearchConfig.__dataclass_fields__[name].default


# --- training NGL and the best with the run's own scoring ----------------------------------------

def accuracies(texts: list[str], cfg: SearchConfig, seeds: list[int]) -> dict:
    """Held-out accuracy of each loss on each of the run's proxies, trained as the run trains
    (its evaluator, backend and full budget); a failed training counts 0, as in the search.

    Returns:
        ``{text: [[accuracy per seed] per proxy of cfg.proxies]}``.
    """
    evaluator = default_evaluator(cfg, progress=False)
    out: dict = {t: [] for t in texts}
    for ref in proxy_refs(cfg):
        results = evaluator(texts, ref.name, seeds, ref.steps)
        for i, text in enumerate(texts):
            chunk = results[i * len(seeds):(i + 1) * len(seeds)]
            out[text].append([r.accuracy if r.ok else 0.0 for r in chunk])
    return out


def weighted(by_proxy: list, cfg: SearchConfig) -> list[float]:
    """Per-seed fitness, as the search computes it
    (:func:`gp_search.engine.fitness.per_seed_fitness`)."""
    return per_seed_fitness(by_proxy, cfg.weights()).tolist()


def full_trainings(run: store.Run, cfg: SearchConfig, seeds: list[int]) -> list[float]:
    """The search fitness of every candidate the run trained to the full budget on every proxy
    and seed (read from its cache; a failed training counts 0)."""
    path = Path(cfg.cache) if cfg.cache else store.RunDir(run.path).cache
    if not path.exists():
        return []
    cache = Cache(path)
    try:
        tables = [cache.results_at(ref.key, ref.steps) for ref in proxy_refs(cfg)]
    finally:
        cache.close()
    losses = {loss for loss, _ in tables[0]}
    out = []
    for loss in sorted(losses):
        if all((loss, s) in t for t in tables for s in seeds):
            by_proxy = [[t[(loss, s)].accuracy if t[(loss, s)].ok else 0.0
                         for s in seeds] for t in tables]
            out.append(sum(weighted(by_proxy, cfg)) / len(seeds))
    return out


# --- closeness to NGL ----------------------------------------------------------------------------

_TARGET: list[Target] = []


def closeness(text: str, primitive_set: str = "paper") -> dict:
    """Symbolic and behavioural distance of a loss (canonical text) to NGL.

    Returns:
        ``{"symbolic", "exact", "distance", "max_grad_error"}``; the behavioural entries are
        ``None`` for trees the probe fitter cannot evaluate (extended primitives).
    """
    if not _TARGET:
        _TARGET.append(Target(NGL.tree, term_weights=False))
    try:
        expr = parse(text, primitive_set)
    except ExprError:
        return {"symbolic": None, "exact": False, "distance": None, "max_grad_error": None}
    out = {"symbolic": round(symbolic_distance(expr), 4),
           "exact": exact_form(expr, NGL, up_to_scale=True) is not None,
           "distance": None, "max_grad_error": None}
    try:
        fit = _TARGET[0].distance(expr.tree)
    except (KeyError, ValueError):
        return out
    out["distance"] = json_safe(fit.distance)
    out["max_grad_error"] = json_safe(fit.max_grad_error)
    return out


# --- the analysis --------------------------------------------------------------------------------

def analyse(run_dir: str | Path, jobs: int = 2, fresh_seeds: int = FRESH_SEEDS) -> dict:
    """Measure a finished (or stopped) run against NGL; trains NGL and the best loss.

    Args:
        run_dir: the run directory of the search.
        jobs: parallel trainings (the run's backend).
        fresh_seeds: training seeds of the final comparison.

    Raises:
        gp_search.engine.rundir.RunFileError: not a readable run directory, or no generation
            finished.
    """
    run = store.load_run(run_dir)
    if not run.generations or not run.hall_of_fame:
        raise store.RunFileError(f"{run.path}: no generation finished yet; nothing to analyse")
    cfg = replace(run.config, jobs=jobs)
    search_seeds = draw_training_seeds(cfg)
    ngl_by_proxy = accuracies(["ngl"], cfg, search_seeds)["ngl"]
    ngl = weighted(ngl_by_proxy, cfg)
    reference = summarize(ngl)
    memo: dict[str, dict] = {}
    trajectory = []
    reached = None
    for r in run.generations:
        text = r.get("best_canonical")
        if text and text not in memo:
            memo[text] = closeness(text, cfg.primitive_set)
        row = {"generation": r["generation"], "seconds": r.get("seconds"), "best": r["best"],
               "expression": text, **memo.get(text, {})}
        trajectory.append(row)
        if reached is None and r["best"] >= reference["mean"]:
            reached = {"generation": r["generation"], "seconds": r.get("seconds"),
                       "best": r["best"], "expression": text}
    fitnesses = full_trainings(run, cfg, search_seeds)
    best = run.hall_of_fame[0]
    seeds = list(range(fresh_seeds))
    accs = accuracies([best["infix"], "ngl"], replace(cfg, fitness_split="test"), seeds)
    fresh = []
    for k, name in enumerate(cfg.proxies):
        a, b = accs[best["infix"]][k], accs["ngl"][k]
        fresh.append({"proxy": name, "best": summarize(a), "ngl": summarize(b),
                      "diff": paired(a, b), "best_values": a, "ngl_values": b})
    a, b = weighted(accs[best["infix"]], cfg), weighted(accs["ngl"], cfg)
    fresh.append({"proxy": "weighted fitness", "best": summarize(a), "ngl": summarize(b),
                  "diff": paired(a, b), "best_values": a, "ngl_values": b})
    return {"run_dir": str(run.path), "finished": run.finished, "config": run.config.to_dict(),
            "search_seeds": search_seeds, "ngl_fitness": {**reference, "values": ngl,
                                                        "by_proxy": ngl_by_proxy},
            "reached": reached, "generations_run": run.generations[-1]["generation"],
            "full_trainings": len(fitnesses),
            "at_or_above_ngl": sum(f >= reference["mean"] for f in fitnesses),
            "seconds_total": run.generations[-1].get("seconds"),
            "best": {"expression": best["canonical"], "infix": best["infix"],
                     "fitness": best["fitness"], "n": best["n"],
                     **(memo.get(best["canonical"])
                        or closeness(best["canonical"], cfg.primitive_set))},
            "fresh_seeds": seeds, "fresh": fresh, "trajectory": trajectory}


def proxy_rediscovery(cfg: SearchConfig, run_dir: str | Path | None = None, jobs: int = 2,
                      fresh_seeds: int = FRESH_SEEDS, quiet: bool = False) -> dict:
    """Run (or resume, or reopen) the search, then :func:`analyse` it.

    Args:
        cfg: the search (see :func:`proxy_config`); ignored when ``run_dir`` is given.
        run_dir: an existing run: resumed when not finished, then analysed.
    """
    if run_dir is None:
        run_dir = run_search(cfg, quiet=quiet)
    elif not store.load_run(run_dir).finished:
        resume(run_dir, quiet=quiet)
    return analyse(run_dir, jobs, fresh_seeds)


# --- the report ----------------------------------------------------------------------------------

def verdict(report: dict) -> str:
    """One line: whether and when the search reached NGL's proxy fitness."""
    ref = report["ngl_fitness"]
    ngl = f"NGL's proxy fitness {ref['mean']:.4f} (n = {ref['n']} seeds)"
    got = report["reached"]
    if got:
        return (f"reached {ngl} at generation {got['generation']} ({number(got['seconds'], '.0f')} s):"
                f" best {got['best']:.4f}, {got['expression']}")
    return (f"did not reach {ngl} in {report['generations_run']} generations; best "
            f"{report['best']['fitness']:.4f}, {report['best']['expression']}")


def closeness_line(report: dict) -> str:
    """One line: how far the best is from NGL, and best − NGL on the fresh seeds."""
    best, diff = report["best"], report["fresh"][-1]["diff"]
    return (f"best vs NGL: symbolic distance {number(best['symbolic'], '.2f')}, exact "
            f"{'yes' if best['exact'] else 'no'}, behavioural D {number(best['distance'], '.2e')}, "
            f"max relative gradient error {number(best['max_grad_error'], '.2e')}; fresh seeds "
            f"(weighted fitness, n = {diff['n']}): best − NGL {diff['diff']:+.4f} "
            f"[{diff['ci_low']:+.4f}, {diff['ci_high']:+.4f}]")


def _ci(s: dict, spec: str = ".4f") -> str:
    return f"{number(s['mean'], spec)} [{number(s['ci_low'], spec)}, {number(s['ci_high'], spec)}]"


def _closeness_cells(c: dict) -> list[str]:
    return [number(c.get("symbolic"), ".2f"), "yes" if c.get("exact") else "no",
            number(c.get("distance"), ".2e"), number(c.get("max_grad_error"), ".2e")]


def markdown(report: dict, command: str = "", figure: str = "proxy_rediscovery.png") -> str:
    """``proxy_rediscovery.md``: the verdict, NGL's fitness, the fresh-seed comparison, the
    distances and the trajectory."""
    cfg, ref, best = report["config"], report["ngl_fitness"], report["best"]
    proxies = ", ".join(f"{p} ×{w:g}" for p, w in zip(cfg["proxies"], _weights(cfg)))
    md = ["# Proxy rediscovery of NGL", "", verdict(report), "",
          (f"Search: the `{cfg['preset'] or 'custom'}` preset from random trees (NGL not seeded), seed "
           f"{cfg['seed']}, population {cfg['population']}, {report['generations_run']} "
           f"generations, {number(report['seconds_total'], '.0f')} s; fitness = weighted mean "
           f"accuracy on {_split_text(cfg)} over {proxies}, n = {cfg['seeds']} training seeds "
           f"per candidate "
           f"(`{report['run_dir']}`)."), "",
          (f"NGL scored exactly like every candidate (same proxies, weights, training seeds "
           f"and budget): fitness {_ci(ref)} (mean [95 % t-CI], n = {ref['n']} seeds: "
           f"{', '.join(f'{v:.4f}' for v in ref['values'])}). *Reached* = the first generation "
           f"whose best fitness is at least NGL's mean. Of the {report['full_trainings']} "
           f"distinct candidates the run trained to the full budget (with successive halving: "
           f"those promoted from a short training), {report['at_or_above_ngl']} scored at "
           f"least NGL's mean."), "",
          f"![best and median fitness by generation, NGL's fitness dashed]({figure})",
          "", "## The best loss against NGL on fresh seeds", "",
          (f"Best: `{best['expression']}` (search fitness {best['fitness']:.4f}, n = "
           f"{best['n']}). Retrained with NGL on training seeds "
           f"{report['fresh_seeds'][0]}–{report['fresh_seeds'][-1]}, paired by seed (same "
           f"initial weights and batches), scored on {_split_text(cfg, 'test')}: "
           f"{_selection_note(cfg)}"), ""]
    rows = [[r["proxy"], _ci(r["best"]), _ci(r["ngl"]),
             f"{r['diff']['diff']:+.4f} [{r['diff']['ci_low']:+.4f}, {r['diff']['ci_high']:+.4f}]",
             number(r["diff"]["p_value"], ".2g"), str(r["diff"]["n"])] for r in report["fresh"]]
    md += md_table(["proxy", "best [95 % CI]", "NGL [95 % CI]", "best − NGL [95 % CI]",
                     "p (paired t)", "n"], rows)
    md += ["", "## How far from NGL", "",
           ("*symbolic*: share of the sub-expressions of the two expanded forms (numbers "
            "other than ±1 as C) that they do not share — 0 same structure, 1 nothing shared; "
            "*exact*: same expanded form, constants within 1e-3, up to a positive factor; "
            "*D*: behavioural distance after the fit a·f + b + c·p + d·t (a > 0; what cannot "
            "change training), 0 identical … 1 unrelated; *E*: max relative error of dL/dp "
            "over the probes at that fit (targeted rediscovery calls E ≤ 1e-2 behavioural "
            "success)."), ""]
    rows = [[str(r["generation"]), number(r["seconds"], ".0f"), f"{r['best']:.4f}",
             *_closeness_cells(r), f"`{r['expression']}`"] for r in report["trajectory"]]
    md += md_table(["generation", "seconds", "best fitness", "symbolic", "exact", "D", "E",
                     "best expression"], rows, "rrrrlrrl")
    if command:
        md += ["", "Command:", "", "```", command, "```"]
    return "\n".join(md) + "\n"


def _split_text(cfg: dict, split: str | None = None) -> str:
    split = split or cfg.get("fitness_split", "test")
    return ("each proxy's test split" if split == "test" else
            "a held-out fifth of each proxy's training split (validation)")


def _selection_note(cfg: dict) -> str:
    if cfg.get("fitness_split", "test") == "test":
        return ("the search selected on these test splits too (other training seeds), so fresh "
                "seeds remove seed luck, not selection on the test samples.")
    return "the search never saw these test samples (its fitness is on the validation part)."


def _weights(cfg: dict) -> list[float]:
    return list(cfg["proxy_weights"]) or [1.0] * len(cfg["proxies"])


def write(report: dict, directory: str | Path, name: str = "proxy_rediscovery",
          command: str = "") -> list[Path]:
    """Write ``NAME.md``, ``NAME.json`` (strict JSON) and ``NAME.png`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_env(directory)
    md, js, png = (directory / f"{name}.{s}" for s in ("md", "json", "png"))
    md.write_text(markdown(report, command, png.name))
    js.write_text(json.dumps(json_safe({**report, "command": command}), indent=2) + "\n")
    run = store.load_run(report["run_dir"])
    ref = report["ngl_fitness"]
    plots.plot_run_fitness(run.generations, png, f"{run.path.name}: paper preset from scratch",
                           (f"NGL ({ref['mean']:.4f}, n = {ref['n']})", ref["mean"],
                            ref["ci_low"], ref["ci_high"]))
    return [md, js, png]
