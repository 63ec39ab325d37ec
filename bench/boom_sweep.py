#!/usr/bin/env python
"""Run BOOM model families on tasks under one profile and write the results table (ours beside BOOM's published RMSEs).

The table is rewritten atomically after every (model, task) pair, so an interrupted sweep keeps what it finished and a
rerun skips the pairs already in it — unless a row was computed on an earlier split recipe (its `split_recipe`, or
none recorded: see molbench.data.boom.LEGACY_SPLIT_RECIPES), which is run again and replaced; rows are merged by
(model, task, profile, seed), so none is ever duplicated. Every
pair also has its own run folder (metrics.json, predictions, parity plot); a pair killed before its row was written is
run again in a new folder (BOOM runs are short and never overwrite a folder). Every row records its provenance: the
command, the git commit (and whether the code was modified), the hardware and the thread setting.
With --jobs N, N pairs run at once in separate processes (one thread each unless OMP_NUM_THREADS says otherwise); the
table is still written by this process only. With --executor slurm (or local / debug, submitit's executors on this
machine) every pair is one job of a job array (molbench.training.cluster), with --gpus-per-job GPUs; this process waits and writes
each pair's row as its job finishes. A requeued job (preemption, time limit) runs its pair again in a new folder.

Usage: OMP_NUM_THREADS=1 python bench/boom_sweep.py --models rf,chemprop --tasks all --profile cpu --out results/boom_cpu.csv
       [--executor slurm --gpus-per-job 1 --partition gpu --timeout-min 120 --setup 'source .venv/bin/activate']
"""
from __future__ import annotations
import argparse, os, sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = ('model', 'task', 'profile', 'seed')   # one row per (model, task) pair of a profile and seed

def merge_rows(table: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    "`table` with `new`'s rows added, replacing any earlier row of the same (model, task, profile, seed): never a duplicate."
    key = [k for k in KEY if k in new.columns and (table.empty or k in table.columns)]
    if not len(table): return new.reset_index(drop=True)
    stale = pd.MultiIndex.from_frame(table[key].astype(str)).isin(pd.MultiIndex.from_frame(new[key].astype(str)))
    return pd.concat([table[~stale], new], ignore_index=True)

def has_row(table: pd.DataFrame, model: str, task: str, profile: str, seed: int,
            recipe: str | None = None,   # count only rows computed on this split recipe (None: any)
            legacy: str | None = None    # the recipe of rows that record none (written before recipes were recorded)
           ) -> bool:
    "Is the pair already in the table (at this profile, this seed where the table records seeds, and this split recipe)?"
    if not len(table): return False
    hit = (table['model'] == model) & (table['task'] == task) & (table['profile'] == profile)
    if 'seed' in table.columns: hit &= table['seed'].astype(str) == str(seed)
    if recipe is not None:
        rec = table['split_recipe'] if 'split_recipe' in table.columns else pd.Series(None, index=table.index, dtype=object)
        hit &= rec.fillna(legacy if legacy is not None else '') == recipe
    return bool(hit.any())

def _run_pair(model, task, profile, runs_root, seed):
    from molbench.training.cluster import boom_pair           # the same call a cluster job makes
    return boom_pair(model, task, profile, runs_root, seed)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--models', required=True, help='comma-separated PROPERTY_MODELS names')
    ap.add_argument('--tasks', default='all', help="comma-separated BOOM tasks, or 'all'")
    ap.add_argument('--profile', default='cpu', help='smoke | cpu | gpu (or a YAML path)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--jobs', type=int, default=1, help='pairs run at once, each in its own process')
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'boom'))
    ap.add_argument('--out', required=True, help='results CSV')
    ap.add_argument('--predictions', default=None,
                    help='folder that receives each pair\'s ID/OOD predictions as <model>_<task>_<profile>.csv (for the book)')
    from molbench.training.cluster import add_executor_args, executor_from_args, submit, collect, SweepJob
    add_executor_args(ap)
    a = ap.parse_args(argv)
    from molbench.boom.runner import available_models
    from molbench.data.boom import BOOM_TASKS, LEGACY_SPLIT_RECIPES, split_recipe, task_dataset
    from molbench.core import check_choice, write_text
    from molbench.training.trainer import fault_point
    models = a.models.split(',')
    for m in models: check_choice('model', m, available_models())
    tasks = list(BOOM_TASKS) if a.tasks == 'all' else a.tasks.split(',')
    for t in tasks: check_choice('task', t, BOOM_TASKS)
    if a.jobs < 1: ap.error(f'--jobs must be at least 1, got {a.jobs}')
    out = Path(a.out)
    table = pd.read_csv(out) if out.exists() else pd.DataFrame()
    if len(table): table = table.drop_duplicates([k for k in KEY if k in table.columns], keep='last', ignore_index=True)
    todo = []
    for task in tasks:
        for model in models:
            rec = split_recipe(task)
            if has_row(table, model, task, a.profile, a.seed, rec, LEGACY_SPLIT_RECIPES[task_dataset(task)]):
                print(f"{model} on {task}: already in {out}, skipped")
            else:
                if has_row(table, model, task, a.profile, a.seed):   # there, but computed on an earlier split
                    print(f"{model} on {task}: the row in {out} is from an earlier split recipe, not {rec}: "
                          f"running it again (the new row replaces it)")
                todo.append((model, task))

    sys.path.insert(0, str(ROOT / 'bench'))
    from scaling import provenance
    prov = provenance(argv if argv is not None else sys.argv[1:], 'bench/boom_sweep.py')
    hw, th = prov['hardware'], prov['threads']
    stamp = {'command': prov['command'], 'git_commit': prov['git_commit'][:12], 'git_dirty': prov['git_dirty'],
             'hardware': f"{hw['device']}, {hw['cpu_count']} cores, torch {hw['torch']}",
             'threads': th.get('OMP_NUM_THREADS') or 'default'}

    def record(row):
        nonlocal table
        if 'run_dir' in row: row = row.assign(run_dir=[os.path.relpath(v, ROOT) for v in row['run_dir']])   # no path of this machine
        row = row.assign(**stamp)           # every row says which command, code version and machine produced it
        table = merge_rows(table, row)
        fault_point('sweep_row')            # test hook: a kill with the pair finished, its row not yet written
        write_text(out, table.to_csv(index=False))
        r = row.iloc[0]
        print(f"{r.model} on {r.task}: ID RMSE {r.id_rmse:.4g}, OOD RMSE {r.ood_rmse:.4g} ({r.wall_seconds:.0f} s, "
              f"stopped: {r.get('stop_reason', '') or 'n/a'}) → {out}", flush=True)

    ex = executor_from_args(a)
    if ex is not None:                      # one submitit job per pair (one array); rows written as jobs finish
        kws = [dict(model=m, task=t, profile=a.profile, runs_root=a.runs_root, seed=a.seed) for m, t in todo]
        jobs = submit(ex, SweepJob('boom'), kws)
        print(f"submitted {len(jobs)} job(s) to {a.executor}; logs in {a.jobs_folder}", flush=True)
        collect(jobs, todo, lambda key, r: record(r['result']), poll_s=a.poll_s)   # a failed pair is reported, the others kept
    elif a.jobs == 1:
        for model, task in todo: record(_run_pair(model, task, a.profile, a.runs_root, a.seed))
    else:
        import multiprocessing as mp
        with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context('spawn')) as ex:
            futs = {ex.submit(_run_pair, m, t, a.profile, a.runs_root, a.seed): (m, t) for m, t in todo}
            for f in as_completed(futs):
                try: record(f.result())
                except Exception as e:   # one failing pair must not lose the others: report it, keep going
                    print(f"{futs[f][0]} on {futs[f][1]}: FAILED ({type(e).__name__}: {e})", file=sys.stderr, flush=True)
    if a.predictions:  # keep the test-set predictions beside the table (the run folders are not part of the repository)
        dest = Path(a.predictions); dest.mkdir(parents=True, exist_ok=True)
        for r in table.itertuples():
            src, tgt = ROOT / r.run_dir / 'predictions.csv', dest / f"{r.model}_{r.task}_{r.profile}.csv"
            if src.exists() and not tgt.exists(): write_text(tgt, src.read_text())

if __name__ == '__main__':
    main()
