#!/usr/bin/env python
"""Quality against NFE: every sampler of each trained model at each budget of network evaluations, and its wall time.

For each finished run (default: the stage-1 rows of results/generative_qm9_cpu60.json, one per backbone × process) the
EMA weights are loaded and `--n-samples` molecules are drawn with every sampler of its process — flow matching: Euler,
midpoint, Heun, RK4; diffusion: DDPM, DDIM; stochastic interpolant: ODE (midpoint), SDE (Euler–Maruyama) — at each NFE
of `--nfe`. An ODE solver of order k takes NFE // k steps, so the NFE actually spent is recorded (`nfe_used`). The
samples are scored against the first `--n-reference` test molecules (EDM stability, validity, uniqueness, FCD), and the
cost is the sampling's CPU time scaled to seconds per 1,000 molecules (`s_per_1000`, one thread unless OMP_NUM_THREADS
says otherwise): unlike the wall time (`wall_s_per_1000`, also recorded with the load average) it does not depend on what
else the machine runs.
`pareto` lists, per process, the (seconds per 1,000, metric) points no other sampler of that process beats on both.

With `--edm PATH` (a checkout of EDM's code, ehoogeboom/e3_diffusion_for_molecules; never vendored), the forward pass of
EDM's own EGNN_dynamics_QM9 at the gnn runs' width and depth is timed on the same molecules beside molbench's gnn: the
per-NFE cost ratio.

Resumable: points already in the output are skipped.

Usage: OMP_NUM_THREADS=1 python bench/nfe_sweep.py [--runs DIR ...] [--nfe 5,10,20,50,100,200,500] [--n-samples 200]
                                                  [--out results/quality_nfe_qm9_cpu.json] [--edm PATH]
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable

SAMPLERS = {'flow_matching': [('euler', {'solver': 'euler'}), ('midpoint', {'solver': 'midpoint'}),
                              ('heun', {'solver': 'heun'}), ('rk4', {'solver': 'rk4'})],
            'diffusion': [('ddpm', {'sampler': 'ddpm'}), ('ddim', {'sampler': 'ddim'})],
            'stochastic_interpolant': [('ode', {'sampler': 'ode', 'solver': 'midpoint'}), ('sde', {'sampler': 'sde'})]}
ORDER = {'euler': 1, 'midpoint': 2, 'heun': 2, 'rk4': 4, 'ode': 2}
METRICS = ('atom_stability', 'mol_stability', 'validity', 'uniqueness', 'vxu', 'fcd')


def load_run(run_dir: Path):
    "(params, data, EMA model, process) of a finished run folder."
    import yaml, torch
    from molbench.generative.runner import RunParams, build_data, build_model, build_process, register_all
    from molbench.training.trainer import load_checkpoint
    register_all()
    p = RunParams(**{k: v for k, v in yaml.safe_load((run_dir / 'params.yaml').read_text()).items() if k in RunParams.__dataclass_fields__})
    data = build_data(p)
    model = build_model(p, data)
    state, _ = load_checkpoint(run_dir)
    model.load_state_dict(state['ema']['model']); model.eval()
    return p, data, model, build_process(p, data)


def pareto(points: list[dict], metric: str, higher: bool = True) -> list[dict]:
    "The points of `points` (each with `s_per_1000` and `metric`) that no other point beats on both time and the metric."
    ok = [q for q in points if q.get(metric) is not None and q[metric] == q[metric]]
    better = (lambda a, b: a >= b) if higher else (lambda a, b: a <= b)
    front = [q for q in ok if not any(o is not q and o['s_per_1000'] <= q['s_per_1000'] and better(o[metric], q[metric])
                                      and (o['s_per_1000'] < q['s_per_1000'] or o[metric] != q[metric]) for o in ok)]
    return sorted(front, key=lambda q: q['s_per_1000'])


def edm_forward_ratio(edm_path: str, p, model, counts, reps: int = 5) -> dict:
    "Median forward time of EDM's EGNN_dynamics_QM9 and of molbench's `model` (same width, depth, molecules), and the ratio."
    import numpy as np, torch
    sys.path.insert(0, os.path.abspath(edm_path))
    from egnn.models import EGNN_dynamics_QM9
    B, N = len(counts), int(counts.max())
    mask = (torch.arange(N)[None] < counts[:, None]).float()
    F = model.config.n_types
    # in_node_nf: types + charge + time, as EDM's qm9/models.get_model builds it
    edm = EGNN_dynamics_QM9(in_node_nf=F + 2, context_node_nf=0, n_dims=3, hidden_nf=p.hidden, device='cpu',
                            act_fn=torch.nn.SiLU(), n_layers=p.layers, attention=True, tanh=True, mode='egnn_dynamics',
                            norm_constant=1, inv_sublayers=1, sin_embedding=False, normalization_factor=1,
                            aggregation_method='sum').eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, N, 3, generator=g) * mask[..., None]
    h = torch.softmax(torch.randn(B, N, F, generator=g), -1) * mask[..., None]
    xh = torch.cat([x, h, torch.zeros(B, N, 1)], -1)                              # EDM's QM9 input: x, one-hot, charge
    em = (mask[:, :, None] * mask[:, None, :]) * (1 - torch.eye(N))[None]
    t = torch.full((B, 1), 0.5)
    def clock(fn):
        with torch.no_grad():
            fn(); ts = []
            for _ in range(reps):
                t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
        return float(np.median(ts))
    te = clock(lambda: edm._forward(t, xh, mask[..., None], em.reshape(-1, 1), None))   # what EDM's sampler calls
    tm = clock(lambda: model(x, h, t[:, 0], mask.bool()))
    return {'edm_forward_s': te, 'molbench_forward_s': tm, 'edm_over_molbench': te / tm, 'batch': B, 'max_atoms': N,
            'hidden': p.hidden, 'layers': p.layers, 'edm_config': 'EGNN_dynamics_QM9, attention, tanh, inv_sublayers=1, sum aggregation'}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', nargs='*', help='run folders (default: stage-1 rows of --from)')
    ap.add_argument('--from', dest='src', default=str(ROOT / 'results' / 'generative_qm9_cpu60.json'))
    ap.add_argument('--nfe', default='5,10,20,50,100,200,500')
    ap.add_argument('--n-samples', type=int, default=200)
    ap.add_argument('--n-reference', type=int, default=1000)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--out', default=str(ROOT / 'results' / 'quality_nfe_qm9_cpu.json'))
    ap.add_argument('--edm', metavar='PATH', help="a checkout of EDM's code: time its EGNN forward beside molbench's gnn")
    a = ap.parse_args(argv)
    import torch
    from molbench.core import write_json, Batch
    from molbench.data import load_qm9
    from molbench.generative.processes.base import NAtomsSampler
    from molbench.generative.runner import build_process, concat_batches, finite_ids
    from molbench.metrics.molecules import evaluate_molecules, molecule_reference
    runs = [Path(r) for r in a.runs] if a.runs else [ROOT / r['run_dir'] for r in json.loads(Path(a.src).read_text())['rows'] if r['stage'] == 1]
    nfes = [int(v) for v in a.nfe.split(',')]
    out = Path(a.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    points = {(q['run'], q['sampler'], q['nfe']): q for q in old.get('points', [])}
    edm = old.get('edm_timing')
    shown = [('<EDM checkout>' if i and argv[i - 1] == '--edm' else v) for i, v in enumerate(argv)]   # no machine paths in results
    prov = provenance(shown, 'bench/nfe_sweep.py')
    ref = molecule_reference(list(load_qm9('test', a.n_reference)), fcd=True)
    def save():
        pts = sorted(points.values(), key=lambda q: (q['arch'], q['gen'], q['sampler'], q['nfe']))
        fronts = {}
        for gen in SAMPLERS:
            for arch in sorted({q['arch'] for q in pts}):
                here = [q for q in pts if q['gen'] == gen and q['arch'] == arch]
                if here: fronts[f'{arch}:{gen}'] = {m: [{k: q[k] for k in ('sampler', 'nfe', 's_per_1000', m)} for q in pareto(here, m, m != 'fcd')]
                                                   for m in ('atom_stability', 'validity', 'fcd')}
        write_json(out, {**prov, 'n_samples': a.n_samples, 'reference': f'first {a.n_reference} QM9 test molecules',
                         'budget': {'cpu_hours': round(sum(q['cpu_s'] for q in pts) / 3600, 3), 'points': len(pts)},
                         'points': pts, 'pareto': fronts, 'edm_timing': edm})
    for rd in runs:
        rel = os.path.relpath(rd, ROOT)
        p, data, model, proc0 = load_run(rd)
        counts = NAtomsSampler(data.n_atoms_hist).sample(a.n_samples, generator=torch.Generator().manual_seed(a.seed)).sort(descending=True).values
        if a.edm and p.arch == 'gnn' and edm is None:
            edm = edm_forward_ratio(a.edm, p, model, counts[:100]); save()
            print(f"EDM EGNN forward / molbench gnn forward at width {p.hidden}, depth {p.layers}: {edm['edm_over_molbench']:.2f}", flush=True)
        for name, over in SAMPLERS[p.gen]:
            proc = build_process(type(p)(**{**p.__dict__, 'gen_cfg': {**p.gen_cfg, **over}}), data)
            for nfe in nfes:
                if (rel, name, nfe) in points: continue
                g = torch.Generator().manual_seed(a.seed)
                c0, w0, parts = time.process_time(), time.perf_counter(), []
                for chunk in counts.split(100): parts.append(proc.sample(model, chunk, nfe, generator=g))
                wall, cpu_sample = time.perf_counter() - w0, time.process_time() - c0
                s = concat_batches(parts); good = finite_ids(s)
                m = evaluate_molecules((s.z[good], s.x[good], s.node_mask[good]), ref, fcd=True)
                used = (nfe // ORDER[name]) * ORDER[name] if name in ORDER else nfe
                points[(rel, name, nfe)] = _jsonable({'run': rel, 'arch': p.arch, 'gen': p.gen, 'sampler': name, 'nfe': nfe,
                                                      'nfe_used': used, 'n_samples': a.n_samples, 'wall_s': round(wall, 2),
                                                      's_per_1000': round(cpu_sample / a.n_samples * 1000, 2),
                                                      'wall_s_per_1000': round(wall / a.n_samples * 1000, 2),
                                                      'cpu_s': round(time.process_time() - c0, 1), 'load_avg_1min': round(os.getloadavg()[0], 2),
                                                      **{k: m.get(k) for k in METRICS}})
                save()
                q = points[(rel, name, nfe)]
                print(f"{p.arch}:{p.gen} {name} NFE {nfe}: atom stab {q['atom_stability']:.3f}, validity {q['validity']:.3f}, "
                      f"FCD {q['fcd']:.2f}; {q['s_per_1000']:.0f} CPU s / 1,000", flush=True)


if __name__ == '__main__':
    main()
