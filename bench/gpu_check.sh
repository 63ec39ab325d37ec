#!/usr/bin/env bash
# GPU check, at most 8 minutes on one GPU:
#   1. DDP on one GPU: the data-parallel self-check under torchrun (NCCL), against the same check without a process
#      group (max parameter difference);
#   2. bf16 autocast and torch.compile (inductor) through the trainer;
#   3. training molecules/s per backbone (default sizes of params/<arch>.yaml + flow_matching.yaml, the sizes of
#      results/throughput_cpu.json) for fp32, bf16 and bf16 + compile, beside the CPU figure; then one row per backbone
#      at the paper's sizes (params/gpu.yaml, bf16) if time is left.
# Writes <out>/throughput.json (+ throughput_gpu_profile.json) and <out>/log.txt (the check's parameters go to a temp dir).
#
#   bash bench/gpu_check.sh                 # on a GPU machine: results/gpu_check/
#   bash bench/gpu_check.sh --dry-run       # on a CPU: the same steps at smoke sizes (gloo, compile backend 'eager'), seconds
#   bash bench/gpu_check.sh --out DIR       # elsewhere
#   bash bench/gpu_check.sh --archs gnn     # fewer backbones (comma-separated; default gnn,transformer,pairformer)
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0; OUT=""; ARCHS=gnn,transformer,pairformer
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT="$2"; shift ;;
    --archs) ARCHS="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (use --dry-run, --out DIR, --archs A,B)" >&2; exit 2 ;;
  esac
  shift
done

PY=${PY:-.venv/bin/python}
TORCHRUN=${TORCHRUN:-.venv/bin/torchrun}
[ -x "$PY" ] || { echo "gpu_check.sh: no $PY (run 'make setup' first, or set PY=...)" >&2; exit 2; }
[ -x "$TORCHRUN" ] || TORCHRUN="$PY -m torch.distributed.run"

if [ "$DRY" = 1 ]; then
  OUT=${OUT:-$(mktemp -d)/gpu_check}
  DEVICE=cpu; CHECK="--device cpu --dtype float64 --steps 4"; CONFIGS=none:none,none:eager
  BENCH="--profile smoke --steps 2 --warmup 3 --n-train 64"; BUDGET=300; TOL=1e-9
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
else
  OUT=${OUT:-results/gpu_check}
  DEVICE=cuda; CHECK="--device cuda --dtype float32 --steps 50"; CONFIGS=none:none,bf16:none,bf16:inductor
  BENCH="--steps 30 --warmup 5 --n-train 2000"; BUDGET=470; TOL=1e-4
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
fi
mkdir -p "$OUT"
CK=$(mktemp -d)                       # the self-check's parameter files (not results)
trap 'rm -rf "$CK"' EXIT
LOG="$OUT/log.txt"; : > "$LOG"
say() { echo "$*" | tee -a "$LOG"; }
left() { echo $(( BUDGET - SECONDS )); }
step() {  # step NAME SECONDS_CAP COMMAND...: run with a timeout inside the budget, log everything
  local name=$1 cap=$2; shift 2
  local t=$(( $(left) < cap ? $(left) : cap ))
  if [ "$t" -lt 10 ]; then say "[$name] skipped: the ${BUDGET}s budget is spent"; return 0; fi
  say ""; say "[$name] (at most ${t}s) $*"
  local t0=$SECONDS
  if timeout --kill-after=10 "$t" "$@" 2>&1 | tee -a "$LOG"; then say "[$name] done in $(( SECONDS - t0 ))s"
  else say "[$name] FAILED or timed out after $(( SECONDS - t0 ))s"; FAILED=1; fi
}
FAILED=0

say "molbench GPU check ($( [ "$DRY" = 1 ] && echo "dry run on the CPU" || echo "device $DEVICE" )), budget ${BUDGET}s, output $OUT"
"$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import torch
print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}", end='')
print(f", {torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}, bf16 supported: {torch.cuda.is_bf16_supported()}"
      if torch.cuda.is_available() else '')
EOF
if [ "$DRY" = 0 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  say "gpu_check.sh: no CUDA device here; use --dry-run on a CPU machine"; exit 2
fi

# 1. DDP on one GPU (torchrun, one process: the DDP code path with NCCL / gloo) vs the same check without a process group
step ddp 150 $TORCHRUN --standalone --nproc_per_node=1 -m molbench.training.distributed check $CHECK --out "$CK/ddp_check_torchrun.pt"
step plain 90 "$PY" - "$CK" "$TOL" $CHECK <<'EOF'
import sys, torch
from molbench.training.distributed import parser, run_check
out, tol = sys.argv[1], float(sys.argv[2])
c = parser().parse_args(['check', *sys.argv[3:]])            # the same check, in this process, without a process group
b = run_check(c.arch, c.steps, c.batch_size, c.n, c.hidden, c.layers, dtype=c.dtype, device=c.device, out=f'{out}/ddp_check_plain.pt')
a = torch.load(f'{out}/ddp_check_torchrun.pt', weights_only=False)
d, de = (a['params'] - b['params']).abs().max().item(), (a['ema'] - b['ema']).abs().max().item()
print(f"DDP ({a['world_size']} process, {a['backend']}, {a['device']}) vs no process group: max |Δ parameter| {d:.3g}, "
      f"max |Δ EMA| {de:.3g} after {a['steps']} steps (tolerance {tol:g}); {a['samples_per_s']:.0f} vs {b['samples_per_s']:.0f} structures/s")
sys.exit(0 if d <= tol and de <= tol else 1)
EOF

# 2 + 3. AMP and torch.compile through the trainer, training molecules/s per backbone beside the CPU figure
step throughput 330 "$PY" -m molbench.training.distributed bench --archs "$ARCHS" --device $DEVICE --configs $CONFIGS $BENCH \
  --cpu-json results/throughput_cpu.json --json "$OUT/throughput.json"
if [ "$DRY" = 0 ]; then
  step paper_sizes 120 "$PY" -m molbench.training.distributed bench --archs "$ARCHS" --device cuda --profile gpu --configs bf16:none --steps 10 --warmup 3 \
    --n-train 2000 --json "$OUT/throughput_gpu_profile.json"
fi

say ""; say "gpu_check: $( [ "$FAILED" = 0 ] && echo "all steps passed" || echo "SOME STEPS FAILED" ) in ${SECONDS}s; log and JSON in $OUT"
exit "$FAILED"
