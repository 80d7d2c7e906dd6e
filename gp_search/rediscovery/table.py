"""The targeted-rediscovery success table: k/N summary, per-seed rows, files, lever tables.

``gp-search reproduce-ngl target --seeds N --table DIR`` writes ``DIR/NAME.md`` (table,
definitions, settings, levers, command, environment), ``NAME.csv`` (one row per seed) and
``NAME.json`` (counts and the full settings). An ablation is the same command with ``--set``
and ``--table DIR/rediscovery_levers``; the main table lists each such summary by the settings
where it differs from the main table's.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from gp_search.analysis import number
from gp_search.core import ENV_FILE, versions, write_env

LEVERS_DIR = "rediscovery_levers"
"""Subdirectory of ``--table`` whose ablation summaries the main table lists."""
CSV_COLUMNS = ("seed", "level", "generation", "seconds", "expression", "max_rel_grad_error",
               "distance", "size", "behavioural_generation", "behavioural_seconds",
               "exact_generation", "exact_seconds", "generations_run", "seconds_total",
               "restarts", "confirmed", "accuracy", "loss")


def behavioural(outcomes: list) -> list:
    """The outcomes that count as behavioural successes: the gradient criterion reached and,
    when the proxy confirmation ran, passed (exact implies behavioural)."""
    return [o for o in outcomes
            if o.behavioural_generation is not None and o.confirmed is not False]


def table_markdown(outcomes: list, reference: dict | None = None) -> str:
    """The k/N summary and one row per seed, as Markdown; ``reference``: NGL's accuracy summary
    of the proxy confirmation (adds its column)."""
    from gp_search.rediscovery.confirm import CONFIRM_PROXY

    n = len(outcomes)
    exact = [o for o in outcomes if o.level == "exact"]
    behav = behavioural(outcomes)
    proxy = (f" and {CONFIRM_PROXY} accuracy within NGL's 95 % CI, {reference['mean']:.4f} "
             f"[{reference['ci_low']:.4f}, {reference['ci_high']:.4f}], n = {reference['n']} "
             f"seeds") if reference else ""
    acc = ["", ""] if reference is None else [f" {CONFIRM_PROXY} acc. |", "---:|"]
    lines = [f"behavioural success: {len(behav)}/{n} seeds (max relative gradient error ≤ 1e-2"
             f"{proxy}{_range(behav, 'behavioural')})",
             f"exact success: {len(exact)}/{n} seeds{_range(exact, 'exact')}", "",
             "| seed | level | generation | seconds | behavioural at (gen, s) | restarts | "
             f"max rel. grad. error |{acc[0]} size | expression |",
             f"|---:|---|---:|---:|---:|---:|---:|{acc[1]}---:|---|"]
    for o in outcomes:
        cell = "" if reference is None else \
            f" {number(o.accuracy, '.4f')}{'' if o.confirmed is not False else ' (outside)'} |"
        lines.append(
            f"| {o.seed} | {o.level} | {number(o.generation, 'd')} | {number(o.seconds, '.1f')} | "
            f"{number(o.behavioural_generation, 'd')}, {number(o.behavioural_seconds, '.1f')} | "
            f"{o.restarts} | {o.max_grad_error:.2e} |{cell} {o.size} | `{o.expression}` |")
    return "\n".join(lines)


def _range(items: list, level: str) -> str:
    if not items:
        return ""
    gens = sorted(getattr(o, f"{level}_generation") for o in items)
    secs = sorted(getattr(o, f"{level}_seconds") for o in items)
    return (f"; generation median {gens[len(gens) // 2]} (range {gens[0]}–{gens[-1]}), seconds "
            f"median {secs[len(secs) // 2]:.1f} (range {secs[0]:.1f}–{secs[-1]:.1f})")


def table_csv(outcomes: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for o in outcomes:
        d = o.to_dict()
        d["max_rel_grad_error"] = d.pop("max_grad_error")
        w.writerow(["" if d.get(c) is None else d[c] for c in CSV_COLUMNS])
    return buf.getvalue()


DEFINITIONS = [
    "Each seed evolves random trees over the paper primitive set (add, sub, mul, exp, sin, cos; "
    "y_pred, y_real, 1, constants uniform on [-3, 3]) with the engine's generation loop; nothing "
    "about NGL is in the operators, the constants or the start. Fitness is the behavioural "
    "distance D to NGL (`gp_search/rediscovery/behaviour.py`): on 452 probe elements (p on a grid in (0, 1) "
    "for t = 0 and 1, plus the elements of 32 softmax rows over K = 10 classes) the relative "
    "errors of the loss values and of dL/dp, after the fit of a*f + b + c*p + d*t (a > 0; what "
    "cannot change training), RMS over RMS with no candidate; selection on -log10 D - "
    "parsimony * size.",
    "",
    "*behavioural*: max relative gradient error over the probes <= 1e-2 (generation and "
    "seconds when first reached). *exact*: the expanded SymPy form has NGL's structure and "
    "every constant within 1e-3 relative; with term weights the proposed loss is "
    "sum_i w_i * term_i, whose overall positive factor behaviour cannot identify, so it is "
    "fixed by setting one term's coefficient to +-1 (2*NGL counts, NGL + 0.3*p does not).",
]


def summary(outcomes: list, rcfg, command: str) -> dict:
    """Counts, times and the settings that differ from the defaults (for the levers table)."""
    from dataclasses import asdict

    from gp_search.rediscovery.targeted import RediscoveryConfig

    default = asdict(RediscoveryConfig())
    settings = {k: v for k, v in rcfg.to_dict().items() if k not in ("seed", "out")}
    changed = {k: v for k, v in settings.items() if v != default[k]}
    exact = sorted(o.exact_seconds for o in outcomes if o.level == "exact")
    return {"n": len(outcomes), "exact": len(exact), "behavioural": len(behavioural(outcomes)),
            "exact_seconds_median": exact[len(exact) // 2] if exact else None,
            "settings": settings, "changed": changed, "command": command}


def _levers(directory: Path, rcfg) -> list[str]:
    """The ablation rows, each setting shown where it differs from ``rcfg`` (the main table's;
    ``confirm`` aside: ablations count the gradient criterion only)."""
    main = rcfg.to_dict()
    rows = []
    for path in sorted((directory / LEVERS_DIR).glob("*.json")):
        if path.name == ENV_FILE:  # the machine's record (environment.write_env), no table
            continue
        s = json.loads(path.read_text())
        changed = ", ".join(f"{k} = {v}" for k, v in s["settings"].items()
                            if k != "confirm" and main.get(k) != v) or "the same"
        med = "–" if s["exact_seconds_median"] is None else f"{s['exact_seconds_median']:.1f}"
        rows.append(f"| {path.stem} | {changed} | {s['behavioural']}/{s['n']} | "
                    f"{s['exact']}/{s['n']} | {med} |")
    if not rows:
        return []
    return ["## What each lever buys", "",
            f"The same command with the settings shown changed (`--set`), tables in "
            f"`{LEVERS_DIR}/`; behavioural there is the gradient criterion alone (no proxy "
            f"confirmation).", "",
            "| run | setting | behavioural | exact | median s to exact |",
            "|---|---|---:|---:|---:|", *rows, ""]


def write_table(outcomes: list, directory: Path, command: str, rcfg,
                name: str = "rediscovery", reference: dict | None = None) -> list[Path]:
    """Write ``NAME.md`` (table, settings, levers, command, environment), ``NAME.csv`` and the
    ``NAME.json`` summary.

    Returns:
        The paths written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    write_env(directory)
    env = versions()
    settings = ", ".join(f"{k} = {v}" for k, v in rcfg.to_dict().items()
                         if k not in ("seed", "out"))
    md = ["# Targeted rediscovery of NGL", "",
          table_markdown(outcomes, reference), "", *DEFINITIONS, "",
          "Seconds are wall-clock from the start of a seed's search (generation 0 included) to "
          "the generation where the level was first reached, measured as run (other work may "
          "have shared the CPU).", "",
          f"Settings: {settings}.", "", *_levers(directory, rcfg),
          "Command:", "", "```", command, "```",
          "", "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()) + "."]
    paths = [directory / f"{name}.{suffix}" for suffix in ("md", "csv", "json")]
    paths[0].write_text("\n".join(md) + "\n")
    paths[1].write_text(table_csv(outcomes))
    paths[2].write_text(json.dumps(summary(outcomes, rcfg, command), indent=2) + "\n")
    return paths
