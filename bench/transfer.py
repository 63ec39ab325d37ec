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


def _paired(a_rows: dict, b_rows: dict, kind: str) -> dict | None:
    "Per seed a − b (rows keyed by seed): mean and 95 % t-interval for the val loss and the headline metrics of `kind`."
    seeds = sorted(set(a_rows) & set(b_rows))
    if not seeds: return None
    diffs = {'val_loss': [a_rows[s]['val_loss'] - b_rows[s]['val_loss'] for s in seeds
                          if a_rows[s]['val_loss'] is not None and b_rows[s]['val_loss'] is not None]}
    for m in HEADLINE[kind]:
        a = [a_rows[s]['metrics']['test'].get(m) for s in seeds]
        b = [b_rows[s]['metrics']['test'].get(m) for s in seeds]
        diffs[m] = [x - y for x, y in zip(a, b) if x is not None and y is not None]
    return {'seeds': seeds, 'transfer_minus_scratch': {k: dict(zip(('mean', 'lo', 'hi'), t_interval(v))) for k, v in diffs.items()}}


def pair_summary(rows: list[dict]) -> dict:
    """Per (source, target): transfer − scratch per seed (paired), mean and 95 % t-interval, for the val loss and headline
    metrics; per joint run and data set (`joint(a+b)->w`): the joint model on w − the scratch model on w, the same way."""
    out = {}
    scratch = {}
    for r in rows:
        if r['init'] == 'scratch': scratch.setdefault(r['target'], {})[r['seed']] = r
    for (src, tgt) in sorted({(r['source'], r['target']) for r in rows if r['init'] == 'transfer'}):
        tr = {r['seed']: r for r in rows if r['init'] == 'transfer' and (r['source'], r['target']) == (src, tgt)}
        res = _paired(tr, scratch.get(tgt, {}), 'crystals' if tgt in CRYSTALS else 'molecules')
        if res: out[f'{src}->{tgt}'] = res
    for (pair, w) in sorted({(r['joint'], r['target']) for r in rows if r['init'] == 'joint'}):
        jr = {r['seed']: r for r in rows if r['init'] == 'joint' and (r['joint'], r['target']) == (pair, w)}
        res = _paired(jr, scratch.get(w, {}), 'crystals' if w in CRYSTALS else 'molecules')
        if res: out[f'joint({pair})->{w}'] = {'seeds': res['seeds'], 'joint_minus_scratch': res['transfer_minus_scratch']}
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
    from molbench.generative.transfer import shared_vocab, run_joint
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
    def joint(pair, seed):
        "A joint run on mixed batches of the pair's data sets (run_joint), scored per data set: one row each."
        label = '+'.join(pair)
        names = {w: f"joint-{label}@{w}-s{seed}" for w in pair}
        if all(n in rows for n in names.values()): return
        jg = g['joint']
        c0, w0 = time.process_time(), time.perf_counter()
        kw = dict(arch=g['arch'], gen=g['gen'], seed=seed, steps=jg['steps'], vocab=vocab, **(g.get('set') or {}))
        ps = {w: resolve_params(g.get('profile'), dataset=w, split=split_of(w), n_train=g.get('n_train', {}).get(w), **kw) for w in pair}
        j = run_joint({w: split_of(w) for w in pair}, run_dir=str(runs / f"joint-{label}-s{seed}"), batch_size=jg.get('batch_size'),
                      n_train={w: g.get('n_train', {}).get(w) for w in pair}, profile=g.get('profile'), **kw)
        cpu, wall = round(time.process_time() - c0, 1), round(time.perf_counter() - w0, 1)
        for w in pair:
            rd = Path(j['worlds'][w]['run_dir'])
            copied = copy_samples(rd, sdir, names[w])
            rows[names[w]] = _jsonable({'name': names[w], 'source': '+'.join(x for x in pair if x != w), 'target': w, 'dataset': w,
                                        'seed': seed, 'init': 'joint', 'joint': label, 'steps': jg['steps'],
                                        'batch_size': j['batch_size'], 'train_flops': j['train_flops'],
                                        'val_loss': j['val_loss'][w], 'val_curve': val_curve(Path(j['run_dir']), f'{w}/val_loss'),
                                        'init_from': None, 'metrics': score(rd, ps[w], g.get('n_reference', 500)),
                                        'samples': os.path.relpath(copied, ROOT) if copied else None,
                                        'run_dir': os.path.relpath(rd, ROOT), 'cpu_s': round(cpu / len(pair), 1),
                                        'wall_s': round(wall / len(pair), 1), 'cost_note': 'the joint run\'s CPU time, split evenly over its data sets'})
        save()
        print(f"joint {label} s{seed}: val loss {j['val_loss']}", flush=True)
    for seed in g['seeds']:
        for src, tgt in g['pairs']:
            pre = f"pre-{src}-s{seed}"
            if f"{src}-to-{tgt}-s{seed}" not in rows and weights_gone(pre):
                print(f"{pre}: its run folder is gone and {src}-to-{tgt}-s{seed} needs its weights; training it again", flush=True)
                shutil.rmtree(runs / pre, ignore_errors=True); rows.pop(pre)
            one(pre, src, seed, g['pretrain_steps'], 'pretrain')
            one(f"{src}-to-{tgt}-s{seed}", tgt, seed, g['finetune_steps'], 'transfer', src, tgt, init_from=str(runs / pre))
            one(f"scratch-{tgt}-s{seed}", tgt, seed, g['finetune_steps'], 'scratch', None, tgt)   # one per target: every source's baseline
    for seed in g['seeds']:                                           # joint training on mixed batches, against the same scratch rows
        for pair in (g.get('joint') or {}).get('pairs', []):
            for w in pair:                                            # its baselines: scratch on each data set at the same steps
                if w not in {t for _, t in g['pairs']}: one(f"scratch-{w}-s{seed}", w, seed, g['finetune_steps'], 'scratch', None, w)
            joint(pair, seed)
    save()


if __name__ == '__main__':
    main()
