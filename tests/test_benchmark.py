"""bench/benchmark.py: equal-compute runs, scores on val and test, intervals over seeds, significance; resumable."""
import json, math, os, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))

GRID = '''
dataset: qm9
profile: smoke
archs: [gnn]
gens: [flow_matching, diffusion]
flops_budgets: [2.0e+08]
seeds: [0, 1]
n_reference: 32
set: {n_val: 16, n_samples: 16, sample_batch_size: 16, nfe: 4}
'''


def test_statistics_against_scipy_and_by_hand():
    from benchmark import holm, t_interval
    m, lo, hi = t_interval([1.0, 2.0, 3.0])                         # mean 2, sd 1, t(0.975, 2) = 4.302653
    assert m == 2.0 and math.isclose(hi - m, 4.302653 / math.sqrt(3), rel_tol=1e-6) and math.isclose(m - lo, hi - m)
    assert math.isnan(t_interval([5.0])[1])                           # one seed: no interval
    assert holm({'a': 0.01, 'b': 0.04, 'c': 0.03}) == {'a': 0.03, 'c': 0.06, 'b': 0.06}   # 3p, max(2p, ·), max(p, ·)


def test_benchmark_equal_compute_scores_and_resumes(root, tmp_path):
    (tmp_path / 'g.yaml').write_text(GRID)
    out = tmp_path / 'bench.json'
    cmd = [sys.executable, 'bench/benchmark.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out), '--runs-root', str(tmp_path / 'runs')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    rows = res['rows']
    assert sorted((r['gen'], r['seed']) for r in rows) == [('diffusion', 0), ('diffusion', 1), ('flow_matching', 0), ('flow_matching', 1)]
    for g in ('flow_matching', 'diffusion'):                         # equal compute: every seed of a combination the same steps
        assert len({r['steps'] for r in rows if r['gen'] == g}) == 1
    assert all(abs(r['steps'] * r['train_flops_per_step'] - 2e8) <= r['train_flops_per_step'] for r in rows)
    assert all(set(r['metrics']) == {'val', 'test'} and r['metrics']['test']['n_samples'] == 16 for r in rows)
    assert all((root / r['samples']).resolve() == (tmp_path / 'bench_samples' / f"{r['name']}.xyz") for r in rows)
    assert all((tmp_path / 'bench_samples' / f"{r['name']}.xyz").read_text().startswith(('16\n', '1', '2')) for r in rows)
    assert {(c['arch'], c['gen']) for c in res['cells']} == {('gnn', 'flow_matching'), ('gnn', 'diffusion')}
    assert all(set(c['test']['atom_stability']) == {'mean', 'lo', 'hi'} and c['seeds'] == [0, 1] for c in res['cells'])
    (rank,) = res['rankings'].values()
    assert len(rank['order']) == 2 and len(rank['pairs']) == 1 and 'significant' in rank['pairs'][0]
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p2.returncode == 0 and '0 run(s) to do, 4 done' in p2.stdout, p2.stdout + p2.stderr[-2000:]


CRYSTAL_GRID = '''
dataset: perov5
profile: smoke
archs: [gnn]
gens: [flow_matching]
flops_budgets: [1.0e+08]
seeds: [0, 1]
n_reference: 12
rank_by: validity
set: {split: val, n_val: 8, n_samples: 8, sample_batch_size: 8, nfe: 4}
'''


def test_benchmark_scores_crystals_with_cdvae_metrics(root, tmp_path):
    (tmp_path / 'g.yaml').write_text(CRYSTAL_GRID)
    out = tmp_path / 'xtal.json'
    cmd = [sys.executable, 'bench/benchmark.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out), '--runs-root', str(tmp_path / 'runs')]
    p = subprocess.run(cmd, cwd=root, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert len(res['rows']) == 2 and all(set(r['metrics']) == {'test'} for r in res['rows'])
    t = res['rows'][0]['metrics']['test']
    assert {'struct_validity', 'comp_validity', 'cov_recall', 'cov_precision', 'w1_density'} <= set(t) and t['n_reference'] == 12
    (c,) = res['cells']
    assert set(c['test']['validity']) == {'mean', 'lo', 'hi'} and 'val' not in c
    (rank,) = res['rankings'].values()
    assert (tmp_path / 'xtal_samples').is_dir() and rank['by'] == 'validity on test'
