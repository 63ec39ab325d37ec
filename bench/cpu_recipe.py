#!/usr/bin/env python
"""The CPU benchmark of the training recipe: nine combinations on time budgets, then the best process of each backbone longer.

Stage 1 trains every backbone × process of the grid (default params/cpu_recipe.yaml) for `stage1_minutes` on the full
QM9 training split; stage 2 trains, for each backbone, the process whose stage-1 run had the highest validation atom
stability (then molecule stability) for `stage2_minutes`. Every run uses one thread; `jobs` runs go at a time, each in
its own process. Each run samples `n_samples` molecules with its EMA weights; they are scored (EDM stability, validity,
uniqueness, novelty, FCD, W1 distances, ...) against the first `n_reference` validation and test molecules, and the XYZ
file is copied to `samples/<name>.xyz` beside the default results file (`<results stem>_samples/<name>.xyz` beside any
other, so that two results files never share sample files).

The results file (default results/generative_qm9_cpu60.json) holds provenance (command, git commit, hardware, threads),
the grid, and `rows`: one per run with arch, gen, stage, budget_minutes, steps, FLOPs, molecules seen, CPU and wall
seconds, the validation-loss curve, `metrics` (val and test) and `samples` (the committed XYZ).

Resumable: finished rows are skipped; an interrupted run continues from its last checkpoint in <runs-root>/<name>
(a time budget restarts in full for the rest of the run, so an interrupted run trains longer than its budget: its
row's `train_wall_s` and `steps` say by how much).

Usage: python bench/cpu_recipe.py [--grid params/cpu_recipe.yaml] [--out results/generative_qm9_cpu60.json]
                                  [--runs-root runs/cpu_recipe] [--stage 1|2|all] [--jobs 2] [--dry-run]
"""
from __future__ import annotations
import argparse, json, os, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable

DEFAULT_OUT = 'generative_qm9_cpu60.json'   # the CPU benchmark's results file (its samples go to samples/ beside it)


def specs(g: dict, stage: int, rows: dict) -> list[dict]:
    "The runs of `stage`: all combinations (1), or the best process of each backbone from the finished stage-1 rows (2)."
    minutes = g[f'stage{stage}_minutes']
    if stage == 1: pairs = [(a, x) for a in g['archs'] for x in g['gens']]
    else:
        pairs = []
        for a in g['archs']:
            s1 = [r for r in rows.values() if r['stage'] == 1 and r['arch'] == a]
            if len(s1) < len(g['gens']): continue                     # its stage 1 is not finished
            key = lambda r: (r['metrics']['val'].get('atom_stability') or 0, r['metrics']['val'].get('mol_stability') or 0)
            pairs.append((a, max(s1, key=key)['gen']))
    return [dict(name=f"{a}-{x}-{minutes:g}min-s{g['seed']}", arch=a, gen=x, stage=stage, minutes=minutes) for a, x in pairs]


def val_curve(run_dir: Path, key: str = 'val_loss') -> list[dict]:
    "The deterministic validation loss at every checkpoint: step, molecules seen, training FLOPs, loss (`key`: a joint run's `<data set>/val_loss`)."
    out = []
    for line in (run_dir / 'log.jsonl').read_text().splitlines():
        r = json.loads(line)
        if r.get('kind') == 'eval' and f'eval/{key}' in r:
            out.append({'step': r['step'], 'train_molecules': r.get('eval/train_molecules'),
                        'train_flops': r.get('eval/train_flops'), 'val_loss': r[f'eval/{key}']})
    return out


def samples_dir(out: Path) -> Path:
    "Where the XYZ files of `out`'s rows go: samples/ beside the CPU benchmark's own file, <stem>_samples/ beside any other (never shared)."
    return out.parent / ('samples' if out.name == DEFAULT_OUT else f'{out.stem}_samples')


def work(g: dict, spec: dict, runs_root: Path, sdir: Path) -> dict:
    "Train, sample and score one run (in this process); returns its row."
    from molbench.generative import run
    from molbench.generative.runner import resolve_params
    from benchmark import score
    c0, w0 = time.process_time(), time.perf_counter()
    kw = dict(arch=spec['arch'], gen=spec['gen'], dataset=g.get('dataset', 'qm9'), seed=g['seed'],
              **(g.get('set') or {}), minutes=spec['minutes'], gen_cfg=(g.get('gen_cfg') or {}).get(spec['gen'], {}))
    p = resolve_params(g.get('profile'), **kw)     # before the run: a profile edited while it trains cannot change them
    m = run(profile=g.get('profile'), run_dir=str(runs_root / spec['name']), **kw)
    rd = Path(m['run_dir'])
    sc = score(rd, p, g.get('n_reference', 1000))
    sdir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rd / 'samples.xyz', sdir / f"{spec['name']}.xyz")
    tr, comp = m.get('train') or {}, m.get('compute') or {}
    return _jsonable({**{k: v for k, v in spec.items() if k != 'minutes'}, 'budget_minutes': spec['minutes'], 'seed': g['seed'], 'gen_cfg': kw['gen_cfg'],
                      'steps': tr.get('steps'), 'stopped': tr.get('stopped'), 'n_params': m.get('n_params'),
                      'train_flops': comp.get('train_flops'), 'train_molecules': comp.get('train_molecules'),
                      'train_wall_s': ((m.get('timing') or {}).get('train') or {}).get('elapsed_s'),
                      'val_loss': (m.get('validation') or {}).get('val_loss'), 'val_curve': val_curve(rd),
                      'metrics': sc, 'samples': os.path.relpath(sdir / f"{spec['name']}.xyz", ROOT),
                      'cpu_s': round(time.process_time() - c0, 1), 'wall_s': round(time.perf_counter() - w0, 1),
                      'run_dir': os.path.relpath(rd, ROOT)})


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'cpu_recipe.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / DEFAULT_OUT))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'cpu_recipe'))
    ap.add_argument('--stage', default='all', choices=('1', '2', 'all'))
    ap.add_argument('--jobs', type=int, default=None, help="runs at a time (default: the grid's `jobs`)")
    ap.add_argument('--only', default=None, help='comma-separated run names: do only these (of the stage)')
    ap.add_argument('--dry-run', action='store_true', help='list the runs to do and exit')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                    help="override a grid entry (YAML value; 'set.KEY' for a run parameter), e.g. --set stage1_minutes=0.1 --set set.n_train=256")
    ap.add_argument('--worker', help=argparse.SUPPRESS)            # internal: run this one spec (JSON) and print its row
    a = ap.parse_args(argv)
    import yaml
    from molbench.core import write_json
    g = yaml.safe_load(Path(a.grid).read_text())
    for kv in a.set:
        k, v = kv.split('=', 1); *path, last = k.split('.')
        d = g
        for part in path: d = d.setdefault(part, {})
        d[last] = yaml.safe_load(v)
    runs_root = Path(a.runs_root); runs_root.mkdir(parents=True, exist_ok=True)
    if a.worker:
        row = work(g, json.loads(a.worker), runs_root, samples_dir(Path(a.out)))
        write_json(runs_root / row['name'] / 'row.json', row); return
    out = Path(a.out)
    rows = {r['name']: r for r in (json.loads(out.read_text()).get('rows', []) if out.exists() else [])}
    prov = provenance(argv, 'bench/cpu_recipe.py')
    def save():
        drivers = [prov['command']]
        if out.exists():                                          # rows another driver wrote meanwhile are kept
            old = json.loads(out.read_text())
            for r in old.get('rows', []): rows.setdefault(r['name'], r)
            drivers = list(dict.fromkeys(old.get('drivers', [old.get('command')]) + drivers))
        rs = sorted(rows.values(), key=lambda r: (r['stage'], r['name']))
        write_json(out, {**prov, 'command': drivers[0], 'drivers': drivers, 'grid': g, 'budget': {'cpu_hours': round(sum(r['cpu_s'] for r in rs) / 3600, 3), 'runs': len(rs),
                   'note': 'time budgets of one CPU thread per run; EDM trains ~3,000 GPU epochs, these runs a few QM9 epochs'},
                   'rows': rs})
    jobs = a.jobs or g.get('jobs', 1)
    for stage in ((1, 2) if a.stage == 'all' else (int(a.stage),)):
        for s in specs(g, stage, rows):                           # a worker that finished after its driver stopped
            f = runs_root / s['name'] / 'row.json'
            if s['name'] not in rows and f.exists(): rows[s['name']] = json.loads(f.read_text()); save()
        todo = [s for s in specs(g, stage, rows) if s['name'] not in rows and (not a.only or s['name'] in a.only.split(','))]
        print(f"stage {stage}: {len(todo)} run(s) to do, {len(rows)} row(s) done → {os.path.relpath(out, ROOT)}", flush=True)
        if a.dry_run:
            for s in todo: print('  ', s['name'])
            continue
        running: dict = {}
        threads = str(g.get('threads_per_run', 1))
        env = {**os.environ, 'OMP_NUM_THREADS': threads, 'MKL_NUM_THREADS': threads}
        while todo or running:
            while todo and len(running) < jobs:
                s = todo.pop(0)
                log = open(runs_root / f"{s['name']}.log", 'a')
                running[s['name']] = subprocess.Popen([sys.executable, __file__, '--grid', a.grid, '--out', a.out, '--runs-root', str(runs_root),
                                                       *[f'--set={kv}' for kv in a.set], '--worker', json.dumps(s)],
                                                      env=env, stdout=log, stderr=subprocess.STDOUT)
                print(f"  started {s['name']}", flush=True)
            time.sleep(5)
            for name, proc in list(running.items()):
                if proc.poll() is None: continue
                del running[name]
                f = runs_root / name / 'row.json'
                if proc.returncode == 0 and f.exists():
                    rows[name] = json.loads(f.read_text()); save()
                    t = rows[name]['metrics']['test']
                    print(f"  done {name}: {rows[name]['steps']} steps; test atom stab {t['atom_stability']:.3f}, mol stab "
                          f"{t['mol_stability']:.3f}, validity {t['validity']:.3f}", flush=True)
                else: print(f"  FAILED {name} (exit {proc.returncode}); see {os.path.relpath(runs_root / name, ROOT)}.log", flush=True)


if __name__ == '__main__':
    main()
