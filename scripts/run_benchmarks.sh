#!/usr/bin/env bash
# The nine-combination benchmark in the background, resumable: bash scripts/run_benchmarks.sh [params/benchmark.yaml] [extra args]
# Progress goes to results/benchmark_qm9_cpu.log; rerun the same command after a kill to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
grid="${1:-params/benchmark.yaml}"; shift || true
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
mkdir -p results
nohup .venv/bin/python bench/benchmark.py --grid "$grid" "$@" >> results/benchmark_qm9_cpu.log 2>&1 &
echo "started (pid $!): tail -f results/benchmark_qm9_cpu.log"
