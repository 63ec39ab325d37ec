#!/usr/bin/env bash
# Start a long bench script in the background, appending to a log: bash scripts/background.sh LOG SCRIPT [ARGS…]
# One thread unless OMP_NUM_THREADS says otherwise; reference data from ../shared/data when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
log="$1"; shift
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
mkdir -p "$(dirname "$log")"
nohup .venv/bin/python "$@" >> "$log" 2>&1 &
echo "started (pid $!): tail -f $log"
