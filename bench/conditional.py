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

With `--tails` (after the main stage), the same generators are asked for molecules in BOOM's OOD tail of the property:
(atom count, value) pairs drawn from BOOM's OOD molecules, scored by the half-A predictor and by an independent one
trained on BOOM's training split, each also scored on the real OOD molecules; written to --tails-out (default
results/conditional_tails_qm9_cpu.json). EDM's halves are a random cut of QM9, so the generator has seen some tail
molecules; the file counts how many.

The results file (default results/conditional_qm9_cpu.json) holds provenance, the grid (with the published table of
REFERENCE.md §6, labelled as published), `predictors` (one per property: budget and MAE on B) and `rows` (one per
property × guidance: MAE, bounds, stability, the committed samples). Units: α Bohr³, Δε / HOMO / LUMO meV, μ D, Cv
cal/(mol·K), as EDM's table. Resumable: finished predictors, generators and rows are kept.

Usage: OMP_NUM_THREADS=1 python bench/conditional.py [--grid params/conditional.yaml] [--out results/conditional_qm9_cpu.json]
                                                     [--runs-root runs/conditional] [--properties alpha,gap]
       OMP_NUM_THREADS=1 python bench/conditional.py --tails [--tails-out results/conditional_tails_qm9_cpu.json]
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time
from contextlib import contextmanager
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


@contextmanager
def merge_lock(path: Path):
    "An exclusive lock beside `path` (fcntl), held while a process reads, merges and rewrites the results file."
    import fcntl
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + '.lock'), 'w') as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try: yield
        finally: fcntl.flock(f, fcntl.LOCK_UN)

def tail_side(y, lo: float, hi: float):
    "-1 below the training split's range [lo, hi], +1 above it, 0 inside: where BOOM's OOD tail lies for each value."
    import numpy as np
    y = np.asarray(y, dtype=float)
    return np.where(y < lo, -1, np.where(y > hi, 1, 0))


def tail_pairs(prop: str, data_dir=None) -> dict:
    """BOOM's split of `prop` in qm9pack's rows and units: the OOD molecules (table rows, atom counts, values) and the
    training split's value range. BOOM's QM9 id + 1 is the QM9 number; entries without a qm9pack geometry are left out and counted."""
    import numpy as np, pandas as pd
    from molbench.data import load_boom
    from molbench.data.qm9 import qm9_data
    t = qm9_data().table
    row = pd.Series(np.arange(len(t)), index=t['qm9_id'].to_numpy())
    out = {}
    for split in ('train', 'ood'):
        b = load_boom(prop, split, data_dir=data_dir, progress=False)
        r = row.reindex(b['id'].to_numpy() + 1).to_numpy()
        have = ~np.isnan(r); r = r[have].astype(np.int64)
        out[split] = {'rows': r, 'n_missing': int((~have).sum()), 'boom_y': b['y'].to_numpy()[have],
                      'y': t[prop].to_numpy()[r].astype(float), 'n_atoms': t['n_atoms'].to_numpy()[r]}
    lo, hi = float(out['train']['y'].min()), float(out['train']['y'].max())
    o = out['ood']
    return {'rows': o['rows'], 'y': o['y'], 'n_atoms': o['n_atoms'], 'lo': lo, 'hi': hi, 'side': tail_side(o['y'], lo, hi),
            'n_missing': {k: v['n_missing'] for k, v in out.items()},
            'boom_vs_qm9pack': float(np.corrcoef(o['boom_y'], o['y'])[0, 1]), 'train_rows': out['train']['rows']}


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


def guided_samples(gdir: Path, s: float, trained: float, out: Path, periodic: bool, cache: dict) -> Path:
    """The folder whose samples.pt holds a conditional generator's samples at guidance `s`: the run folder `gdir` itself
    at the scale it sampled with (`trained`), else `out`, sampled anew (only the sampling changes with the scale). The
    generator is read from `gdir` once into `cache` (a dict the caller keeps per generator)."""
    if s == trained: return gdir
    from nfe_sweep import load_run
    from molbench.generative.runner import generate, write_samples
    if 'run' not in cache: cache['run'] = load_run(gdir)
    pp, data, gm, proc = cache['run']
    pp.guidance = gm.guidance = float(s)
    smp, _ = generate(pp, gm, proc, data)
    out.mkdir(exist_ok=True)
    write_samples(out, smp, periodic)
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'conditional.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / 'conditional_qm9_cpu.json'))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'conditional'))
    ap.add_argument('--properties', default=None, help="comma-separated subset of the grid's properties")
    ap.add_argument('--tails', action='store_true', help="only the tail stage: targets from BOOM's OOD tail for each property "
                    "whose generator is trained, written to --tails-out")
    ap.add_argument('--tails-out', default=str(ROOT / 'results' / 'conditional_tails_qm9_cpu.json'))
    a = ap.parse_args(argv)
    if a.tails: return tails(a, argv)
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
    def save():                                                        # merged with what other processes wrote meanwhile
        with merge_lock(out):                                          # (one process per property may run side by side)
            disk = json.loads(out.read_text()) if out.exists() else {}
            allp = {**disk.get('predictors', {}), **preds}
            allr = {**{r['name']: r for r in disk.get('rows', [])}, **rows}
            write_json(out, {**prov, 'grid': g, 'units': {p: ('meV' if p in DISPLAY else g.get('units', {}).get(p)) for p in g['properties']},
                             'predictors': allp, 'rows': sorted(allr.values(), key=lambda r: r['name'])})
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
        gen_cache = {}                                                 # the generator, read once for every other guidance scale
        for s in g['guidance']:
            name = f"{prop}-{g['set'].get('arch', 'gnn')}-{g['set'].get('gen', 'flow_matching')}-w{s:g}"
            if name in rows: continue
            c0 = time.process_time()
            m = run(split='train_b', n_train=g.get('n_b'), condition=[prop], guidance=float(g['guidance'][0]),
                    run_dir=str(runs / f'gen-{prop}'), **g['set'])       # one generator per property, trained once
            rd = guided_samples(Path(m['run_dir']), s, g['guidance'][0], runs / f'gen-{prop}-w{s:g}', False, gen_cache)
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


def tails(a, argv):
    """Generating into the tails (issue 13 item 5): for each property with a trained generator (runs/conditional/gen-<prop>),
    targets drawn with their atom counts from BOOM's OOD molecules of that property; scored by the half-A predictor and by
    an independent predictor trained on BOOM's training split, each also scored on the real OOD molecules (how far its
    verdict can be trusted there). Resumable per property × guidance."""
    import numpy as np, pickle, torch, yaml
    from molbench.core import write_json, atomic_write, Batch
    from molbench.boom.runner import get_model
    from molbench.data import load_qm9
    from molbench.data.qm9 import qm9_data, QM9Dataset
    from molbench.generative.conditional import draw_targets
    from molbench.generative.runner import generate, write_samples
    from molbench.metrics.molecules import analyse_edm, stability
    from nfe_sweep import load_run
    g = yaml.safe_load(Path(a.grid).read_text())
    tg = g.get('tails') or {}
    props = a.properties.split(',') if a.properties else g['properties']
    out, runs = Path(a.tails_out), Path(a.runs_root)
    sdir = out.with_name(out.stem + '_samples')
    old = json.loads(out.read_text()) if out.exists() else {}
    info, rows = old.get('properties', {}), {r['name']: r for r in old.get('rows', [])}
    prov = provenance(argv, 'bench/conditional.py')
    def save():
        write_json(out, {**prov, 'grid': g, 'units': {p: ('meV' if p in DISPLAY else g.get('units', {}).get(p)) for p in props},
                         'properties': info, 'rows': sorted(rows.values(), key=lambda r: r['name'])})
    d = qm9_data()
    def real(rows_):
        ds = QM9Dataset(d, rows_)
        recs = [ds[i] for i in range(len(ds))]
        return [np.asarray(r.z) for r in recs], [np.asarray(r.pos, dtype=np.float32) for r in recs], [r.smiles for r in recs]
    halves = {h: set(load_qm9(h).indices.tolist()) for h in ('train_a', 'train_b')}
    for prop in props:
        gdir, pfile = runs / f'gen-{prop}', runs / f'predictor-{prop}.pkl'
        if not (gdir / 'samples.pt').exists() or not pfile.exists():
            print(f"{prop}: no trained generator or predictor under {runs} yet; run bench/conditional.py first", flush=True); continue
        scale = DISPLAY.get(prop, 1.0)
        tp = tail_pairs(prop)
        models = {'half_a': pickle.loads(pfile.read_bytes())}
        ind = tg.get('independent')
        ifile = runs / f'independent-{prop}.pkl'
        if ind:
            if ifile.exists(): models['boom_train'] = pickle.loads(ifile.read_bytes())
            else:
                c0 = time.process_time()
                rng = np.random.default_rng(g.get('seed', 0))
                tr = rng.permutation(tp['train_rows'])
                n_tr, n_va = ind.get('n_train') or len(tr) - 2000, ind.get('n_val', 2000)
                fit_rows, val_rows = tr[:n_tr], tr[n_tr:n_tr + n_va]
                y_all = d.table[prop].to_numpy().astype(float)
                m = get_model(ind['family'], **(ind.get('config') or {}))
                (zf, pf, sf), (zv, pv, sv) = real(fit_rows), real(val_rows)
                m.fit(frame(zf, pf, y_all[fit_rows], sf), frame(zv, pv, y_all[val_rows], sv))
                blob = pickle.dumps(m); atomic_write(ifile, lambda t: t.write_bytes(blob))
                models['boom_train'] = m
                info.setdefault(prop, {})['independent'] = {'family': ind['family'], 'config': ind.get('config'),
                                                            'n_train': int(len(fit_rows)), 'n_val': int(len(val_rows)),
                                                            'trained_on': "BOOM's training split of this property",
                                                            'cpu_s': round(time.process_time() - c0, 1)}
        if 'real_ood' not in info.get(prop, {}):
            zs, ps, ss = real(tp['rows'])
            df = frame(zs, ps, tp['y'], ss)
            real_scores = {}
            for k, m in models.items():
                p = m.predict(df, smiles=False); ok = np.isfinite(p)
                real_scores[k] = {'mae': float(np.abs(p[ok] - tp['y'][ok]).mean()) * scale,
                                  'in_tail': float((tail_side(p[ok], tp['lo'], tp['hi']) == tp['side'][ok]).mean())}
            ood = set(tp['rows'].tolist())
            info.setdefault(prop, {}).update({
                'n_ood': int(len(tp['rows'])), 'n_missing_geometry': tp['n_missing'],
                'train_range': [tp['lo'] * scale, tp['hi'] * scale],
                'ood_below': int((tp['side'] == -1).sum()), 'ood_above': int((tp['side'] == 1).sum()),
                'ood_inside_range': int((tp['side'] == 0).sum()),
                'boom_vs_qm9pack_corr': tp['boom_vs_qm9pack'],
                'ood_in_half_a': len(ood & halves['train_a']), 'ood_in_half_b': len(ood & halves['train_b']),
                'real_ood': real_scores})
            save()
        n = tg.get('n_samples', 500)
        counts, targets = draw_targets(tp['n_atoms'], tp['y'][:, None], n, g.get('seed', 0))
        side = tail_side(targets[:, 0].numpy(), tp['lo'], tp['hi'])
        todo = [s for s in tg.get('guidance', g['guidance']) if f"{prop}-tail-w{s:g}" not in rows]
        if todo: pp, data, gm, proc = load_run(gdir)                 # the generator, read once for every guidance scale
        for s in todo:
            name = f"{prop}-tail-w{s:g}"
            c0 = time.process_time()
            pp.guidance = gm.guidance = float(s)
            smp, timing = generate(pp, gm, proc, data, pairs=(counts, targets))
            rd = runs / f'gen-{prop}-tail-w{s:g}'; rd.mkdir(exist_ok=True)
            write_samples(rd, smp, False)
            sm = torch.load(rd / 'samples.pt', weights_only=False)
            df, n_bad = samples_frame(sm)
            tside = tail_side(df.y.values, tp['lo'], tp['hi'])
            scores = {}
            for k, m in models.items():
                p = m.predict(df, smiles=False); ok = np.isfinite(p)
                scores[k] = {'mae': float(np.abs(p[ok] - df.y.values[ok]).mean()) * scale, 'n_scored': int(ok.sum()),
                             'in_tail': float((tail_side(p[ok], tp['lo'], tp['hi']) == tside[ok]).mean()),
                             'mean_pred': float(p[ok].mean()) * scale}
            st = stability(analyse_edm(Batch(**{k: sm[k] for k in ('x', 'z', 'node_mask')})))
            sdir.mkdir(parents=True, exist_ok=True); shutil.copyfile(rd / 'samples.xyz', sdir / f'{name}.xyz')
            rows[name] = _jsonable({'name': name, 'property': prop, 'guidance': float(s), 'n_samples': n,
                                    'n_non_finite': n_bad, 'targets_below': int((side == -1).sum()), 'targets_above': int((side == 1).sum()),
                                    'mean_target': float(targets[:, 0].mean()) * scale, 'scores': scores,
                                    'atom_stability': st.get('atom_stability'), 'mol_stability': st.get('mol_stability'),
                                    'generator_steps': (json.loads((gdir / 'metrics.json').read_text()).get('train') or {}).get('steps'), 'run_dir': os.path.relpath(rd, ROOT),
                                    'samples': os.path.relpath(sdir / f'{name}.xyz', ROOT), 'sampling_s': timing['sampling_s'],
                                    'cpu_s': round(time.process_time() - c0, 1)})
            save()
            r = rows[name]
            print(f"{name}: half-A MAE {r['scores']['half_a']['mae']:.4g}, in tail {r['scores']['half_a']['in_tail']:.2f}; "
                  f"atom stab {r['atom_stability']:.3f}", flush=True)


if __name__ == '__main__':
    main()
