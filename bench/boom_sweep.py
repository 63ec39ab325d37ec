#!/usr/bin/env python
"""Run BOOM model families on tasks under one profile and write the results table (ours beside BOOM's published RMSEs).

The table is rewritten atomically after every (model, task) pair, so an interrupted sweep keeps what it finished and a
rerun skips the pairs already in it. Every pair also has its own run folder (metrics.json, predictions, parity plot).

Usage: OMP_NUM_THREADS=1 python bench/boom_sweep.py --models rf,chemprop --tasks all --profile cpu --out results/boom_cpu.csv
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', required=True, help='comma-separated PROPERTY_MODELS names')
    ap.add_argument('--tasks', default='all', help="comma-separated BOOM tasks, or 'all'")
    ap.add_argument('--profile', default='cpu', help='smoke | cpu | gpu (or a YAML path)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'boom'))
    ap.add_argument('--out', required=True, help='results CSV')
    ap.add_argument('--predictions', default=None,
                    help='folder that receives each pair\'s ID/OOD predictions as <model>_<task>_<profile>.csv (for the book)')
    a = ap.parse_args(argv)
    from molbench.boom import sweep, available_models
    from molbench.boomdata import BOOM_TASKS
    from molbench.core import check_choice, write_text
    models = a.models.split(',')
    for m in models: check_choice('model', m, available_models())
    tasks = list(BOOM_TASKS) if a.tasks == 'all' else a.tasks.split(',')
    for t in tasks: check_choice('task', t, BOOM_TASKS)
    out = Path(a.out)
    table = pd.read_csv(out) if out.exists() else pd.DataFrame()
    for task in tasks:
        for model in models:
            if len(table) and ((table['model'] == model) & (table['task'] == task) & (table['profile'] == a.profile)).any():
                print(f"{model} on {task}: already in {out}, skipped"); continue
            row = sweep([model], [task], a.profile, run_dir=a.runs_root, seed=a.seed).assign(profile=a.profile, seed=a.seed)
            table = pd.concat([table, row], ignore_index=True)
            write_text(out, table.to_csv(index=False))
            r = row.iloc[0]
            print(f"{model} on {task}: ID RMSE {r.id_rmse:.4g}, OOD RMSE {r.ood_rmse:.4g} ({r.wall_seconds:.0f} s) → {out}")
    if a.predictions:  # keep the test-set predictions beside the table (the run folders are not part of the repository)
        dest = Path(a.predictions); dest.mkdir(parents=True, exist_ok=True)
        for r in table.itertuples():
            src, tgt = Path(r.run_dir) / 'predictions.csv', dest / f"{r.model}_{r.task}_{r.profile}.csv"
            if src.exists() and not tgt.exists(): write_text(tgt, src.read_text())

if __name__ == '__main__':
    main()
