"""Learning check: can each arch x gen memorise ONE small QM9 molecule in a few hundred steps?

Prints, per combination, the fraction of samples that reproduce the molecule (EDM-stable and same composition),
atom stability, wall time. A diagnostic for the training recipe (issue 11), not a benchmark.

    OMP_NUM_THREADS=1 python bench/memorise.py --steps 300 --combos gnn:flow_matching --set type_scale=1
"""
import argparse, itertools, json, time
from collections import Counter
import torch
from molbench.generative.runner import register_all
from molbench.core import ARCHS, GENS, Backbone, ModelOutput, remove_mean
from molbench.data import load_qm9, collate
from molbench.metrics.molecules import analyse_edm, stability

class FixedOrderMLP(Backbone):
    "A non-equivariant control: an MLP over the flattened (x, h, t) of structures with exactly `n` atoms in a fixed order."
    def __init__(self, n: int, n_types: int, width: int = 256):
        super().__init__()
        self.n, self.f = n, n_types
        self.net = torch.nn.Sequential(torch.nn.Linear(n * (3 + n_types) + 1, width), torch.nn.SiLU(),
                                       torch.nn.Linear(width, width), torch.nn.SiLU(), torch.nn.Linear(width, n * (3 + n_types)))
    def forward(self, x, h, t, node_mask, lattice=None, context=None):
        B = x.shape[0]
        o = self.net(torch.cat([x.reshape(B, -1), h.reshape(B, -1), t.reshape(B, 1).to(x.dtype)], -1)).view(B, self.n, 3 + self.f)
        return ModelOutput(remove_mean(o[..., :3], node_mask), o[..., 3:], None)

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
    ap.add_argument('--combos', default='all', help="comma-separated arch:gen pairs (arch may be 'mlp', a non-equivariant control), or all")
    ap.add_argument('--n-atoms', type=int, default=13, help='pick the first training molecule with this many atoms')
    ap.add_argument('--set', action='append', default=[], help='process config key=value (gen_cfg)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', help='append one JSON row per combination to this file (with the command and code version)')
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
        model = (FixedOrderMLP(len(rec.z), len(vocab)) if arch == 'mlp' else
                 ARCHS.get(arch)(len(vocab), periodic=False, context_dim=0, hidden=a.hidden, layers=a.layers,
                                 **({} if arch == 'gnn' else {'heads': 4})))
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
        row = {'arch': arch, 'gen': gen, 'cfg': kw, 'steps': a.steps, 'train_s': round(tt, 1),
                          'loss_first': round(sum(losses[:10]) / 10, 4), 'loss_last': round(sum(losses[-10:]) / 10, 4),
                          'reproduced': repro / a.n_samples, 'same_comp': sum(same) / a.n_samples,
                          'atom_stable': round(st.get('atom_stability', float('nan')), 3),
                          'mol_stable': round(st.get('mol_stability', float('nan')), 3), 'n_atoms': len(rec.z), 'smiles': rec.smiles,
               'lr': a.lr, 'batch': a.batch, 'nfe': a.nfe, 'seed': a.seed}
        print(json.dumps(row), flush=True)
        if a.json:
            import subprocess, sys
            rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
            row.update(command='python bench/memorise.py ' + ' '.join(sys.argv[1:]), git=rev)
            with open(a.json, 'a') as f: f.write(json.dumps(row) + '\n')

if __name__ == '__main__': main()
