"""bench/conditional.py: EDM's conditional protocol end to end on tiny halves, its bounds worked out by hand, resumable."""
import json, math, os, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))

GRID = '''
properties: [alpha]
n_a: 200
n_b: 200
n_val_predictor: 50
seed: 0
guidance: [1.0, 0.0]
predictor: {family: egnn, config: {hidden: 16, n_layers: 1, epochs: 1, batch_size: 32, device: cpu}}
set: {arch: gnn, gen: flow_matching, layers: 1, hidden: 16, steps: 5, minutes: null, batch_size: 16, warmup_steps: 1,
      n_samples: 12, nfe: 4, sample_batch_size: 6, n_val: 0, flops: false, metrics: false, progress: false}
tails: {n_samples: 8, guidance: [1.0], independent: {family: egnn, n_train: 200, n_val: 50,
        config: {hidden: 16, n_layers: 1, epochs: 1, batch_size: 32, device: cpu}}}
'''


def test_bounds_by_hand():
    from conditional import bounds, count_median_mae
    # A: counts 3 → values 1, 3 (median 2); 5 → 10. B: count 3 → 2.5, count 5 → 9, count 7 (unseen) → A's median 3 → |3 - 4|
    assert math.isclose(count_median_mae([3, 3, 5], [1, 3, 10], [3, 5, 7], [2.5, 9, 4]), (0.5 + 1 + 1) / 3)
    b = bounds([1.0, 2.0, float('nan')], [1.5, 2.0, 7.0], [3, 3, 5], [1, 3, 10], [3, 5, 7])
    assert math.isclose(b['qm9'], 0.25) and b['n_b'] == 2                   # the NaN prediction is left out
    assert b['random'] in (0.25, 0.75)                                      # the two targets shuffled: kept or swapped


def test_conditional_protocol_runs_and_resumes(root, tmp_path):
    (tmp_path / 'g.yaml').write_text(GRID)
    out = tmp_path / 'cond.json'
    cmd = [sys.executable, 'bench/conditional.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out), '--runs-root', str(tmp_path / 'runs')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    assert set(res['predictors']) == {'alpha'} and res['predictors']['alpha']['n_a'] == 200
    b = res['predictors']['alpha']['bounds']
    assert b['n_b'] == 200 and 0 < b['qm9'] and 0 < b['n_atoms'] and 0 < b['random']
    rows = {r['guidance']: r for r in res['rows']}
    assert set(rows) == {0.0, 1.0} and all(r['n_samples'] == 12 and r['n_scored'] + r['n_non_finite'] == 12 for r in rows.values())
    assert all(r['mae'] > 0 and (root / r['samples']).exists() for r in rows.values())
    s1 = (root / rows[1.0]['samples']).read_text(); s0 = (root / rows[0.0]['samples']).read_text()
    assert s1 != s0                                                          # guidance 0 samples the unconditional model
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p2.returncode == 0 and 'MAE' not in p2.stdout                     # nothing left to do
    # the tail stage: targets from BOOM's OOD tail of alpha, the trained generator, two predictors
    tout = tmp_path / 'tails.json'
    p3 = subprocess.run(cmd + ['--tails', '--tails-out', str(tout)], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p3.returncode == 0, p3.stderr[-3000:]
    t = json.loads(tout.read_text())
    info = t['properties']['alpha']
    assert info['n_ood'] + info['n_missing_geometry']['ood'] == 10_000          # BOOM's 10,000 OOD molecules, all accounted for
    assert info['ood_below'] > 0 and info['ood_above'] > 0                       # both tails, outside the training range
    assert info['boom_vs_qm9pack_corr'] > 0.999                                 # BOOM's values are qm9pack's, same units
    assert info['independent']['n_train'] == 200 and set(info['real_ood']) == {'half_a', 'boom_train'}
    (row,) = t['rows']
    assert row['n_samples'] == 8 and row['targets_below'] + row['targets_above'] <= 8
    lo, hi = info['train_range']
    assert row['mean_target'] < lo or row['mean_target'] > hi or row['targets_below'] * row['targets_above'] > 0
    assert all(0 <= v['in_tail'] <= 1 and v['mae'] > 0 for v in row['scores'].values())
    assert (root / row['samples']).exists()


def test_tail_side():
    from conditional import tail_side
    assert tail_side([1.0, 5.0, 9.0, 2.0], 2.0, 8.0).tolist() == [-1, 0, 1, 0]   # the range's ends are inside
