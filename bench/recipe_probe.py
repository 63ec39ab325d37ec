#!/usr/bin/env python
"""Before/after of each recipe change on one molecule: per-time denoising error during training, and what sampling makes.

One small QM9 training molecule (the first with `--n-atoms` atoms), a batch of copies, `--steps` AdamW steps at a fixed
seed. The changes are applied cumulatively (`VARIANTS`), so each row differs from the one before by one cause of
issue 11. At `--probe-every` steps the probe measures, on 64 fixed noise draws at each time t in TIMES, the RMSE of the
predicted clean positions x̂₁ against the molecule (Å per coordinate) beside that of x_t itself (what predicting "no
change" scores), and the type accuracy; after training, 32 samples at 20 NFE are checked (EDM stability, composition).

    OMP_NUM_THREADS=1 python bench/recipe_probe.py --json results/recipe_probe_cpu.jsonl [--variants 0,1,2] [--arch gnn]

One JSON row per variant: its cumulative settings, the probe curve, the sample checks, the command and code version.
"""
from __future__ import annotations
import argparse, json, shlex, subprocess, sys, time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import torch

TIMES = (0.5, 0.8, 0.9, 0.95, 0.99)
# (label, backbone/optimiser settings, flow-matching settings): each adds one change to the one before
VARIANTS = [
    ('old defaults: velocity target, type scale 0.25', {'layers': 2, 'lr': 1e-3}, {'param': 'velocity', 'type_scale': 0.25}),
    ('+ x1 target, type scale 1 (current process defaults)', {}, {'param': 'x1', 'type_scale': 1.0}),
    ('+ residual x1 = x_t + (1-t) F', {}, {'residual': 'x'}),
    ('+ equivariant atom OT (Hungarian + Kabsch)', {}, {'atom_ot': True}),
    ('+ velocity-equivalent loss weight', {}, {'loss_weight': 'velocity'}),
    ('+ Beta(2, 1) training times', {}, {'t_sampler': 'beta', 't_a': 2.0, 't_b': 1.0}),
    ('+ 4 layers, lr 2e-3', {'layers': 4, 'lr': 2e-3}, {}),
]


def cumulative(k: int) -> tuple[dict, dict]:
    "The backbone/optimiser and process settings of variant k (every change up to k)."
    net, gen = {'hidden': 64}, {}
    for _, n, g in VARIANTS[:k + 1]: net.update(n); gen.update(g)
    return net, gen


def probe(proc, model, batch, seed: int = 5) -> dict:
    "Per time t of TIMES: RMSE of x̂₁ and of x_t against the molecule (Å per coordinate), and the type accuracy of ĥ₁."
    from molbench.generative.processes.base import denoising_error
    return denoising_error(proc, model, batch, TIMES, seed)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--arch', default='gnn')
    ap.add_argument('--variants', default=','.join(str(i) for i in range(len(VARIANTS))))
    ap.add_argument('--steps', type=int, default=1000)
    ap.add_argument('--probe-every', type=int, default=250)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--n-atoms', type=int, default=9)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', help='append one JSON row per variant to this file')
    a = ap.parse_args(argv)
    from molbench.generative.runner import register_all
    from molbench.core import ARCHS, GENS
    from molbench.data import load_qm9, collate
    from molbench.metrics.molecules import analyse_edm, stability
    register_all()
    ds = load_qm9('train', n=2000)
    rec = next(ds[i] for i in range(len(ds)) if len(ds[i].z) == a.n_atoms)
    vocab, target = (1, 6, 7, 8, 9), Counter(rec.z.tolist())
    batch, pbatch = collate([rec] * a.batch), collate([rec] * 64)
    rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    for k in (int(v) for v in a.variants.split(',')):
        net, gen = cumulative(k)
        torch.manual_seed(a.seed)
        model = ARCHS.get(a.arch)(len(vocab), periodic=False, context_dim=0, hidden=net['hidden'], layers=net['layers'])
        proc = GENS.get('flow_matching')(vocab, **gen)
        opt = torch.optim.AdamW(model.parameters(), lr=net['lr'])
        curve, t0 = [], time.process_time()
        for s in range(1, a.steps + 1):
            loss, _ = proc.loss(model, batch)
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
            if s % a.probe_every == 0 or s == a.steps:
                model.eval(); curve.append({'step': s, 'probe': probe(proc, model, pbatch)}); model.train()
        cpu = time.process_time() - t0
        model.eval()
        out = proc.sample(model, torch.full((32,), len(rec.z)), 20, generator=torch.Generator().manual_seed(1))
        an = analyse_edm(out); st = stability(an)
        same = [Counter(r[r > 0].tolist()) == target for r in out.z.numpy()]
        row = {'variant': k, 'label': VARIANTS[k][0], 'arch': a.arch, 'gen': 'flow_matching', 'net': net, 'gen_cfg': gen,
               'steps': a.steps, 'batch': a.batch, 'seed': a.seed, 'smiles': rec.smiles, 'n_atoms': len(rec.z),
               'curve': curve, 'samples': {'n': 32, 'nfe': 20, 'solver': proc.cfg.solver,
                                           'atom_stability': round(st['atom_stability'], 3),
                                           'mol_stability': round(st['mol_stability'], 3), 'same_composition': sum(same) / 32,
                                           'reproduced': sum(bool(x) and bool(y) for x, y in zip(same, an.mol_stable)) / 32},
               'cpu_s': round(cpu, 1), 'command': shlex.join(['python', 'bench/recipe_probe.py', *sys.argv[1:]]), 'git': rev}
        last = curve[-1]['probe']
        print(f"[{k}] {row['label']}: x̂₁ RMSE at t=0.5/0.9/0.95 {last['0.5']['rmse_x1_hat']}/{last['0.9']['rmse_x1_hat']}/"
              f"{last['0.95']['rmse_x1_hat']} (x_t {last['0.5']['rmse_x_t']}/{last['0.9']['rmse_x_t']}/{last['0.95']['rmse_x_t']}); "
              f"samples: atom stab {row['samples']['atom_stability']}, same comp {row['samples']['same_composition']:.2f}, "
              f"reproduced {row['samples']['reproduced']:.2f}", flush=True)
        if a.json:
            with open(a.json, 'a') as f: f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
    main()
