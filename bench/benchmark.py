#!/usr/bin/env python
"""The nine-combination benchmark at equal compute: every backbone × process at each FLOPs budget and seed.

For every (arch, gen, budget, seed) of the grid (default params/benchmark.yaml) the number of optimiser steps is the
budget divided by the training FLOPs of one step of that configuration (counted by FlopCounterMode on its own batches,
`generative.flops.flops_report`), so every combination trains for the same compute. Each run samples `n_samples`
molecules with its EMA weights; the samples are scored by `molbench.metrics.evaluate_molecules` against the first
`n_reference` molecules of the **validation** and of the **test** split (novelty against the training SMILES), and copied
(XYZ) under `<out stem>_samples/` so a reader can check every number.

The results file holds provenance, one row per run (`rows`: arch, gen, seed, flops_budget, steps, FLOPs, the metrics on
val and test) and `cells`: per (arch, gen, budget) the mean and 95 % t-interval over seeds of each metric, and per budget
a ranking with pairwise Welch t-tests (Holm-corrected) saying which differences are significant at 5 %.

Resumable: rows already in the file are skipped; an interrupted run continues in its folder (<runs-root>/<name>).

Usage: OMP_NUM_THREADS=1 python bench/benchmark.py [--grid params/benchmark.yaml] [--out results/benchmark_qm9_cpu.json]
                                                   [--runs-root runs/benchmark] [--summary-only]
"""
from __future__ import annotations
import argparse, itertools, json, math, os, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable   # the same provenance record as the scaling experiments

METRICS = ('atom_stability', 'mol_stability', 'validity', 'uniqueness', 'vxu', 'novelty', 'validity_rdkit_bonds',
           'w1_bond_length', 'w1_bond_angle', 'w1_n_atoms', 'coverage_recall', 'fcd')
CRYSTAL_METRICS = ('struct_validity', 'comp_validity', 'validity', 'cov_recall', 'cov_precision', 'w1_density', 'w1_n_elements')
CRYSTALS = ('perov5', 'carbon24', 'mp20')     # scored with CDVAE's metrics (molbench.metrics.crystals.evaluate_crystals)
HIGHER_IS_BETTER = {m: not m.startswith(('w1_', 'fcd')) for m in METRICS + CRYSTAL_METRICS}


def steps_for(p, budget: float) -> tuple[int, float]:
    "(optimiser steps that spend `budget` training FLOPs, FLOPs of one step) for the run parameters `p` (seed 0's batches: every seed gets the same steps)."
    import dataclasses
    from molbench.generative.runner import build_data, build_model, build_process
    p = dataclasses.replace(p, seed=0)
    from molbench.generative.flops import flops_report
    data = build_data(p)
    model, process = build_model(p, data), build_process(p, data)
    fl = flops_report(model, process, data.dataset, p.batch_size, p.nfe, n_samples=8, n_atoms_hist=data.n_atoms_hist,
                      sample_batch_size=8, seed=p.seed)
    per = fl['train_flops_per_step']
    return max(1, int(round(budget / per))), per


_REFS: dict = {}   # (split, n) → MoleculeReference (with its ChemNet statistics), and the training SMILES: built once

def score_crystals(run_dir: Path, p, n_reference: int, splits=('test',)) -> dict:
    "The run's crystals scored with CDVAE's metrics against the first `n_reference` crystals of each split in `splits`."
    import torch
    from molbench.core import Batch
    from molbench.data.crystals import load_crystals
    from molbench.metrics.crystals import crystal_reference, evaluate_crystals
    s = Batch(**torch.load(run_dir / 'samples.pt', weights_only=False))
    out = {}
    for split in splits:
        key = (p.dataset, split, n_reference)
        if key not in _REFS: _REFS[key] = crystal_reference(list(load_crystals(p.dataset, split, n=n_reference, progress=False)))
        m = evaluate_crystals(s, _REFS[key], dataset=p.dataset)
        out[split] = {k: m.get(k) for k in CRYSTAL_METRICS} | {'n_samples': m['n_samples'], 'n_reference': len(_REFS[key])}
    return out


def score(run_dir: Path, p, n_reference: int) -> dict:
    "The run's samples scored against the first `n_reference` molecules of the validation and of the test split (crystals: `score_crystals` on the test split)."
    if p.dataset in CRYSTALS: return score_crystals(run_dir, p, n_reference)
    import torch
    from molbench.data import load_qm9
    from molbench.metrics.molecules import edm_training_smiles, evaluate_molecules, molecule_reference
    from molbench.generative.runner import finite_ids
    from molbench.core import Batch
    s = Batch(**torch.load(run_dir / 'samples.pt', weights_only=False))
    good = finite_ids(s)
    samples = (s.z[good], s.x[good], s.node_mask[good])
    key = ('train', p.n_train)
    if key not in _REFS: _REFS[key] = edm_training_smiles(load_qm9('train', p.n_train))
    out = {}
    for split in ('val', 'test'):
        if (split, n_reference) not in _REFS:
            _REFS[(split, n_reference)] = molecule_reference(list(load_qm9(split, n_reference)), fcd=True)
        m = evaluate_molecules(samples, _REFS[(split, n_reference)], training_smiles=_REFS[key], fcd=True)
        out[split] = {k: m.get(k) for k in METRICS} | {'n_samples': m['n_samples'], 'notes': m.get('notes', {})}
    return out


def copy_samples(run_dir: Path, sdir: Path, name: str) -> Path | None:
    "Copy a run's samples beside the results: `<name>.xyz` (molecules), or its CIF files concatenated into `<name>.cif` (crystals)."
    sdir.mkdir(parents=True, exist_ok=True)
    if (run_dir / 'samples.xyz').exists():
        shutil.copyfile(run_dir / 'samples.xyz', sdir / f'{name}.xyz'); return sdir / f'{name}.xyz'
    cifs = sorted((run_dir / 'cif').glob('*.cif'))
    if not cifs: return None
    (sdir / f'{name}.cif').write_text(''.join(f.read_text() for f in cifs)); return sdir / f'{name}.cif'


def t_interval(x, level: float = 0.95) -> tuple[float, float, float]:
    "(mean, low, high): the t-interval of the mean over seeds (NaN bounds with one seed)."
    import numpy as np
    from scipy import stats
    x = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=float)
    if len(x) == 0: return (math.nan, math.nan, math.nan)
    m = float(x.mean())
    if len(x) < 2: return (m, math.nan, math.nan)
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return (m, m - h, m + h)


def holm(pvals: dict) -> dict:
    "Holm-adjusted p-values of a family of tests {key: p}."
    keys = sorted(pvals, key=lambda k: pvals[k])
    adj, running = {}, 0.0
    for i, k in enumerate(keys):
        running = max(running, min(1.0, (len(keys) - i) * pvals[k]))
        adj[k] = running
    return adj


def summarise(rows: list[dict], split: str = 'test', rank_by: str = 'atom_stability') -> dict:
    "Per (arch, gen, budget): mean and 95 % interval of every metric; per budget: the ranking by `rank_by` with significance."
    import numpy as np
    from scipy import stats
    splits = sorted({sp for r in rows for sp in r['metrics']}) or ['val', 'test']
    metrics = CRYSTAL_METRICS if rows and 'struct_validity' in rows[0]['metrics'].get(split, {}) else METRICS
    cells = {}
    for r in rows:
        cells.setdefault((r['arch'], r['gen'], r['flops_budget']), []).append(r)
    out = []
    for (arch, gen, b), rs in sorted(cells.items()):
        c = {'arch': arch, 'gen': gen, 'flops_budget': b, 'seeds': sorted(r['seed'] for r in rs), 'steps': rs[0]['steps']}
        for sp in splits:
            c[sp] = {m: dict(zip(('mean', 'lo', 'hi'), t_interval([r['metrics'][sp].get(m) for r in rs]))) for m in metrics}
        out.append(c)
    rankings = {}
    for b in sorted({c['flops_budget'] for c in out}):
        here = [c for c in out if c['flops_budget'] == b]
        vals = {(c['arch'], c['gen']): [r['metrics'][split].get(rank_by) for r in cells[(c['arch'], c['gen'], b)]] for c in here}
        sign = 1 if HIGHER_IS_BETTER[rank_by] else -1
        order = sorted(vals, key=lambda k: -sign * np.nanmean([v for v in vals[k] if v is not None] or [np.nan]))
        pv = {}
        for a_, b_ in itertools.combinations(order, 2):
            xa = [v for v in vals[a_] if v is not None]; xb = [v for v in vals[b_] if v is not None]
            if len(xa) >= 2 and len(xb) >= 2 and (np.std(xa) > 0 or np.std(xb) > 0):
                pv[(a_, b_)] = float(stats.ttest_ind(xa, xb, equal_var=False).pvalue)
            else: pv[(a_, b_)] = 1.0 if np.mean(xa or [0]) == np.mean(xb or [0]) else math.nan
        adj = holm({k: v for k, v in pv.items() if not math.isnan(v)})
        rankings[str(b)] = {'by': f'{rank_by} on {split}', 'order': [f'{a}:{g}' for a, g in order],
                            'pairs': [{'better': f'{a[0]}:{a[1]}', 'worse': f'{c_[0]}:{c_[1]}', 'p': pv[(a, c_)],
                                       'p_holm': adj.get((a, c_)), 'significant': adj.get((a, c_), 1.0) < 0.05}
                                      for (a, c_) in pv]}
    return {'cells': out, 'rankings': rankings}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'benchmark.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / 'benchmark_qm9_cpu.json'))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'benchmark'))
    ap.add_argument('--summary-only', action='store_true', help='only recompute the cells and rankings')
    a = ap.parse_args(argv)
    import yaml
    from molbench.core import write_json
    from molbench.generative import run
    from molbench.generative.runner import resolve_params
    g = yaml.safe_load(Path(a.grid).read_text())
    out = Path(a.out); sdir = out.with_name(out.stem + '_samples')
    old = json.loads(out.read_text()) if out.exists() else {}
    rows = {r['name']: r for r in old.get('rows', [])}
    prov = provenance(argv, 'bench/benchmark.py')
    def save():
        rs = sorted(rows.values(), key=lambda r: r['name'])
        total = sum(r['cpu_s'] for r in rs)
        write_json(out, {**prov, 'grid': g, 'budget': {'cpu_hours': round(total / 3600, 3), 'runs': len(rs),
                                                        'note': 'CPU seconds of this process per run (step count, training, sampling, '
                                                                'scoring); FLOPs budgets far below published training (EDM: ~3,000 GPU epochs)'},
                         'rows': rs, **summarise(rs, rank_by=g.get('rank_by', 'atom_stability'))})
    if a.summary_only: save(); print(f"summary → {out}"); return
    todo = [(x, y, b, s) for b in g['flops_budgets'] for x in g['archs'] for y in g['gens'] for s in g['seeds']]
    todo = [t for t in todo if f'{t[0]}-{t[1]}-C{t[2]:.0e}-s{t[3]}' not in rows]
    print(f"{len(todo)} run(s) to do, {len(rows)} done → {os.path.relpath(out, ROOT)}", flush=True)
    for k, (arch, gen, budget, seed) in enumerate(todo, 1):
        name = f'{arch}-{gen}-C{budget:.0e}-s{seed}'
        c0, w0 = time.process_time(), time.perf_counter()
        kw = dict(arch=arch, gen=gen, dataset=g.get('dataset', 'qm9'), seed=seed, **(g.get('set') or {}))
        p = resolve_params(g.get('profile'), **kw)
        steps, per = steps_for(p, float(budget))
        m = run(profile=g.get('profile'), steps=steps, run_dir=str(Path(a.runs_root) / name), **kw)
        rd = Path(m['run_dir'])
        sc = score(rd, p, g.get('n_reference', 1000))
        copied = copy_samples(rd, sdir, name)
        rows[name] = _jsonable({'name': name, 'arch': arch, 'gen': gen, 'seed': seed, 'flops_budget': float(budget),
                                'steps': steps, 'train_flops_per_step': per, 'train_flops': (m.get('compute') or {}).get('train_flops'),
                                'n_params': m.get('n_params'), 'val_loss': (m.get('validation') or {}).get('val_loss'),
                                'metrics': sc, 'samples': os.path.relpath(copied, ROOT) if copied else None,
                                'cpu_s': round(time.process_time() - c0, 1), 'wall_s': round(time.perf_counter() - w0, 1),
                                'run_dir': os.path.relpath(rd, ROOT)})
        save()
        t = sc['test']
        head = (f"COV-R {t['cov_recall']:.3f}, COV-P {t['cov_precision']:.3f}" if 'cov_recall' in t else
                f"atom stab {t['atom_stability']:.3f}, mol stab {t['mol_stability']:.3f}")
        print(f"[{k}/{len(todo)}] {name}: {steps} steps; test {head}, validity {t['validity']:.3f}; {rows[name]['cpu_s']:.0f} s CPU", flush=True)


if __name__ == '__main__':
    main()
