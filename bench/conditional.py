#!/usr/bin/env python
"""Property-conditional generation on QM9, scored as EDM scores it (Hoogeboom et al. 2022, eval_conditional_qm9.py).

QM9's training split is cut into EDM's halves (`load_qm9('train_a' | 'train_b')`: EDM's seed-42 permutation). For each
property of the grid (default params/conditional.yaml):

1. a property predictor (molbench's BOOM `egnn` family; EDM used an EGNN regressor) trains on half A;
2. the bounds are computed on half B: **QM9** — the predictor's MAE on B (the lower bound); **random** — its MAE against
   B's targets shuffled (EDM's "naive" upper bound); **#atoms** — the MAE of predicting each molecule's property as the
   median of A's molecules with the same atom count (a predictor that sees only the atom count);
3. a conditional generator trains on half B (`run(split='train_b', condition=[prop])`) and samples `n_samples` molecules
   for targets drawn with their atom counts from B, at each guidance scale of the grid;
4. the score is the predictor's MAE between each generated molecule's target and its prediction, over every generated
   molecule (EDM does not filter by stability), beside the EDM stability of the samples.

The results file (default results/conditional_qm9_cpu.json) holds provenance, the grid (with the published table of
REFERENCE.md §6, labelled as published), `predictors` (one per property: budget and MAE on B) and `rows` (one per
property × guidance: MAE, bounds, stability, the committed samples). Units: α Bohr³, Δε / HOMO / LUMO meV, μ D, Cv
cal/(mol·K), as EDM's table. Resumable: finished predictors, generators and rows are kept.

Usage: OMP_NUM_THREADS=1 python bench/conditional.py [--grid params/conditional.yaml] [--out results/conditional_qm9_cpu.json]
                                                     [--runs-root runs/conditional] [--properties alpha,gap]
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable

HARTREE_MEV = 27211.386246          # QM9's HOMO, LUMO and gap are in Hartree; EDM's table in meV
DISPLAY = {'homo': HARTREE_MEV, 'lumo': HARTREE_MEV, 'gap': HARTREE_MEV}


def frame(z_list, pos_list, y, smiles=None):
    "The property models' row format: id, smiles, y, z, pos."
    import pandas as pd
    return pd.DataFrame({'id': range(len(z_list)), 'smiles': smiles if smiles is not None else [None] * len(z_list),
                         'y': list(map(float, y)), 'z': list(z_list), 'pos': list(pos_list)})


def dataset_frame(ds, prop: str, n: int | None = None):
    "Rows of the first `n` molecules of a QM9 dataset with property `prop`."
    import numpy as np
    n = len(ds) if n is None else min(n, len(ds))
    recs = [ds[i] for i in range(n)]
    return frame([np.asarray(r.z) for r in recs], [np.asarray(r.pos, dtype=np.float32) for r in recs],
                 ds.properties([prop])[:n, 0], [r.smiles for r in recs])


def samples_frame(samples: dict):
    "Rows of generated molecules (samples.pt: x, z, node_mask, y = targets), real atoms only; finite ones."
    import numpy as np
    z, x, m, y = (samples[k].numpy() for k in ('z', 'x', 'node_mask', 'y'))
    keep = [i for i in range(len(z)) if np.isfinite(x[i][m[i]]).all()]
    return frame([z[i][m[i]] for i in keep], [x[i][m[i]].astype(np.float32) for i in keep], y[keep, 0]), len(z) - len(keep)


def count_median_mae(n_a, y_a, n_b, y_b) -> float:
    "MAE on B of predicting each molecule's property as the median over A's molecules with its atom count (A's median if none)."
    import numpy as np
    n_a, y_a, n_b, y_b = map(np.asarray, (n_a, y_a, n_b, y_b))
    med = {int(k): float(np.median(y_a[n_a == k])) for k in np.unique(n_a)}
    pred = np.array([med.get(int(k), float(np.median(y_a))) for k in n_b])
    return float(np.abs(pred - y_b).mean())


def bounds(pred_b, y_b, n_a, y_a, n_b, seed: int = 0) -> dict:
    "EDM's bounds on half B: the predictor's MAE (QM9), against shuffled targets (random), and the atom-count-only MAE."
    import numpy as np
    pred_b, y_b = np.asarray(pred_b, dtype=float), np.asarray(y_b, dtype=float)
    ok = np.isfinite(pred_b)
    shuffled = y_b[ok][np.random.default_rng(seed).permutation(ok.sum())]
    return {'qm9': float(np.abs(pred_b[ok] - y_b[ok]).mean()), 'random': float(np.abs(pred_b[ok] - shuffled).mean()),
            'n_atoms': count_median_mae(n_a, y_a, n_b, y_b), 'n_b': int(ok.sum())}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'conditional.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / 'conditional_qm9_cpu.json'))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'conditional'))
    ap.add_argument('--properties', default=None, help="comma-separated subset of the grid's properties")
    a = ap.parse_args(argv)
    import numpy as np, pickle, torch, yaml
    from molbench.core import write_json, atomic_write
    from molbench.boom.runner import get_model
    from molbench.data import load_qm9
    from molbench.generative import run
    from molbench.generative.runner import register_all
    from molbench.metrics.molecules import analyse_edm, stability
    from molbench.core import Batch
    register_all()
    g = yaml.safe_load(Path(a.grid).read_text())
    props = a.properties.split(',') if a.properties else g['properties']
    out, runs = Path(a.out), Path(a.runs_root); runs.mkdir(parents=True, exist_ok=True)
    sdir = out.with_name(out.stem + '_samples')
    old = json.loads(out.read_text()) if out.exists() else {}
    preds, rows = old.get('predictors', {}), {r['name']: r for r in old.get('rows', [])}
    prov = provenance(argv, 'bench/conditional.py')
    def save():
        write_json(out, {**prov, 'grid': g, 'units': {p: ('meV' if p in DISPLAY else g.get('units', {}).get(p)) for p in props},
                         'predictors': preds, 'rows': sorted(rows.values(), key=lambda r: r['name'])})
    A, B = load_qm9('train_a', g.get('n_a')), load_qm9('train_b', g.get('n_b'))
    val = load_qm9('val', g.get('n_val_predictor'))
    for prop in props:
        scale = DISPLAY.get(prop, 1.0)
        pfile = runs / f'predictor-{prop}.pkl'
        if pfile.exists(): model = pickle.loads(pfile.read_bytes())
        else:
            c0 = time.process_time()
            model = get_model(g['predictor']['family'], **(g['predictor'].get('config') or {}))
            model.fit(dataset_frame(A, prop), dataset_frame(val, prop))
            blob = pickle.dumps(model); atomic_write(pfile, lambda t: t.write_bytes(blob))
            pb = model.predict(dataset_frame(B, prop))
            b = bounds(pb, B.properties([prop])[:, 0], A.n_atoms, A.properties([prop])[:, 0], B.n_atoms, g.get('seed', 0))
            preds[prop] = {'family': g['predictor']['family'], 'config': g['predictor'].get('config'), 'n_a': len(A),
                           'n_val': len(val), 'cpu_s': round(time.process_time() - c0, 1),
                           'bounds': {k: (v * scale if k != 'n_b' else v) for k, v in b.items()}}
            save()
        for s in g['guidance']:
            name = f"{prop}-{g['set'].get('arch', 'gnn')}-{g['set'].get('gen', 'flow_matching')}-w{s:g}"
            if name in rows: continue
            c0 = time.process_time()
            m = run(split='train_b', n_train=g.get('n_b'), condition=[prop], guidance=float(g['guidance'][0]),
                    run_dir=str(runs / f'gen-{prop}'), **g['set'])       # one generator per property, trained once
            rd = Path(m['run_dir'])
            if s != g['guidance'][0]:                                  # another guidance scale: only the sampling changes
                from nfe_sweep import load_run
                from molbench.generative.runner import generate, write_samples
                pp, data, gm, proc = load_run(rd)
                pp.guidance = gm.guidance = float(s)
                smp_b, _ = generate(pp, gm, proc, data)
                rd = runs / f'gen-{prop}-w{s:g}'; rd.mkdir(exist_ok=True)
                write_samples(rd, smp_b, False)
            smp = torch.load(rd / 'samples.pt', weights_only=False)
            df, n_bad = samples_frame(smp)
            p = model.predict(df, smiles=False)
            ok = np.isfinite(p)
            st = stability(analyse_edm(Batch(**smp)))
            sdir.mkdir(parents=True, exist_ok=True); shutil.copyfile(rd / 'samples.xyz', sdir / f'{name}.xyz')
            rows[name] = _jsonable({'name': name, 'property': prop, 'guidance': float(s), 'arch': m['arch'], 'gen': m['gen'],
                                    'n_samples': len(smp['z']),
                                    'mae': float(np.abs(p[ok] - df.y.values[ok]).mean()) * scale, 'n_scored': int(ok.sum()),
                                    'n_non_finite': n_bad, 'bounds': preds[prop]['bounds'],
                                    'atom_stability': st.get('atom_stability'), 'mol_stability': st.get('mol_stability'),
                                    'steps': (m.get('train') or {}).get('steps'), 'samples': os.path.relpath(sdir / f'{name}.xyz', ROOT),
                                    'cpu_s': round(time.process_time() - c0, 1), 'run_dir': os.path.relpath(rd, ROOT)})
            save()
            r = rows[name]
            print(f"{name}: MAE {r['mae']:.4g} (QM9 {r['bounds']['qm9']:.4g}, #atoms {r['bounds']['n_atoms']:.4g}, "
                  f"random {r['bounds']['random']:.4g}); atom stab {r['atom_stability']:.3f}", flush=True)


if __name__ == '__main__':
    main()
