#!/usr/bin/env bash
# The recipe on one GPU, at most 8 minutes: checks CUDA and bf16 autocast, then trains the three backbones with flow
# matching for 3 minutes each (three at a time, batch 256, bf16), samples 1,000 molecules each with the EMA weights and
# scores them as the CPU benchmark does. Writes results/generative_qm9_gpu.json (the columns of
# results/generative_qm9_cpu60.json) and the samples beside it (results/generative_qm9_gpu_samples/).
#
#   bash bench/gpu_run.sh              # on a GPU machine
#   bash bench/gpu_run.sh --dry-run    # on a CPU: the same steps at smoke sizes into a temporary folder, about a minute
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || { echo "gpu_run.sh: no $PY (run 'make setup' first, or set PY=...)" >&2; exit 2; }
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
DRY=0; OUT=results/generative_qm9_gpu.json
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "gpu_run.sh: unknown option $1 (use --dry-run, --out FILE)" >&2; exit 2 ;;
  esac
  shift
done
if [ "$DRY" = 1 ]; then
  tmp=$(mktemp -d); [ "$OUT" = results/generative_qm9_gpu.json ] && OUT=$tmp/generative_qm9_gpu.json
  DEV=cpu; EXTRA=(--set stage1_minutes=0.05 --set jobs=2 --set threads_per_run=1 --set n_reference=50 --set set.device=cpu
                  --set set.amp=none --set set.n_train=256 --set set.hidden=16 --set set.layers=1 --set set.batch_size=16
                  --set set.bucket=4 --set set.warmup_steps=2 --set set.n_val=32 --set set.ckpt_every=20 --set set.n_samples=16
                  --set set.sample_batch_size=16 --set set.nfe=4 --set set.n_reference=50)
  RUNS=$tmp/runs
else
  DEV=cuda; EXTRA=(); RUNS=runs/gpu_recipe
fi
"$PY" - "$DEV" <<'PYEOF'
import sys, time, torch
dev = sys.argv[1]
if dev == 'cuda':
    assert torch.cuda.is_available(), "gpu_run.sh: CUDA is not available (use --dry-run on a CPU)"
    print(f"CUDA: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, bf16 supported: {torch.cuda.is_bf16_supported()}")
a = torch.randn(512, 512, device=dev)
with torch.autocast(device_type=dev, dtype=torch.bfloat16, enabled=dev == 'cuda'):
    b = a @ a
print(f"autocast matmul on {dev}: dtype {b.dtype}, finite {bool(torch.isfinite(b).all())}")
PYEOF
"$PY" bench/cpu_recipe.py --grid params/gpu_recipe.yaml --out "$OUT" --runs-root "$RUNS" --stage 1 "${EXTRA[@]}"
echo "results: $OUT"
