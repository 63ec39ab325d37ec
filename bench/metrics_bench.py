"""Time `evaluate_molecules` on 10,000 QM9 molecules (EDM val split) against the test split, with and without FCD.

Usage: OMP_NUM_THREADS=1 python bench/metrics_bench.py [--n 10000] [--n-train 20000] [--no-posebusters]
Prints the wall time and the CPU time of this process (time.process_time) for each stage, then the metrics. On a
shared machine the CPU time is the figure to compare; wall time includes waiting for other processes."""
import argparse, json, os, time
os.environ.setdefault('OMP_NUM_THREADS', '1')
import torch
torch.set_num_threads(1)
from molbench.qm9 import load_qm9
from molbench.metrics_mol import evaluate_molecules, molecule_reference, smiles_from_edm

class Timer:
    "Wall and process CPU seconds of a `with` block."
    def __enter__(self): self.w, self.c = time.perf_counter(), time.process_time(); return self
    def __exit__(self, *a): self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c
    def __str__(self): return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU"

def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--n', type=int, default=10_000, help='generated-side molecules (val split)')
    p.add_argument('--n-ref', type=int, default=10_000, help='reference molecules (test split)')
    p.add_argument('--n-train', type=int, default=20_000, help='training molecules whose SMILES define novelty')
    p.add_argument('--no-posebusters', action='store_true', help='skip PoseBusters + MMFF strain (the slow per-molecule checks)')
    a = p.parse_args()
    with Timer() as t:
        samples = list(load_qm9('val', a.n)); ref_ds = list(load_qm9('test', a.n_ref)); train = list(load_qm9('train', a.n_train))
    print(f"load: {t}", flush=True)
    with Timer() as t: ref = molecule_reference(ref_ds)
    print(f"reference ({a.n_ref:,} molecules, with ChemNet stats): {t}", flush=True)
    with Timer() as t: train_smiles = [s for s in (smiles_from_edm(m.z, m.pos) for m in train) if s]
    print(f"training SMILES ({a.n_train:,}): {t}", flush=True)
    pb = not a.no_posebusters
    extra = 'PoseBusters + strain on 100' if pb else 'no PoseBusters / strain'
    for label, kw in [(f'all molecule metrics (FCD, RDKit-bond validity, {extra})', dict(fcd=True, posebusters=pb)),
                      (f'without FCD ({extra})', dict(fcd=False, posebusters=pb))]:
        with Timer() as t: r = evaluate_molecules(samples, ref, training_smiles=train_smiles, **kw)
        print(f"evaluate_molecules {a.n:,} molecules, {label}: {t}", flush=True)
        print('  wall seconds per stage:', {k: round(v, 1) for k, v in r['timings'].items()}, flush=True)
        if kw['fcd']: print(f"  fcd = {r['fcd']:.4f}", flush=True)
    print(json.dumps({k: v for k, v in r.items() if not k.startswith('pb_')}, indent=1, default=str))

if __name__ == '__main__': main()
