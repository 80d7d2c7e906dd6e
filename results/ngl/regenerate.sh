#!/usr/bin/env bash
# Regenerates everything in results/ngl from the repository root's installed gp-search:
#   1. compare.md, compare.csv, compare_seeds.csv, reliability.csv, confidence.csv and the three
#      PNGs: NGL against the baselines on 3 embedded proxies x 5 seeds (gp-search compare);
#   2. rediscovery.md, rediscovery.csv: targeted rediscovery of NGL over 10 seeds
#      (gp-search reproduce-ngl; its run directories go to a temporary folder).
# Deterministic per seed on CPU; only the wall time depends on the machine (see README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

for cmd in compare reproduce-ngl; do
    if ! gp-search "$cmd" --help >/dev/null 2>&1; then
        echo "regenerate.sh: 'gp-search $cmd' is not registered in gp_search/cli.py" >&2
        exit 1
    fi
done

gp-search compare --proxy digits-mlp --proxy digits-cnn --proxy mnist1d-cnn --seeds 5 \
    --jobs 2 --out results/ngl

runs=$(mktemp -d)
gp-search reproduce-ngl --mode target --seeds 10 --jobs 2 --out "$runs" --table results/ngl
