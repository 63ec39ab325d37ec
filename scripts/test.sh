#!/usr/bin/env bash
# The test command (README and CI run exactly this through `make test`): notebook tests, then end-to-end checks.
# Extra arguments go to nbdev_test (e.g. --flags slow).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 JUPYTER_PREFER_ENV_PATH=1 PYTHONHASHSEED=0
# Reference data for tests: ../shared/data when it exists (CI), else whatever MOLBENCH_DATA_DIR says, else downloads.
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
start=$SECONDS
nbdev_test --n_workers 2 --timing "$@"
echo "notebook tests: $((SECONDS - start)) s"
python -m pytest tests -q -p no:cacheprovider
echo "all tests: $((SECONDS - start)) s"
