"""Does `gp-search run` earn its keep? The quick preset for several search seeds, judged on the report suite.

Issue 20's done-when for the command a new user types first: each run (search and transfer
stage) within 10 minutes wall on 2 cores, and on the report suite (used for no choice) its
``best.py`` below CE on no task and above CE on the mean, and ideally above NGL and label
smoothing too. Two steps, so that a killed benchmark resumes:

    python benchmarks/bench_quick.py run --seeds 0-4 --out results/runs/quick
    python benchmarks/bench_quick.py record --out results/runs/quick [--record results/quick]

``run`` runs ``gp-search run --seed S --out OUT/sS`` (plus ``--`` and any further flags) one
after another, timing each end to end, and skips seeds already done. ``record`` reads each run's
``transfer/choice.json`` and its report suite's ``transfer_seeds.csv`` and gives, per search
seed, the chosen loss's mean change in accuracy against CE, NGL and label smoothing over the
report tasks with a paired 95 % interval over (task, training seed) pairs, the worst task, the
transfer rate and the wall time; then the same means paired over the search seeds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_strategy import seed_list  # noqa: E402  (this folder: the same "0-4" / "0,1,2")
from gp_search.analysis.stats import paired  # noqa: E402
from gp_search.engine import rundir as store  # noqa: E402

BASELINES = ("ce", "ngl", "label_smoothing")
"""What the chosen loss is compared with (the report suite trains them beside it)."""
LIMIT_S = 600.0
"""The done-when's wall-time bound per run."""


def cmd_run(args, extra: list[str]) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for seed in seed_list(args.seeds):
        dest = out / f"s{seed}"
        if (dest / "wall.json").exists():
            continue
        cmd = [sys.executable, "-m", "gp_search", "run", "--seed", str(seed), "--out", str(dest),
               *extra]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        with open(out / f"s{seed}.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
        wall = time.perf_counter() - t0
        store.write_atomic(dest / "wall.json", json.dumps(
            {"seed": seed, "seconds": round(wall, 1), "rc": rc, "command": cmd,
             "load_before": load, "load_after": os.getloadavg()[0]}))
        print(f"seed {seed}: rc {rc}, {wall:.0f} s wall (load {load:.1f} before)", flush=True)


def _accuracies(path: Path) -> dict:
    """(loss, task) -> {training seed: accuracy} from a ``transfer_seeds.csv``."""
    acc: dict = defaultdict(dict)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["status"] == "ok":
                acc[row["loss"], row["task"]][int(row["seed"])] = float(row["accuracy"])
    return acc


def judge(run_dir: Path) -> dict:
    """The chosen loss against each baseline on the run's report suite."""
    choice = json.loads(store.RunDir(run_dir).choice.read_text())
    acc = _accuracies(store.RunDir(run_dir).transfer_report / "transfer_seeds.csv")
    label = f"hof-{choice['hof_rank']}"
    tasks = sorted({t for _, t in acc})
    out = {"canonical": choice["canonical"], "hof_rank": choice["hof_rank"],
           "transfer_rate": choice.get("transfer_rate"), "top": choice.get("top"),
           "worst_task": choice["worst_task"], "tasks_worse": choice["tasks_worse"],
           "mean_ece": choice.get("mean_ece"), "ce_mean_ece": choice.get("ce_mean_ece")}
    for base in BASELINES:
        a, b, per_task = [], [], []
        for t in tasks:
            seeds = sorted(set(acc[label, t]) & set(acc[base, t]))
            a += [acc[label, t][s] for s in seeds]
            b += [acc[base, t][s] for s in seeds]
            per_task.append(sum(acc[label, t][s] - acc[base, t][s] for s in seeds) / len(seeds))
        d = paired(a, b)
        out[base] = {"mean_pp": 100 * sum(per_task) / len(per_task),
                     "ci_pp": [100 * d["ci_low"], 100 * d["ci_high"]], "p": d["p_value"],
                     "n": d["n"], "tasks": len(tasks)}
    return out


def cmd_record(args) -> None:
    out = Path(args.out)
    rows = []
    for wall in sorted(out.glob("s*/wall.json"), key=lambda p: int(p.parent.name[1:])):
        info = json.loads(wall.read_text())
        run_dir = next((d for d in wall.parent.iterdir() if d.is_dir()), None)
        if info["rc"] != 0 or run_dir is None:
            print(f"seed {info['seed']}: failed (rc {info['rc']})")
            continue
        rows.append({"seed": info["seed"], "seconds": info["seconds"], **judge(run_dir)})
    lines = ["| search seed | wall s | best.py (hall-of-fame rank) | vs CE, pp [95% CI] | "
             "vs NGL | vs label smoothing | tasks below CE | transfer rate | ECE (CE's) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [f"{r[b]['mean_pp']:+.2f} [{r[b]['ci_pp'][0]:+.2f}, {r[b]['ci_pp'][1]:+.2f}]"
                 for b in BASELINES]
        lines.append(f"| {r['seed']} | {r['seconds']:.0f} | `{r['canonical']}` (#{r['hof_rank']}) "
                     f"| {' | '.join(cells)} | {r['tasks_worse']} | {r['transfer_rate']}/{r['top']}"
                     f" | {r['mean_ece']:.3f} ({r['ce_mean_ece']:.3f}) |")
    summary = []
    for base in BASELINES:
        means = [r[base]["mean_pp"] for r in rows]
        d = paired(means, [0.0] * len(means))
        summary.append(f"- vs {base}: mean over {len(rows)} search seeds {d['diff']:+.2f} pp "
                       f"[95% CI {d['ci_low']:+.2f}, {d['ci_high']:+.2f}], p = {d['p_value']:.2g}; "
                       f"above on the mean for {sum(m > 0 for m in means)} of {len(means)}")
    summary.append(f"- below CE on no report task (paired CI wholly below 0 on none): "
                   f"{sum(r['tasks_worse'] == 0 for r in rows)} of {len(rows)}")
    summary.append(f"- wall time: {min(r['seconds'] for r in rows):.0f}-"
                   f"{max(r['seconds'] for r in rows):.0f} s; within {LIMIT_S:.0f} s: "
                   f"{sum(r['seconds'] <= LIMIT_S for r in rows)} of {len(rows)}")
    text = "\n".join(lines + [""] + summary) + "\n"
    print(text)
    if args.record:
        dest = Path(args.record)
        dest.mkdir(parents=True, exist_ok=True)
        store.write_atomic(dest / "quick.json", json.dumps({"runs": rows}, indent=1))
        store.write_atomic(dest / "quick.md", text)
        print(f"wrote {dest / 'quick.json'}, {dest / 'quick.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run gp-search run per seed (flags after -- are passed on)")
    r.add_argument("--seeds", default="0-4")
    r.add_argument("--out", default="results/runs/quick")
    c = sub.add_parser("record", help="judge every finished run on its report suite")
    c.add_argument("--out", default="results/runs/quick")
    c.add_argument("--record", default="", help="directory for quick.json and quick.md")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    cmd_run(args, extra) if args.command == "run" else cmd_record(args)


if __name__ == "__main__":
    main()
