"""The transfer stage's results as text: the console summary, ``transfer.md`` and the CSV files.

:func:`write_transfer` writes ``transfer.md`` (the summary of change against CE per task with
paired 95 % CIs, one table per task, the losses), ``transfer.csv`` (one row per task and loss,
:data:`gp_search.analysis.transfer.ROW_FIELDS`), ``transfer_seeds.csv`` (every training) and
``env.json``; :func:`format_transfer` is what ``gp-search transfer`` prints. Nothing here trains.
"""

from __future__ import annotations

from pathlib import Path

from gp_search.analysis.compare import BASELINE
from gp_search.analysis.tables import code_label, csv_text, md_table, number
from gp_search.analysis.transfer import ROW_FIELDS, OwnTask, Transfer, metric_name, nan_mean
from gp_search.core import write_env
from gp_search.proxies import TASK_NOTES


def _pp(x) -> str:
    return number(100 * x, "+.1f") if isinstance(x, float) else "–"


def metric_of(res: Transfer, task: str | None = None) -> str:
    """The tasks' metric as printed (``"accuracy"``, ``"mIoU"``, or ``"accuracy/mIoU"`` for a
    mixed suite); of one task when ``task`` is given."""
    return "/".join(dict.fromkeys(metric_name(t) for t in res.tasks
                                  if task is None or t.name == task))


def summary_rows(res: Transfer) -> tuple[list[str], list[list[str]]]:
    """Change vs CE in points per task (paired 95 % CI), then the mean and the worst task."""
    rows = {(r["task"], r["loss"]): r for r in res.rows}
    names = [t.name for t in res.tasks]
    header = ["loss"] + names + ["mean", "worst task", "ECE (after T)"]
    ce_rows = [rows[(t, BASELINE)] for t in names]
    out = [[f"CE ({metric_of(res)} %)"] + [number(100 * r["acc_mean"], ".1f") for r in ce_rows]
           + ["0", "", _ece_pair(nan_mean([r["ece_mean"] for r in ce_rows]),
                                 nan_mean([r["ece_scaled_mean"] for r in ce_rows]))]]
    agg = {a["loss"]: a for a in res.aggregate}
    for e in res.entries[1:]:
        mine = [rows[(t, e.label)] for t in names]
        cells = [f"{_pp(r['diff_vs_ce'])} [{_pp(r['diff_ci_low'])}, {_pp(r['diff_ci_high'])}]"
                 for r in mine]
        a = agg[e.label]
        out.append([code_label(e.label)] + cells
                   + [_pp(a["mean_diff"]), f"{a['worst_task']} ({_pp(a['worst_diff'])})",
                      _ece_pair(a["mean_ece"], a["mean_ece_scaled"])])
    return header, out


def _ece_pair(raw: float, scaled: float) -> str:
    """``0.213 (0.031)``: the ECE, and in brackets after temperature scaling."""
    return f"{number(raw, '.3f')} ({number(scaled, '.3f')})"


def detail_rows(res: Transfer, task: str) -> tuple[list[str], list[list[str]]]:
    """One task: its metric (mean, CI), ECE, change vs CE (paired CI, p), ECE after T, T, n,
    not ok."""
    header = ["loss", f"{metric_of(res, task)} %", "95% CI", "ECE", "change vs CE (pp)",
              "95% CI (paired)", "p (paired t)", "ECE after T", "T", "n", "not ok"]
    out = [[code_label(r["loss"]), number(100 * r["acc_mean"], ".2f"),
            f"[{number(100 * r['acc_ci_low'], '.2f')}, {number(100 * r['acc_ci_high'], '.2f')}]",
            number(r["ece_mean"], ".3f"),
            _pp(r["diff_vs_ce"]), f"[{_pp(r['diff_ci_low'])}, {_pp(r['diff_ci_high'])}]",
            number(r["p_value"], ".3g"), number(r["ece_scaled_mean"], ".3f"),
            number(r["temperature_mean"], ".3g"), str(r["n"]), str(r["not_ok"] or "–")]
           for r in res.rows if r["task"] == task]
    return header, out


def format_transfer(res: Transfer) -> str:
    """The summary as fixed-width text (what ``gp-search transfer`` prints)."""
    header, rows = summary_rows(res)
    rows = [[c.strip("`") for c in r] for r in rows]
    # One line per (loss, task): the summary's columns are too wide for a terminal.
    lines = [f"suite {res.suite}: n = {len(res.seeds)} seeds, change vs CE in points "
             f"[paired 95% CI]; ECE (after temperature scaling)"]
    for r in rows[1:]:
        lines.append(f"{r[0]}: mean {r[-3]}, worst {r[-2]}, ECE {r[-1]}")
        lines += [f"  {t:<24} {c}" for t, c in zip(header[1:-3], r[1:-3])]
    ce = ", ".join(f"{t} {a}" for t, a in zip(header[1:-3], rows[0][1:-3]))
    return "\n".join([lines[0], f"CE {metric_of(res)} %: {ce}; ECE {rows[0][-1]}"] + lines[1:])


def transfer_markdown(res: Transfer, command: str = "") -> str:
    """``transfer.md``: the summary, one table per task, the tasks and the method."""
    n = len(res.seeds)
    md = [f"# Transfer: suite `{res.suite}`", ""]
    if command:
        md += ["Command:", "", "```", command, "```", ""]
    md += [f"Seeds {','.join(map(str, res.seeds))} (n = {n} per loss and task; every loss with "
           "the same initial weights and batch order as CE on each seed).", "",
           f"## Change in test {metric_of(res)} against CE (percentage points)", "",
           ("Per task: mean over the n seed pairs, paired 95 % t-interval in brackets. `mean`: "
            "unweighted mean over the tasks; `worst task`: the task with the most negative "
            "change. A training that did not finish scores chance (1/K)"
            + "".join(f" ({t.name}: {t.failed:g})" for t in res.tasks if isinstance(t, OwnTask))
            + ". `ECE (after T)`: the "
            "expected calibration error (15 bins) of the test softmax, mean over tasks and "
            "finished seeds, and in brackets after temperature scaling, the temperature T "
            "fitted by NLL on one half of the test split and applied to the other (both ways); "
            "`T` in the task tables is the fitted temperature (T > 1: the loss left the model "
            "over-confident, T < 1: under-confident; divide the logits by T to undo it)."), ""]
    md += md_table(*summary_rows(res))
    for proxy in res.tasks:
        rows = [r for r in res.rows if r["task"] == proxy.name]
        what = (f"{proxy.description}; a training that did not finish scores {proxy.failed:g}"
                if isinstance(proxy, OwnTask) else
                f"{rows[0]['classes']} classes; {proxy.spec.description}"
                f"{'' if not proxy.overrides else f' (here: {proxy.overrides})'}; "
                f"{TASK_NOTES.get(proxy.name, '')}")
        md += ["", f"## {proxy.name}", "",
               f"{what}. Seconds per training (mean over losses and seeds): "
               f"{number(sum(r['seconds_mean'] for r in rows) / len(rows), '.2f')}.", ""]
        md += md_table(*detail_rows(res, proxy.name))
    md += ["", "## Losses", ""]
    md += md_table(["label", "text", "from"], [[code_label(e.label), f"`{e.spec}`", e.origin]
                                                for e in res.entries], "lll")
    md += ["", "Files: `transfer.csv` (these rows, fractions), `transfer_seeds.csv` (every "
           "training), `env.json` (machine and command)."]
    return "\n".join(md) + "\n"


def write_transfer(res: Transfer, out: str | Path, command: str = "") -> list[Path]:
    """Write ``transfer.md``, ``transfer.csv``, ``transfer_seeds.csv`` and ``env.json``.

    Args:
        res: what :func:`transfer` returned.
        out: directory (created).
        command: the command line, quoted in ``transfer.md`` (``env.json`` records
            ``sys.argv``).

    Returns:
        The files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"transfer.md": transfer_markdown(res, command),
             "transfer.csv": csv_text(ROW_FIELDS, [[r[k] for k in ROW_FIELDS] for r in res.rows]),
             "transfer_seeds.csv": csv_text(
                 ("task", "loss", "seed", "status", "accuracy", "seconds", "message", "ece",
                  "ece_scaled", "temperature"),
                 [[t, label, r.seed, r.status, r.accuracy, r.seconds, r.message, r.ece,
                   r.ece_scaled, r.temperature]
                  for (t, label), rs in res.results.items() for r in rs])}
    for name, text in files.items():
        (out / name).write_text(text)
    return [out / n for n in files] + [write_env(out)]
