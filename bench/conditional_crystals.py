#!/usr/bin/env python
"""Property-conditional crystal generation (issue 13 item 6), scored the way bench/conditional.py scores molecules.

EDM's protocol (Hoogeboom et al. 2022) carried over to crystals, for each (data set, property) of the grid (default
params/conditional_crystals.yaml: perov-5 `heat_ref`, carbon-24 `energy_per_atom`, both eV/atom):

1. a property predictor trains on set **A**; offline the CDVAE sets have only their val and test files, so A is the
   first `n_a` crystals of the `predictor_split` (test) — disjoint from the generator's data, as EDM's half A is;
2. the bounds are computed on set **B**, the first `n_b` crystals of the `generator_split` (val): the predictor's MAE
   on B (lower bound), its MAE against B's targets shuffled (random), and the MAE of predicting each crystal's property
   as the median of A's crystals with the same atom count (#atoms; perov-5 has 5 atoms per cell, so this is A's median);
3. a conditional generator trains on the whole `generator_split` (`run(dataset=..., split='val', condition=[prop])`)
   and samples `n_samples` crystals for (atom count, target) pairs drawn from its training crystals, at each guidance
   scale;
4. the score is the predictor's MAE between each generated crystal's target and its prediction, over every generated
   crystal that can be built as a pymatgen Structure with a volume of at least `min_volume_per_atom` Å³ per atom
   (the rest are counted, not scored), beside CDVAE's structural and compositional validity of the samples.

The predictor is a random forest (scikit-learn) on descriptors from matminer: the Magpie composition statistics
(`ElementProperty.from_preset('magpie')`, 132), the radial distribution function (`RadialDistributionFunction`, cutoff
`rdf_cutoff` Å in bins of `rdf_bin` Å), the density, the volume per atom and the atom count. CDVAE's own property
predictor is a neural network on its latent space; this one is independent of any generator and is stated as such.

The results file (default results/conditional_crystals_cpu.json) holds provenance, the grid, `predictors` (per task: the
sets, budget, bounds) and `rows` (per task × guidance: MAE, scored and unscored counts, validity, committed CIF samples).
Resumable: finished predictors, generators and rows are kept (predictors and generators under --runs-root).

Usage: OMP_NUM_THREADS=1 python bench/conditional_crystals.py [--grid params/conditional_crystals.yaml]
           [--out results/conditional_crystals_cpu.json] [--runs-root runs/conditional_crystals] [--tasks perov5,carbon24]
"""
from __future__ import annotations
import argparse, json, os, pickle, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable
from conditional import bounds, guided_samples


def crystal_features(structs, rdf_cutoff: float = 6.0, rdf_bin: float = 0.2, min_volume_per_atom: float = 1.0):
    """(n, F) descriptors of pymatgen Structures (None allowed) and the reason per structure ('' when featurised):
    Magpie composition statistics, matminer's radial distribution function, density, volume per atom, atom count.
    Rows that cannot be featurised (no structure, a cell below `min_volume_per_atom` Å³ per atom, a featuriser error) are NaN."""
    import warnings
    import numpy as np
    from matminer.featurizers.composition.composite import ElementProperty
    from matminer.featurizers.structure.rdf import RadialDistributionFunction
    ep, rdf = ElementProperty.from_preset('magpie'), RadialDistributionFunction(cutoff=rdf_cutoff, bin_size=rdf_bin)
    n_rdf = int(round(rdf_cutoff / rdf_bin))
    out, why = np.full((len(structs), 132 + n_rdf + 3), np.nan), []
    for k, s in enumerate(structs):
        if s is None: why.append('unbuildable'); continue
        vpa = s.volume / len(s)
        if not np.isfinite(vpa) or vpa < min_volume_per_atom: why.append('small_volume'); continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                f = np.concatenate([ep.featurize(s.composition), np.asarray(rdf.featurize(s), dtype=float)[:n_rdf],
                                    [s.density, vpa, len(s)]]).astype(float)
        except Exception as e:                                       # a featuriser failure is a counted reason, not a crash
            why.append(f'error: {type(e).__name__}'); continue
        if f.shape != out.shape[1:] or not np.isfinite(f).all(): why.append('non_finite'); continue
        out[k] = f; why.append('')
    return out, why


def b_on(b: dict) -> dict:
    "EDM's bounds with its 'QM9' (the predictor on the generator's data) named for what it is here: `on_b`."
    return {('on_b' if k == 'qm9' else k): v for k, v in b.items()}


def featurise_split(ds: str, split: str, n, prop: str, cache_dir: Path, cfg: dict):
    """(features, targets, atom counts) of the first `n` crystals of a split, cached (npz) in `cache_dir` under a name
    made of everything they depend on: data set, split, n, property and the featuriser settings `cfg`."""
    import numpy as np
    from molbench.core import atomic_write
    from molbench.data.crystals import load_crystals
    tag = '-'.join(f'{k}{cfg[k]:g}' for k in sorted(cfg))
    cache = Path(cache_dir) / f"features-{ds}-{split}-n{n or 'all'}-{prop}{'-' + tag if tag else ''}.npz"
    if cache.exists():
        z = np.load(cache); return z['X'], z['y'], z['n']
    from molbench.metrics.crystals import crystal_reference
    d = load_crystals(ds, split, n=n, progress=False)
    structs = crystal_reference(list(d), fingerprints=False).structures
    X, _ = crystal_features(structs, **cfg)
    y = d.properties[prop].to_numpy(dtype=float)
    nat = np.array([len(np.asarray(d[i].z).reshape(-1)) for i in range(len(d))])
    def write(t):
        with open(t, 'wb') as f: np.savez(f, X=X, y=y, n=nat)
    atomic_write(cache, write)
    return X, y, nat


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'conditional_crystals.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / 'conditional_crystals_cpu.json'))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'conditional_crystals'))
    ap.add_argument('--tasks', default=None, help="comma-separated subset of the grid's data sets")
    a = ap.parse_args(argv)
    import numpy as np, torch, yaml
    from sklearn.ensemble import RandomForestRegressor
    from molbench.core import write_json, atomic_write, Batch
    from molbench.generative import run
    from molbench.generative.runner import register_all
    from molbench.metrics.crystals import crystal_reference
    from benchmark import copy_samples
    register_all()
    g = yaml.safe_load(Path(a.grid).read_text())
    tasks = {k: v for k, v in g['tasks'].items() if a.tasks is None or k in a.tasks.split(',')}
    fcfg = {k: g[k] for k in ('rdf_cutoff', 'rdf_bin', 'min_volume_per_atom') if k in g}
    out, runs = Path(a.out), Path(a.runs_root); runs.mkdir(parents=True, exist_ok=True)
    sdir = out.with_name(out.stem + '_samples')
    old = json.loads(out.read_text()) if out.exists() else {}
    preds, rows = old.get('predictors', {}), {r['name']: r for r in old.get('rows', [])}
    prov = provenance(argv, 'bench/conditional_crystals.py')
    def save():
        write_json(out, {**prov, 'grid': g, 'predictors': preds, 'rows': sorted(rows.values(), key=lambda r: r['name'])})
    sa, sb = g.get('predictor_split', 'test'), g.get('generator_split', 'val')
    for ds, prop in tasks.items():
        key = f'{ds}-{prop}'
        pfile = runs / f'predictor-{key}.pkl'
        if pfile.exists() and key in preds: model = pickle.loads(pfile.read_bytes())
        else:
            c0, w0 = time.process_time(), time.perf_counter()
            XA, yA, nA = featurise_split(ds, sa, g.get('n_a'), prop, runs, fcfg)
            XB, yB, nB = featurise_split(ds, sb, g.get('n_b'), prop, runs, fcfg)
            okA = np.isfinite(XA).all(1) & np.isfinite(yA)
            model = RandomForestRegressor(**{'n_estimators': 500, 'random_state': g.get('seed', 0), 'n_jobs': 1, **(g.get('predictor') or {})})
            model.fit(XA[okA], yA[okA])
            blob = pickle.dumps(model); atomic_write(pfile, lambda t: t.write_bytes(blob))
            okB = np.isfinite(XB).all(1)
            pb = np.full(len(yB), np.nan); pb[okB] = model.predict(XB[okB])
            preds[key] = {'dataset': ds, 'property': prop, 'unit': 'eV/atom', 'model': 'RandomForestRegressor',
                          'config': model.get_params(), 'features': 'magpie + rdf + density + volume/atom + n_atoms',
                          'set_a': f'{sa} (first {len(yA)})', 'n_a': int(okA.sum()), 'set_b': f'{sb} (first {len(yB)})',
                          'bounds': b_on(bounds(pb, yB, nA[okA], yA[okA], nB, g.get('seed', 0))),
                          'cpu_s': round(time.process_time() - c0, 1), 'wall_s': round(time.perf_counter() - w0, 1)}
            save()
            b = preds[key]['bounds']
            print(f"{key}: predictor MAE on B {b['on_b']:.4g}, #atoms {b['n_atoms']:.4g}, random {b['random']:.4g} eV/atom", flush=True)
        gdir = runs / f'gen-{key}'
        todo = [s for s in g['guidance'] if f"{key}-w{s:g}" not in rows]
        if not todo: continue
        c0 = time.process_time()
        m = run(dataset=ds, split=sb, condition=[prop], guidance=float(g['guidance'][0]), run_dir=str(gdir), **g['set'])
        gen_cpu = round(time.process_time() - c0, 1)
        gen_cache = {}
        for s in todo:
            name = f"{key}-w{s:g}"
            c0 = time.process_time()
            rd = guided_samples(gdir, s, g['guidance'][0], runs / f'gen-{key}-w{s:g}', True, gen_cache)
            smp = torch.load(rd / 'samples.pt', weights_only=False)
            ref = crystal_reference(Batch(**smp), fingerprints=False)
            X, why = crystal_features(ref.structures, **fcfg)
            ok = np.isfinite(X).all(1)
            y = smp['y'].numpy()[:, 0].astype(float)
            p = np.full(len(y), np.nan)
            if ok.any(): p[ok] = model.predict(X[ok])
            copied = copy_samples(rd, sdir, name)
            rows[name] = _jsonable({
                'name': name, 'dataset': ds, 'property': prop, 'guidance': float(s), 'arch': m['arch'], 'gen': m['gen'],
                'n_samples': len(y), 'n_scored': int(ok.sum()),
                'unscored': {r: why.count(r) for r in sorted(set(why)) if r},
                'mae': float(np.abs(p[ok] - y[ok]).mean()) if ok.any() else None,
                'mean_target': float(y.mean()), 'mean_pred': float(p[ok].mean()) if ok.any() else None,
                'corr_target_pred': float(np.corrcoef(y[ok], p[ok])[0, 1]) if ok.sum() > 2 else None,
                'bounds': preds[key]['bounds'],
                'struct_validity': float(ref.struct_valid.mean()), 'comp_validity': float(ref.comp_valid.mean()),
                'validity': float(ref.valid.mean()),
                'steps': (m.get('train') or {}).get('steps'), 'generator_cpu_s': gen_cpu,
                'samples': os.path.relpath(copied, ROOT) if copied else None,
                'cpu_s': round(time.process_time() - c0, 1), 'run_dir': os.path.relpath(rd, ROOT)})
            save()
            r = rows[name]
            mae = f"{r['mae']:.4g}" if r['mae'] is not None else 'n/a'
            print(f"{name}: MAE {mae} eV/atom on {r['n_scored']}/{r['n_samples']} (on B {r['bounds']['on_b']:.4g}, "
                  f"#atoms {r['bounds']['n_atoms']:.4g}, random {r['bounds']['random']:.4g}); validity {r['validity']:.3f}", flush=True)


if __name__ == '__main__':
    main()
