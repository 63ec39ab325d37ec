#!/usr/bin/env python
"""Near duplicates between BOOM's training split and its test splits, and what they do to the fingerprint baselines' scores.

For each task (default all ten) the splits are loaded as the `cpu` profile loads them for the descriptor families (the
same exclusions and the same seeded subsample, so the training molecules are exactly those the rf / mlp / ridge runs of
that profile saw). For every ID and OOD test molecule, `nearest_train_similarity` gives the highest Morgan-fingerprint
(radius 2, 2,048 bits) Tanimoto similarity to a training molecule. The file records, per task, the distribution of that
similarity for ID and OOD and the fraction at or above each threshold; and, for every committed prediction file of the
task (results/boom_predictions/<model>_<task>_<profile>.csv), the OOD RMSE on the molecules with a near duplicate
(similarity ≥ `--near`) and on the rest. A model that owes its OOD score to recall shows a large gap between the two.

Usage: OMP_NUM_THREADS=1 python bench/boom_near_duplicates.py [--tasks all] [--profile cpu] [--near 0.9]
                                                              [--out results/boom_near_duplicates_cpu.json]
"""
from __future__ import annotations
import argparse, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable

THRESHOLDS = (0.7, 0.8, 0.9, 1.0)


def rmse(y, p) -> float | None:
    "The runner's RMSE over finite pairs; None when there is none."
    from molbench.boom.runner import regression_metrics
    m = regression_metrics(y, p)
    return m['rmse'] if m['n'] else None


def split_by_similarity(pred, sim: dict, near: float) -> dict:
    "OOD RMSE of a prediction frame (id, split, y, y_pred) on molecules with a near duplicate in training (sim ≥ near) and on the rest."
    import numpy as np
    o = pred[pred.split == 'ood']
    s = np.array([sim.get(i, np.nan) for i in o.id])
    hit, miss = s >= near, s < near
    return {'ood_rmse': rmse(o.y, o.y_pred), 'n_ood': int(len(o)), 'n_unmatched': int(np.isnan(s).sum()),
            'near': {'n': int(hit.sum()), 'rmse': rmse(o.y[hit], o.y_pred[hit])},
            'rest': {'n': int(miss.sum()), 'rmse': rmse(o.y[miss], o.y_pred[miss])}}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tasks', default='all')
    ap.add_argument('--profile', default='cpu')
    ap.add_argument('--near', type=float, default=0.9, help='the similarity at or above which a test molecule has a near duplicate')
    ap.add_argument('--predictions', default=str(ROOT / 'results' / 'boom_predictions'))
    ap.add_argument('--data-dir', default=None)
    ap.add_argument('--out', default=str(ROOT / 'results' / 'boom_near_duplicates_cpu.json'))
    a = ap.parse_args(argv)
    import numpy as np, pandas as pd
    from molbench.core import write_json, check_choice
    from molbench.boom.models import nearest_train_similarity
    from molbench.boom.runner import load_splits, get_profile, boom_task_names
    tasks = boom_task_names() if a.tasks == 'all' else [check_choice('task', t, boom_task_names()) for t in a.tasks.split(',')]
    prof = get_profile(a.profile)
    out, res = Path(a.out), {}
    prov = provenance(argv, 'bench/boom_near_duplicates.py')
    for task in tasks:
        t0 = time.perf_counter()
        frames, _ = load_splits(task, prof, seed=0, data_dir=a.data_dir)
        tr = frames['train']
        info = {'n_train': int(len(tr))}
        sims = {}
        for split in ('id', 'ood'):
            df = frames[split]
            s = nearest_train_similarity(tr.smiles, df.smiles)
            sims.update(zip(df.id, s))
            info[split] = {'n': int(len(df)), 'quantiles': dict(zip(('q10', 'q50', 'q90', 'max'),
                                                                    map(float, np.nanquantile(s, [0.1, 0.5, 0.9, 1.0])))),
                           'at_least': {f'{t:g}': float(np.mean(s >= t)) for t in sorted(set(THRESHOLDS) | {a.near})}}
        models = {}
        for f in sorted(Path(a.predictions).glob(f'*_{task}_{prof.name}.csv')):
            model = f.name[:-len(f'_{task}_{prof.name}.csv')]
            models[model] = split_by_similarity(pd.read_csv(f), sims, a.near)
        info['models'] = models
        info['seconds'] = round(time.perf_counter() - t0, 1)
        res[task] = info
        write_json(out, {**prov, 'profile': prof.name, 'near': a.near, 'fingerprint': 'Morgan radius 2, 2048 bits, Tanimoto',
                         'tasks': _jsonable(res)})
        r4 = lambda x: x if x is None else round(x, 4)
        best = ', '.join(f"{m} {r4(v['near']['rmse'])} / {r4(v['rest']['rmse'])}" for m, v in models.items() if m in ('mlp', 'ridge', 'rf'))
        print(f"{task}: OOD with a near duplicate (≥ {a.near:g}) {info['ood']['at_least'][f'{a.near:g}']:.3f}, "
              f"ID {info['id']['at_least'][f'{a.near:g}']:.3f}; OOD RMSE near / rest: {best}", flush=True)


if __name__ == '__main__':
    main()
