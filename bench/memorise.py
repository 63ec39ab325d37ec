"""Learning check: can each arch x gen memorise ONE small QM9 molecule in a few hundred steps?

Prints, per combination, the fraction of samples that reproduce the molecule (EDM-stable and same composition),
atom stability, wall time. A diagnostic for the training recipe (issue 11), not a benchmark.

    OMP_NUM_THREADS=1 python bench/memorise.py --steps 300 --combos gnn:flow_matching --set type_scale=1
"""
import argparse, itertools, json, time
from collections import Counter
import torch
from molbench.train import register_all
from molbench.core import ARCHS, GENS
from molbench.data import load_qm9, collate
from molbench.metrics_mol import analyse_edm, stability

def parse_val(v):
    for f in (int, float):
        try: return f(v)
        except ValueError: pass
    return {'true': True, 'false': False}.get(v.lower(), v)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--hidden', type=int, default=64)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--nfe', type=int, default=20)
    ap.add_argument('--n-samples', type=int, default=32)
    ap.add_argument('--mol', type=int, default=None, help='index in the QM9 train split (default: first with 13 atoms)')
    ap.add_argument('--combos', default='all')
    ap.add_argument('--n-atoms', type=int, default=13, help='pick the first training molecule with this many atoms')
    ap.add_argument('--set', action='append', default=[], help='process config key=value (gen_cfg)')
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    register_all()
    torch.manual_seed(a.seed)
    ds = load_qm9('train', n=2000)
    idx = a.mol if a.mol is not None else next(i for i in range(len(ds)) if len(ds[i].z) == a.n_atoms)
    rec = ds[idx]
    vocab = (1, 6, 7, 8, 9)
    target = Counter(rec.z.tolist())
    batch = collate([rec] * a.batch)
    combos = ([(x, g) for x in ('gnn', 'transformer', 'pairformer') for g in ('flow_matching', 'diffusion', 'stochastic_interpolant')]
              if a.combos == 'all' else [tuple(c.split(':')) for c in a.combos.split(',')])
    cfg = {k: parse_val(v) for k, v in (s.split('=', 1) for s in a.set)}
    for arch, gen in combos:
        torch.manual_seed(a.seed)
        model = ARCHS.get(arch)(len(vocab), periodic=False, context_dim=0, hidden=a.hidden, layers=a.layers,
                                **({} if arch == 'gnn' else {'heads': 4}))
        kw = {k: v for k, v in cfg.items() if k in {f for f in GENS.get(gen).Config.__dataclass_fields__}}
        proc = GENS.get(gen)(vocab, **kw)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr)
        t0 = time.time(); losses = []
        for s in range(a.steps):
            loss, parts = proc.loss(model, batch)
            opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
            losses.append(float(loss.detach()))
        tt = time.time() - t0
        model.eval()
        g = torch.Generator().manual_seed(1)
        out = proc.sample(model, torch.full((a.n_samples,), len(rec.z)), a.nfe, generator=g)
        an = analyse_edm(out)
        st = stability(an)
        zz = out.z.numpy()
        same = [Counter(r[r > 0].tolist()) == target for r in zz]
        repro = sum(bool(s) and bool(m) for s, m in zip(same, an.mol_stable))
        print(json.dumps({'arch': arch, 'gen': gen, 'cfg': kw, 'steps': a.steps, 'train_s': round(tt, 1),
                          'loss_first': round(sum(losses[:10]) / 10, 4), 'loss_last': round(sum(losses[-10:]) / 10, 4),
                          'reproduced': repro / a.n_samples, 'same_comp': sum(same) / a.n_samples,
                          'atom_stable': round(st.get('atom_stability', float('nan')), 3),
                          'mol_stable': round(st.get('mol_stability', float('nan')), 3)}), flush=True)

if __name__ == '__main__': main()
