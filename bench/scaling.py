#!/usr/bin/env python
"""Scaling experiments: model size, data size and compute, for each backbone with its process; fits with bootstrap intervals.

The grid is a YAML file (default params/scaling.yaml): for every (arch, gen) in `combos`, one run per model size
(`model_sizes`, on `model_n_train` training molecules) and one per data size (`data_sizes` unique training molecules,
with the `data_model` size); every run trains `steps` steps and evaluates the deterministic validation loss
(`generative.scaling.ValidationLoss`, `n_val` molecules) at every checkpoint (`ckpt_every`), appending
(N non-embedding parameters, D molecules seen, C training FLOPs counted by FlopCounterMode, validation loss) to the tracker
file `<out>.jsonl`. These learning curves are the compute experiment.

After every run the results file `<out>` is rewritten atomically: provenance (command, git commit, hardware, threads),
`runs` (one row per run: arch, gen, n_params, N, n_train, FLOPs, losses, CPU and wall seconds, metrics of its samples) and,
once a combination has enough runs, its `fits`: L(C) = E + A·C^−α on the compute frontier of all checkpoints, L(N, D)
= E + A·N^−α + B·D^−β on the final checkpoints (D = unique training molecules), the compute-optimal N*(C), D*(C), and the
curvature test (one power law or a broken one) — with 95 % bootstrap intervals over runs.

Resumable: a run already in the results file is skipped; an interrupted one continues in its run folder (<runs-root>/<name>);
rerun the same command after a kill. Fits are recomputed from the tracker file each time. Each run's samples (XYZ) are
copied to `<out stem>_samples/`.

Usage: OMP_NUM_THREADS=1 python bench/scaling.py [--grid params/scaling.yaml] [--combos gnn:flow_matching,...]
                                                 [--out results/scaling_qm9_cpu.json] [--runs-root runs/scaling] [--fit-only]
"""
from __future__ import annotations
import argparse, json, os, platform, shlex, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def provenance(argv, script: str = 'bench/scaling.py') -> dict:
    "The exact command (`script` with `argv`), the code version, the machine and the thread settings."
    rev = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = bool(subprocess.run(['git', 'status', '--porcelain', '--', 'molbench', 'bench', 'params'], capture_output=True,
                                text=True, cwd=ROOT).stdout.strip())
    import torch
    return {'command': shlex.join(['python', script, *argv]),   # quoted: pasteable into a shell
            'git_commit': rev, 'git_dirty': dirty,
            'hardware': {'machine': platform.machine(), 'processor': platform.processor() or platform.machine(),
                         'cpu_count': os.cpu_count(), 'torch': torch.__version__,
                         'device': 'cuda' if torch.cuda.is_available() else 'cpu'},
            'threads': {k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS')}}


def grid_runs(g: dict, combos) -> list[dict]:
    "Every run of the grid: its name and its `run()` arguments."
    out = []
    for arch, gen in combos:
        for s in g['model_sizes']:
            out.append(dict(name=f"{arch}-{gen}-h{s['hidden']}-l{s['layers']}-n{g['model_n_train']}", arch=arch, gen=gen,
                            experiment='model_size', hidden=s['hidden'], layers=s['layers'], n_train=g['model_n_train']))
        for n in g['data_sizes']:
            s = g['data_model']
            name = f"{arch}-{gen}-h{s['hidden']}-l{s['layers']}-n{n}"
            if any(r['name'] == name for r in out):                # the model-size run with these settings already is one
                next(r for r in out if r['name'] == name)['experiment'] = 'model_size+data_size'; continue
            out.append(dict(name=name, arch=arch, gen=gen, experiment='data_size', hidden=s['hidden'], layers=s['layers'], n_train=n))
    return out


def row_of(spec: dict, m: dict, cpu_s: float, wall_s: float) -> dict:
    "The results row of a finished run: sizes, compute, losses, the metrics of its samples."
    fl, val = m.get('flops') or {}, m.get('validation') or {}
    met = m.get('metrics') if isinstance(m.get('metrics'), dict) else {}
    keep = ('atom_stability', 'mol_stability', 'validity', 'uniqueness', 'vxu', 'novelty', 'w1_bond_length', 'w1_n_atoms')
    return {'name': spec['name'], 'arch': spec['arch'], 'gen': spec['gen'], 'experiment': spec['experiment'],
            'hidden': spec['hidden'], 'layers': spec['layers'], 'n_train': spec['n_train'],
            'n_params': m.get('n_params'), 'N': fl.get('n_params_non_embedding'),
            'train_flops_per_molecule': fl.get('train_flops_per_molecule'), 'train_flops': (m.get('compute') or {}).get('train_flops'),
            'train_molecules': (m.get('compute') or {}).get('train_molecules'), 'steps': (m.get('train') or {}).get('steps'),
            'final_train_loss': (m.get('train') or {}).get('final_loss'), 'val_loss': val.get('val_loss'),
            'val_split': val.get('split'), 'n_val': val.get('n'),
            'sample_metrics': {k: met[k] for k in keep if k in met}, 'n_samples': (m.get('checks') or {}).get('n_samples'),
            'cpu_s': round(cpu_s, 1), 'wall_s': round(wall_s, 1),       # this process's; ~0 when a finished run was read back
            'train_wall_s': ((m.get('timing') or {}).get('train') or {}).get('elapsed_s'),
            'run_dir': os.path.relpath(m['run_dir'], ROOT)}


def fits_of(tracker, arch: str, gen: str, n_boot: int) -> dict:
    "The combination's fits (each with 95 % bootstrap intervals over runs), or why one could not be made."
    where, out = {'arch': arch, 'gen': gen}, {}
    def attempt(name, fn):
        try: out[name] = fn()
        except Exception as e: out[name] = {'error': f'{type(e).__name__}: {e}'}
    def compute():
        f = tracker.fit_compute(where, select='frontier', n_boot=n_boot)
        return {**f.summary(), 'intervals': f.intervals()}
    def params_data():
        f = tracker.fit_params_data(where, select='final', d_key='n_train', n_boot=n_boot)
        res = {**f.summary(), 'intervals': f.intervals()}
        try: res['compute_optimal'] = _jsonable(tracker.compute_optimal(f))
        except Exception as e: res['compute_optimal'] = {'error': f'{type(e).__name__}: {e}'}
        return res
    attempt('L_of_C', compute)
    attempt('L_of_N_D', params_data)
    attempt('curvature_C', lambda: _jsonable(tracker.curvature(where, x='C', select='frontier')))
    return _jsonable(out)


def _jsonable(o):
    import numpy as np
    if isinstance(o, dict): return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)): return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray): return _jsonable(o.tolist())
    if isinstance(o, (np.floating, np.integer, np.bool_)): return o.item()
    if hasattr(o, 'summary') and callable(o.summary): return _jsonable(o.summary())     # a LawFit
    if o is None or isinstance(o, (str, int, float, bool)): return o
    return repr(o)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'scaling.yaml'), help='the grid YAML')
    ap.add_argument('--combos', default=None, help="comma-separated arch:gen pairs (default: the grid's combos)")
    ap.add_argument('--out', default=str(ROOT / 'results' / 'scaling_qm9_cpu.json'), help='results JSON; the tracker is <out>.jsonl')
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'scaling'))
    ap.add_argument('--n-boot', type=int, default=200, help='bootstrap resamples of runs for the intervals')
    ap.add_argument('--fit-only', action='store_true', help='only recompute the fits from the tracker file')
    a = ap.parse_args(argv)
    import yaml
    from molbench.core import write_json
    from molbench.generative import run
    from molbench.generative.scaling import ScalingLawTracker
    g = yaml.safe_load(Path(a.grid).read_text())
    combos = [tuple(c.split(':')) for c in a.combos.split(',')] if a.combos else [tuple(c) for c in g['combos']]
    out, track = Path(a.out), Path(a.out).with_suffix('.jsonl')
    old = json.loads(out.read_text()) if out.exists() else {}
    rows = {r['name']: r for r in old.get('runs', [])}
    prov = provenance(argv)
    def save():
        tr = ScalingLawTracker(track) if track.exists() else ScalingLawTracker()
        fits = {f'{x}:{y}': fits_of(tr, x, y, a.n_boot) for x, y in combos if sum(r['arch'] == x and r['gen'] == y for r in rows.values()) >= 4}
        total = sum(r['cpu_s'] for r in rows.values())
        write_json(out, {**prov, 'grid': g, 'budget': {'cpu_hours': round(total / 3600, 3), 'runs': len(rows),
                                                        'note': 'CPU seconds of this process per run (training, validation loss, '
                                                                'sampling, metrics); far below published settings (EDM trains ~3,000 GPU epochs)'},
                         'tracker': os.path.relpath(track, ROOT), 'runs': sorted(rows.values(), key=lambda r: r['name']), 'fits': fits})
    if a.fit_only: save(); print(f"fits → {out}"); return
    todo = [s for s in grid_runs(g, combos) if s['name'] not in rows]
    print(f"{len(todo)} run(s) to do, {len(rows)} done → {os.path.relpath(out, ROOT)}", flush=True)
    for k, s in enumerate(todo, 1):
        c0, w0 = time.process_time(), time.perf_counter()
        m = run(arch=s['arch'], gen=s['gen'], dataset=g.get('dataset', 'qm9'), profile=g.get('profile'), hidden=s['hidden'],
                layers=s['layers'], n_train=s['n_train'], run_dir=str(Path(a.runs_root) / s['name']),
                scaling_log=str(track), **(g.get('set') or {}))
        rows[s['name']] = row_of(s, m, time.process_time() - c0, time.perf_counter() - w0)
        sdir = out.with_name(out.stem + '_samples'); sdir.mkdir(parents=True, exist_ok=True)   # the samples behind each row
        if (Path(m['run_dir']) / 'samples.xyz').exists(): shutil.copyfile(Path(m['run_dir']) / 'samples.xyz', sdir / f"{s['name']}.xyz")
        save()
        r = rows[s['name']]
        print(f"[{k}/{len(todo)}] {s['name']}: N={r['N']:,} val_loss={r['val_loss']:.4f} C={r['train_flops']:.3g} FLOPs "
              f"{r['cpu_s']:.0f} s CPU", flush=True)


if __name__ == '__main__':
    main()
