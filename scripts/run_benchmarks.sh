#!/usr/bin/env bash
# The nine-combination benchmark in the background, resumable: bash scripts/run_benchmarks.sh [params/benchmark.yaml] [extra args]
# Progress goes to results/benchmark_qm9_cpu.log; rerun the same command after a kill to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
grid="${1:-params/benchmark.yaml}"; shift || true
exec bash scripts/background.sh results/benchmark_qm9_cpu.log bench/benchmark.py --grid "$grid" "$@"
