#!/usr/bin/env bash
# Regenerates results/transfer/ (issue 15, item 6). Run from the repository root with the
# package installed (pip install -e .). About 40-60 minutes on an idle 2-core VM; see README.md.
#   1. a from-scratch search with the paper preset (search suite, soft-min fitness, racing),
#      capped at 2100 s of search (all 20 generations took 1,261 s), then its transfer stage:
#      the hall of fame's top 5 beside CE, NGL, label smoothing and focal on the held-out `transfer` suite, 5 seeds;
#   2. GP against random search, and GP with the plain mean as fitness (the ablation of the
#      soft minimum), 3 search seeds each, at the quick preset's suite, bests on `transfer`.
set -euo pipefail
out=results/transfer
runs=${RUNS:-runs/transfer-study}
mkdir -p "$runs"
python -m gp_search run --preset paper --seed 0 --jobs 2 --time-budget 2100 \
    --out "$runs/paper" | tee "$out/paper_run.log"
run=$(ls -d "$runs"/paper/*-paper-s0 | tail -1)
rm -rf "$out/paper-run" && mkdir -p "$out/paper-run"
cp "$run"/{config.json,env.json,generations.jsonl,hall_of_fame.csv,best.py} "$out/paper-run/"
cp -r "$run/transfer" "$out/paper-run/transfer"
python benchmarks/bench_strategy.py --preset quick --population 16 --generations 6 \
    --seeds 0,1,2 --variants gp,random,gp-mean --transfer-suite transfer --transfer-seeds 2 \
    --jobs 2 --out "$runs/strategy" | tee "$out/strategy.txt"
