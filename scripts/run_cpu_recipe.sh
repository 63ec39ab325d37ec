#!/usr/bin/env bash
# The CPU benchmark of the training recipe in the background, resumable: bash scripts/run_cpu_recipe.sh [params/cpu_recipe.yaml] [extra args]
# Progress goes to results/generative_qm9_cpu60.log; rerun the same command after a kill to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
grid="${1:-params/cpu_recipe.yaml}"; shift || true
exec bash scripts/background.sh results/generative_qm9_cpu60.log bench/cpu_recipe.py --grid "$grid" "$@"
