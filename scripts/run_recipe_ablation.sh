#!/usr/bin/env bash
# The recipe on full QM9, cause by cause, on one machine at one budget (issue 11's before/after): three bench/cpu_recipe.py
# invocations, each resumable (rerun this script after a kill: finished rows are skipped). gnn backbone, seed 0, 20
# training minutes on one thread per run, two runs at a time, 1,000 samples each at 100 NFE (params/cpu_recipe.yaml).
#   results/recipe_before_qm9_cpu.json    the settings before issue 11 (velocity target, type scale 0.25, uniform times,
#                                         Kabsch-only coupling, Heun, lr 5e-4 held flat, no size buckets): flow matching
#   results/recipe_baseline_qm9_cpu.json  the recipe (params/cpu_recipe.yaml) as it is: flow matching and diffusion
#   results/recipe_options_qm9_cpu.json   the recipe plus the two options the learning tests needed: I-CFM path noise
#                                         (σ = 0.2) for flow matching, the min-SNR weight (γ = 5) for diffusion; and the
#                                         interpolant's recipe (a second run of its stage-1 row on this machine)
# Progress goes to results/recipe_ablation.log.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
py=.venv/bin/python
$py bench/cpu_recipe.py --out results/recipe_options_qm9_cpu.json --runs-root runs/recipe_options --stage 1 \
  --set 'archs=[gnn]' --set 'gens=[flow_matching,diffusion,stochastic_interpolant]' --set gen_cfg.flow_matching.path_sigma=0.2 \
  --set gen_cfg.diffusion.loss_weight=min_snr --set gen_cfg.diffusion.snr_gamma=5
$py bench/cpu_recipe.py --out results/recipe_baseline_qm9_cpu.json --runs-root runs/recipe_baseline --stage 1 \
  --set 'archs=[gnn]' --set 'gens=[flow_matching,diffusion]'
$py bench/cpu_recipe.py --out results/recipe_before_qm9_cpu.json --runs-root runs/recipe_before --stage 1 \
  --set 'archs=[gnn]' --set 'gens=[flow_matching]' \
  --set 'gen_cfg.flow_matching={param: velocity, type_scale: 0.25, solver: heun, align: true, atom_ot: false, t_sampler: uniform, loss_weight: none}' \
  --set set.lr=0.0005 --set set.warmup_steps=100 --set set.schedule_span=steps --set set.bucket=0
