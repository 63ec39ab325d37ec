#!/usr/bin/env python
"""Train, sample and evaluate every backbone × process under one profile; collect the metrics into one results file.

Each combination is one `molbench.train.run` (its own run folder under --runs-root, never overwritten). The results file
holds one row per combination: the run folder, wall time and every metric the run wrote.

Usage: OMP_NUM_THREADS=1 python bench/sweep_generative.py --profile default --set minutes=2 --out results/generative_qm9.json
       [--archs gnn,transformer] [--gens flow_matching] [--dataset qm9]
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def parse_value(v: str):
    "'2' → 2, '0.5' → 0.5, 'true' → True, anything else stays a string."
    import yaml
    return yaml.safe_load(v)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default=None, help='params/<name>.yaml profile(s), comma-separated')
    ap.add_argument('--archs', default='gnn,transformer,pairformer')
    ap.add_argument('--gens', default='flow_matching,diffusion,stochastic_interpolant')
    ap.add_argument('--dataset', default='qm9')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='override a run parameter')
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'sweep'))
    ap.add_argument('--out', required=True, help='results JSON (rewritten atomically after every combination)')
    a = ap.parse_args(argv)
    from molbench.train import run, register_all
    from molbench.core import write_json, check_choice, ARCHS, GENS
    register_all()
    archs, gens = a.archs.split(','), a.gens.split(',')
    for x in archs: check_choice('arch', x, ARCHS.names)
    for g in gens: check_choice('gen', g, GENS.names)
    extra = {}
    for kv in a.set:
        if '=' not in kv: raise SystemExit(f"--set takes KEY=VALUE, got {kv!r}")
        k, v = kv.split('=', 1); extra[k] = parse_value(v)
    out = Path(a.out)
    rows = json.loads(out.read_text())['rows'] if out.exists() else []
    done = {(r['arch'], r['gen'], r['dataset']) for r in rows}
    for arch in archs:
        for gen in gens:
            if (arch, gen, a.dataset) in done:
                print(f"{arch} × {gen}: already in {out}, skipped"); continue
            t0 = time.perf_counter()
            profile = ','.join(filter(None, [a.profile, arch, gen]))
            m = run(arch=arch, gen=gen, dataset=a.dataset, profile=profile, runs_root=a.runs_root, **extra)
            rows.append(dict(arch=arch, gen=gen, dataset=a.dataset, profile=profile, overrides=extra,
                             wall_s=round(time.perf_counter() - t0, 1), metrics=m))
            write_json(out, {'command': ' '.join(['python', 'bench/sweep_generative.py'] + (argv or sys.argv[1:])),
                             'rows': rows})
            print(f"{arch} × {gen}: {rows[-1]['wall_s']} s → {out}")

if __name__ == '__main__':
    main()
