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
