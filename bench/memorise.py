"""Learning check: can each arch x gen memorise ONE small QM9 molecule in a few hundred steps?

Prints, per combination, the fraction of samples that reproduce the molecule (EDM-stable and same composition), atom and
molecule stability, the last loss and the training CPU time. It calls `molbench.generative.processes.base.memorise`, the
function the notebooks' learning tests call. A diagnostic for the training recipe (issue 11), not a benchmark.

    # the learning tests' setting: QM9's methane (QM9 id 1), the CPU recipe of each process, 300 steps, cosine lr 5e-3
    OMP_NUM_THREADS=1 python bench/memorise.py --qm9-id 1 --recipe --steps 300 --batch 32 --lr 5e-3 --cosine --layers 4
    # a harder molecule: the first 9-atom training molecule, process defaults
    OMP_NUM_THREADS=1 python bench/memorise.py --n-atoms 9 --combos gnn:flow_matching --set type_scale=1
"""
import argparse, json, shlex, subprocess, sys
from pathlib import Path
import torch
from molbench.generative.runner import register_all
from molbench.generative.processes.base import FixedOrderMLP, memorise
from molbench.core import ARCHS, GENS
from molbench.data import load_qm9

ROOT = Path(__file__).resolve().parents[1]

def parse_val(v):
    for f in (int, float):
        try: return f(v)
        except ValueError: pass
    return {'true': True, 'false': False}.get(v.lower(), v)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=300)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--cosine', action='store_true', help='cosine learning-rate decay to 2 %% of the peak over the steps')
    ap.add_argument('--clip', type=float, default=1.0, help='gradient-norm clip (0: none)')
    ap.add_argument('--hidden', type=int, default=64)
    ap.add_argument('--layers', type=int, default=2)
    ap.add_argument('--nfe', type=int, default=20)
    ap.add_argument('--n-samples', type=int, default=32)
    ap.add_argument('--qm9-id', type=int, default=None, help="QM9's own molecule number (1 = methane), from the head of the file")
    ap.add_argument('--mol', type=int, default=None, help='index in the QM9 train split (default: first with --n-atoms atoms)')
    ap.add_argument('--n-atoms', type=int, default=13, help='pick the first training molecule with this many atoms')
    ap.add_argument('--combos', default='all', help="comma-separated arch:gen pairs (arch may be 'mlp', a non-equivariant control), or all")
    ap.add_argument('--recipe', action='store_true', help="each process's settings from params/cpu_recipe.yaml (gen_cfg), under --set")
    ap.add_argument('--set', action='append', default=[], help='process config key=value (gen_cfg)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--json', help='append one JSON row per combination to this file (with the command and code version)')
    a = ap.parse_args(argv)
    register_all()
    if a.qm9_id is not None:
        rec = next(m for m in load_qm9(nrows=a.qm9_id + 10) if m.qm9_id == a.qm9_id)
    else:
        ds = load_qm9('train', n=None if a.mol is not None else 2000)
        rec = ds[a.mol if a.mol is not None else next(i for i in range(len(ds)) if len(ds[i].z) == a.n_atoms)]
    vocab = (1, 6, 7, 8, 9)
    combos = ([(x, g) for x in ('gnn', 'transformer', 'pairformer') for g in ('flow_matching', 'diffusion', 'stochastic_interpolant')]
              if a.combos == 'all' else [tuple(c.split(':')) for c in a.combos.split(',')])
    recipe = {}
    if a.recipe:
        import yaml
        recipe = yaml.safe_load((ROOT / 'params' / 'cpu_recipe.yaml').read_text())['gen_cfg']
    extra = {k: parse_val(v) for k, v in (s.split('=', 1) for s in a.set)}
    rev = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    for arch, gen in combos:
        torch.manual_seed(a.seed)
        model = (FixedOrderMLP(len(rec.z), len(vocab)) if arch == 'mlp' else
                 ARCHS.get(arch)(len(vocab), periodic=False, context_dim=0, hidden=a.hidden, layers=a.layers))
        fields = set(GENS.get(gen).Config.__dataclass_fields__)
        kw = {k: v for k, v in {**recipe.get(gen, {}), **extra}.items() if k in fields}
        r = memorise(GENS.get(gen)(vocab, **kw), model, rec, steps=a.steps, batch_size=a.batch, n_samples=a.n_samples, nfe=a.nfe,
                     seed=a.seed, lr=a.lr, cosine=a.cosine, clip=a.clip or None, details=True)
        row = {'arch': arch, 'gen': gen, 'cfg': kw, 'steps': a.steps, **r, 'n_atoms': len(rec.z), 'smiles': rec.smiles,
               'qm9_id': rec.qm9_id, 'lr': a.lr, 'cosine': a.cosine, 'clip': a.clip, 'batch': a.batch, 'layers': a.layers,
               'hidden': a.hidden, 'nfe': a.nfe, 'n_samples': a.n_samples, 'seed': a.seed}
        print(json.dumps(row), flush=True)
        if a.json:
            row.update(command=shlex.join(['python', 'bench/memorise.py', *(sys.argv[1:] if argv is None else argv)]), git=rev)
            with open(a.json, 'a') as f: f.write(json.dumps(row) + '\n')

if __name__ == '__main__': main()
