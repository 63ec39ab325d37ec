#!/usr/bin/env bash
# The scaling experiments in the background, resumable: bash scripts/run_scaling.sh [params/scaling.yaml] [extra bench/scaling.py args]
# Progress goes to results/scaling_qm9_cpu.log; rerun the same command after a kill to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
grid="${1:-params/scaling.yaml}"; shift || true
exec bash scripts/background.sh results/scaling_qm9_cpu.log bench/scaling.py --grid "$grid" "$@"
