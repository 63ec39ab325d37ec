#!/usr/bin/env python
"""Transfer between molecules and crystals: fine-tuned from another world against trained from scratch, at equal steps.

For each (source → target) pair of the grid (default params/transfer.yaml) and each seed: a model is pretrained on the
source data set, then trained on the target starting from its EMA weights (`run(init_from=...)`), and a second model of
the same size trains on the target from scratch for the same number of steps — the same FLOPs, since the architecture
and the data are the same. All models share one element vocabulary (the union of the grid's data sets), so the type
embeddings transfer too. Offline, the CDVAE crystal sets have only val and test files: crystal runs train on val and are
scored on test, which the results say. Molecules are scored with EDM's metrics against the first `n_reference`
validation and test molecules, crystals with CDVAE's against the first `n_reference` test crystals. Every run records its
deterministic validation-loss curve (the learning curve).

The results file (default results/transfer_cpu.json) holds provenance, the grid, `rows` (one per run: source, target,
seed, init = pretrain | transfer | scratch, steps, the validation curve, metrics, committed samples) and `pairs`: per
(source, target) the mean and 95 % t-interval over seeds of transfer − scratch (paired by seed) for the final validation
loss and the headline metrics.

Resumable: finished rows are skipped; interrupted runs continue in their folders.

Usage: OMP_NUM_THREADS=1 python bench/transfer.py [--grid params/transfer.yaml] [--out results/transfer_cpu.json]
                                                  [--runs-root runs/transfer]
"""
from __future__ import annotations
import argparse, json, os, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / 'bench'))
from scaling import provenance, _jsonable
from benchmark import score, t_interval, copy_samples, CRYSTALS
from cpu_recipe import val_curve

HEADLINE = {'molecules': ('atom_stability', 'validity', 'fcd'), 'crystals': ('validity', 'cov_recall', 'cov_precision', 'w1_density')}


def split_of(ds: str) -> str:
    "The split a run trains on: QM9's train; a crystal set's val (its train file is not available offline)."
    return 'val' if ds in CRYSTALS else 'train'


def pair_summary(rows: list[dict]) -> dict:
    "Per (source, target): transfer − scratch per seed (paired), mean and 95 % t-interval, for the val loss and headline metrics."
    out = {}
    by = {(r['source'], r['target'], r['seed'], r['init']): r for r in rows if r['init'] == 'transfer'}
    by.update({(src, r['target'], r['seed'], 'scratch'): r for r in rows if r['init'] == 'scratch'
               for src in {q['source'] for q in rows if q['init'] == 'transfer' and q['target'] == r['target']}})
    for (src, tgt) in sorted({(r['source'], r['target']) for r in rows if r['init'] == 'transfer'}):
        seeds = sorted(s for (a, b, s, i) in by if (a, b, i) == (src, tgt, 'transfer') and (src, tgt, s, 'scratch') in by)
        if not seeds: continue
        kind = 'crystals' if tgt in CRYSTALS else 'molecules'
        diffs = {'val_loss': [by[(src, tgt, s, 'transfer')]['val_loss'] - by[(src, tgt, s, 'scratch')]['val_loss'] for s in seeds]}
        for m in HEADLINE[kind]:
            a = [by[(src, tgt, s, 'transfer')]['metrics']['test'].get(m) for s in seeds]
            b = [by[(src, tgt, s, 'scratch')]['metrics']['test'].get(m) for s in seeds]
            diffs[m] = [x - y for x, y in zip(a, b) if x is not None and y is not None]
        out[f'{src}->{tgt}'] = {'seeds': seeds, 'transfer_minus_scratch': {k: dict(zip(('mean', 'lo', 'hi'), t_interval(v)))
                                                                             for k, v in diffs.items()}}
    return out


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--grid', default=str(ROOT / 'params' / 'transfer.yaml'))
    ap.add_argument('--out', default=str(ROOT / 'results' / 'transfer_cpu.json'))
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'transfer'))
    a = ap.parse_args(argv)
    import yaml
    from molbench.core import write_json
    from molbench.generative import run
    from molbench.generative.runner import resolve_params
    from molbench.generative.transfer import shared_vocab
    g = yaml.safe_load(Path(a.grid).read_text())
    out, runs = Path(a.out), Path(a.runs_root)
    sdir = out.with_name(out.stem + '_samples')
    rows = {r['name']: r for r in (json.loads(out.read_text()).get('rows', []) if out.exists() else [])}
    prov = provenance(argv, 'bench/transfer.py')
    datasets = sorted({d for p in g['pairs'] for d in p})
    vocab = g.get('vocab') or shared_vocab(*datasets, n=g.get('vocab_n'))
    def save():
        rs = sorted(rows.values(), key=lambda r: r['name'])
        write_json(out, {**prov, 'grid': g, 'vocab': vocab,
                         'splits': {d: f"trains on {split_of(d)}; scored on " + ('test' if d in CRYSTALS else 'val and test') for d in datasets},
                         'budget': {'cpu_hours': round(sum(r['cpu_s'] for r in rs) / 3600, 3), 'runs': len(rs)},
                         'rows': rs, 'pairs': pair_summary(rs)})
    def one(name, dataset, seed, steps, init, source=None, target=None, init_from=None):
        if name in rows: return rows[name]
        c0, w0 = time.process_time(), time.perf_counter()
        kw = dict(arch=g['arch'], gen=g['gen'], dataset=dataset, split=split_of(dataset), seed=seed, steps=steps,
                  vocab=vocab, init_from=init_from, **(g.get('set') or {}), n_train=g.get('n_train', {}).get(dataset))
        p = resolve_params(g.get('profile'), **kw)  # before the run: a profile edited while it trains cannot change them
        m = run(profile=g.get('profile'), run_dir=str(runs / name), **kw)
        rd = Path(m['run_dir'])
        sc = score(rd, p, g.get('n_reference', 500))
        copied = copy_samples(rd, sdir, name)
        rows[name] = _jsonable({'name': name, 'source': source, 'target': target or dataset, 'dataset': dataset,
                                'seed': seed, 'init': init, 'steps': steps, 'train_flops': (m.get('compute') or {}).get('train_flops'),
                                'val_loss': (m.get('validation') or {}).get('val_loss'), 'val_curve': val_curve(rd),
                                'init_from': m.get('init_from', {}).get('n_copied') if init == 'transfer' else None,
                                'metrics': sc, 'samples': os.path.relpath(copied, ROOT) if copied else None,
                                'run_dir': os.path.relpath(rd, ROOT),
                                'cpu_s': round(time.process_time() - c0, 1), 'wall_s': round(time.perf_counter() - w0, 1)})
        save()
        print(f"{name}: val loss {rows[name]['val_loss']}", flush=True)
        return rows[name]
    def weights_gone(name):
        "A finished pretraining whose run folder is gone (runs/ is not committed): its fine-tunes need the weights again."
        return name in rows and not any((runs / name).glob('*.pt'))
    for seed in g['seeds']:
        for src, tgt in g['pairs']:
            pre = f"pre-{src}-s{seed}"
            if f"{src}-to-{tgt}-s{seed}" not in rows and weights_gone(pre):
                print(f"{pre}: its run folder is gone and {src}-to-{tgt}-s{seed} needs its weights; training it again", flush=True)
                shutil.rmtree(runs / pre, ignore_errors=True); rows.pop(pre)
            one(pre, src, seed, g['pretrain_steps'], 'pretrain')
            one(f"{src}-to-{tgt}-s{seed}", tgt, seed, g['finetune_steps'], 'transfer', src, tgt, init_from=str(runs / pre))
            one(f"scratch-{tgt}-s{seed}", tgt, seed, g['finetune_steps'], 'scratch', None, tgt)   # one per target: every source's baseline
    save()


if __name__ == '__main__':
    main()
