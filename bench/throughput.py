#!/usr/bin/env python
"""Training and sampling throughput of every backbone × process on QM9, at the default sizes, on this machine.

For each of the 9 combinations (sizes from params/<arch>.yaml, NFE and solver / schedule from params/<gen>.yaml, batch size
from the default run) a fresh child process (so peak memory is per combination):
  - trains `--steps` optimiser steps (AdamW, after one untimed warm-up step) → training molecules/s;
  - samples `--n-samples` molecules with the default NFE (atom counts from the training histogram) → sampling molecules/s;
  - reports memory as the child's peak resident set size (getrusage ru_maxrss), in total and as the increase over the
    RSS measured after imports and data loading (what the model, its activations and the optimiser added).

Usage: OMP_NUM_THREADS=1 python bench/throughput.py [--steps 5] [--n-samples 32] [--threads 1] [--json out.json]
"""
from __future__ import annotations
import argparse, json, os, resource, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH_NAMES = ('gnn', 'transformer', 'pairformer')
GEN_NAMES = ('flow_matching', 'diffusion', 'stochastic_interpolant')

def rss_mb() -> float:
    "Current resident set size of this process in MiB (Linux /proc)."
    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20

def peak_mb() -> float:
    "Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def one(arch: str, gen: str, steps: int, n_samples: int, threads: int, n_train: int, bucket: int = 0,
        arch_cfg: dict | None = None) -> dict:
    "Measure one combination in this process (`bucket` > 0: size-bucketed batches; `arch_cfg`: backbone options)."
    import torch
    torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    from molbench.generative.runner import resolve_params, build_data, build_model, build_process, generate
    from dataclasses import fields
    from molbench.generative.runner import register_all
    from molbench.core import ARCHS
    register_all()
    cfg_cls = {'gnn': 'GNNConfig', 'transformer': 'TransformerConfig', 'pairformer': 'PairformerConfig'}[arch]
    valid = {f.name for f in fields(getattr(sys.modules[ARCHS.get(arch).__module__], cfg_cls))}
    arch_cfg = {k: v for k, v in (arch_cfg or {}).items() if k in valid}     # options of other backbones are ignored
    p = resolve_params(profile=f'{arch},{gen}', n_train=n_train, n_samples=n_samples, sample_batch_size=n_samples,
                       device='cpu', progress=False, arch_cfg=arch_cfg)
    data = build_data(p)
    if bucket:
        from molbench.data.batching import make_loader
        data.loader = make_loader(data.dataset, p.batch_size, shuffle=True, seed=p.seed, bucket=bucket)
    base = rss_mb()
    model, process = build_model(p, data), build_process(p, data)
    opt = torch.optim.AdamW(model.parameters(), lr=p.lr)
    it = iter(data.loader)
    def step():
        b = next(it)
        loss, _ = process.loss(model, b)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return len(b)
    model.train(); step()                                               # warm-up, untimed
    t0 = time.perf_counter(); n = sum(step() for _ in range(steps)); t_train = time.perf_counter() - t0
    _, timing = generate(p, model, process, data, torch.device('cpu'))
    return {'arch': arch, 'gen': gen, 'hidden': p.hidden, 'layers': p.layers, 'heads': p.heads, 'batch_size': p.batch_size,
            'nfe': p.nfe, 'n_params': sum(q.numel() for q in model.parameters()),
            'train_mol_per_s': n / t_train, 's_per_step': t_train / steps,
            'sample_mol_per_s': timing['samples_per_s'], 'sampling_s': timing['sampling_s'], 'n_samples': n_samples,
            'peak_rss_mb': peak_mb(), 'peak_rss_delta_mb': peak_mb() - base, 'bucket': bucket, 'arch_cfg': arch_cfg or {}}

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=5, help='timed optimiser steps per combination')
    ap.add_argument('--n-samples', type=int, default=32, help='molecules sampled per combination')
    ap.add_argument('--threads', type=int, default=1, help='torch threads')
    ap.add_argument('--n-train', type=int, default=2000, help='training molecules loaded (the loader only needs a few batches)')
    ap.add_argument('--archs', default=','.join(ARCH_NAMES)); ap.add_argument('--gens', default=','.join(GEN_NAMES))
    ap.add_argument('--json', help='also write the rows to this JSON file')
    ap.add_argument('--bucket', type=int, default=0, help='size-bucketed batches from pools of this many batches (0: plain shuffling)')
    ap.add_argument('--arch-cfg', default='{}', help='backbone options as JSON, e.g. \'{"geometric_values": false}\'')
    ap.add_argument('--one', nargs=2, metavar=('ARCH', 'GEN'), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(*a.one, a.steps, a.n_samples, a.threads, a.n_train, a.bucket, json.loads(a.arch_cfg)))); return
    rows = []
    hdr = f"{'arch':<12}{'gen':<24}{'params':>9}{'bs':>4}{'nfe':>5}{'train mol/s':>13}{'s/step':>8}{'sample mol/s':>14}{'peak RSS MiB':>14}{'Δ MiB':>8}"
    print(hdr); print('-' * len(hdr))
    for arch in a.archs.split(','):
        for gen in a.gens.split(','):
            cmd = [sys.executable, __file__, '--one', arch, gen, '--steps', str(a.steps), '--n-samples', str(a.n_samples),
                   '--threads', str(a.threads), '--n-train', str(a.n_train), '--bucket', str(a.bucket), '--arch-cfg', a.arch_cfg]
            r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            if r.returncode != 0:
                print(f"{arch:<12}{gen:<24} FAILED: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}")
                rows.append({'arch': arch, 'gen': gen, 'error': r.stderr[-2000:]}); continue
            row = json.loads(r.stdout.strip().splitlines()[-1]); rows.append(row)
            print(f"{arch:<12}{gen:<24}{row['n_params']:>9,}{row['batch_size']:>4}{row['nfe']:>5}{row['train_mol_per_s']:>13.1f}"
                  f"{row['s_per_step']:>8.2f}{row['sample_mol_per_s']:>14.2f}{row['peak_rss_mb']:>14.0f}{row['peak_rss_delta_mb']:>8.0f}", flush=True)
    print(f"\nCPU threads: {a.threads}; load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores. "
          f"Memory: peak RSS of each child process (getrusage ru_maxrss) and its increase over the RSS after data loading.")
    if a.json:
        rev = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        meta = {'command': ' '.join(['python', 'bench/throughput.py'] + sys.argv[1:]), 'git': rev, 'cpu_count': os.cpu_count(),
                'load_avg_end': os.getloadavg()[0], 'threads': a.threads}
        Path(a.json).write_text(json.dumps([dict(r, meta=meta) for r in rows], indent=1))   # a list of rows, as the book reads it

if __name__ == '__main__':
    main()
