"""Tables as text: numbers with a dash for what nothing measured, Markdown and CSV tables, and
``gp-search evaluate``'s statistics table (:func:`evaluation_table`).

Every report writer (:mod:`gp_search.analysis.report`, :mod:`gp_search.analysis.transfer_tables`,
:mod:`gp_search.rediscovery`) and the command line format numbers through :func:`number`.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter

from gp_search.analysis.stats import paired, summarize
from gp_search.proxies import metric_label


def number(x, spec: str, dash: str = "–") -> str:
    """``x`` formatted with ``spec``, or ``dash`` where it is missing or not finite.

    Example:
        >>> number(0.81234, ".3f"), number(float("nan"), ".3f")
        ('0.812', '–')
    """
    return format(x, spec) if isinstance(x, (int, float)) and math.isfinite(x) else dash


def _csv_value(v) -> str:
    if isinstance(v, float):  # repr: the shortest text that reads back as the same float
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def csv_text(header, rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_csv_value(v) for v in r])
    return buf.getvalue()


def md_table(header: list[str], rows: list[list[str]], align: str = "") -> list[str]:
    """A Markdown table as lines; ``align``: one ``l``/``r`` per column (default: the first
    left, the rest right); ``|`` inside cells is escaped."""
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    cells = [header, sep] + rows
    return ["| " + " | ".join(c if i == 1 else c.replace("|", "\\|") for c in r) + " |"
            for i, r in enumerate(cells)]


def code_label(label: str) -> str:
    return f"`{label}`" if any(ch in label for ch in "*()+-/ ") else label


def _dash(x: float, spec: str) -> str:
    """:func:`number` with the ASCII dash of the console table."""
    return number(x, spec, "-")


def evaluation_table(texts, results, n_seeds) -> tuple[list[list[str]], list[dict]]:
    """``gp-search evaluate``'s table: per loss (``texts``, the first the reference) its metric's
    mean ± std with a 95 % CI over ``n_seeds`` seeds, the paired change against the first loss
    (CI, p) and the trainings that did not finish. ``results``: ``n_seeds`` EvalResults per
    loss, in order. Returns the rows (header first) and the per-loss summaries for ``--json``."""
    acc = [[r.accuracy for r in results[i * n_seeds:(i + 1) * n_seeds]] for i in range(len(texts))]
    first = texts[0] if len(texts[0]) <= 24 else texts[0][:21] + "..."
    metric = metric_label(results[0].metric)
    rows = [["loss", f"{metric} mean ± std", "95% CI", "n", f"diff vs {first}", "95% CI", "p",
             "not ok"]]
    summaries = []
    for i, text in enumerate(texts):
        own = results[i * n_seeds:(i + 1) * n_seeds]
        s = summarize(acc[i])
        vs = paired(acc[i], acc[0]) if i else None
        bad = Counter(r.status for r in own if not r.ok)
        row = [text if len(text) <= 40 else text[:37] + "...",
               f"{_dash(s['mean'], '.4f')} ± {_dash(s['std'], '.4f')}",
               f"[{_dash(s['ci_low'], '.4f')}, {_dash(s['ci_high'], '.4f')}]", str(s["n"])]
        row += ([_dash(vs["diff"], "+.4f"),
                 f"[{_dash(vs['ci_low'], '+.4f')}, {_dash(vs['ci_high'], '+.4f')}]",
                 _dash(vs["p_value"], ".3g")] if vs else ["", "", ""])
        row.append(", ".join(f"{k} x{v}" for k, v in bad.items()))
        rows.append(row)
        summaries.append({"loss": text, "name": own[0].loss, "metric": own[0].metric,
                          "accuracy": s, "vs_first": vs,
                          "statuses": dict(Counter(r.status for r in own))})
    return rows, summaries
