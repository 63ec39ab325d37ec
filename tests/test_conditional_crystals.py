"""bench/conditional_crystals.py: EDM's conditional protocol on perov-5 (tiny sets), its descriptors, resumable."""
import json, os, subprocess, sys
from pathlib import Path
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))

GRID = '''
tasks: {perov5: heat_ref}
n_a: 60
n_b: 40
seed: 0
guidance: [1.0, 0.0]
predictor: {n_estimators: 20}
set: {arch: gnn, gen: flow_matching, layers: 1, hidden: 16, steps: 5, minutes: null, batch_size: 16, warmup_steps: 1, n_train: 64,
      n_samples: 8, nfe: 4, sample_batch_size: 8, n_val: 0, flops: false, metrics: false, progress: false, p_uncond: 0.1}
'''


def test_crystal_features_count_what_they_cannot_describe():
    from pymatgen.core import Lattice, Structure
    from conditional_crystals import crystal_features
    cubic = Structure(Lattice.cubic(3.9), ['Sr', 'Ti', 'O', 'O', 'O'],
                      [[0, 0, 0], [.5, .5, .5], [.5, .5, 0], [.5, 0, .5], [0, .5, .5]])
    tiny = Structure(Lattice.cubic(0.5), ['C'], [[0, 0, 0]])                  # 0.125 Å³ per atom: a collapsed cell
    X, why = crystal_features([cubic, None, tiny])
    assert why == ['', 'unbuildable', 'small_volume'] and X.shape == (3, 132 + 30 + 3)
    assert np.isfinite(X[0]).all() and np.isnan(X[1:]).all()
    assert np.allclose(X[0, -3:], [cubic.density, 3.9 ** 3 / 5, 5])        # density, volume per atom, atom count
    assert X[0, 132:132 + 9].sum() == 0 and X[0, 132:162].sum() > 0         # no neighbour closer than 1.8 Å; some within 6 Å


def test_conditional_crystals_run_and_resume(root, tmp_path):
    (tmp_path / 'g.yaml').write_text(GRID)
    out = tmp_path / 'cc.json'
    cmd = [sys.executable, 'bench/conditional_crystals.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out),
           '--runs-root', str(tmp_path / 'runs')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    pr = res['predictors']['perov5-heat_ref']
    assert pr['n_a'] == 60 and pr['bounds']['n_b'] == 40 and pr['set_a'].startswith('test') and pr['set_b'].startswith('val')
    assert 0 < pr['bounds']['on_b'] and 0 < pr['bounds']['random'] and 0 < pr['bounds']['n_atoms']
    rows = {r['guidance']: r for r in res['rows']}
    assert set(rows) == {0.0, 1.0}
    for r in rows.values():
        assert r['n_samples'] == 8 and r['n_scored'] + sum(r['unscored'].values()) == 8 and 0 <= r['validity'] <= 1
        assert (r['mae'] is None) == (r['n_scored'] == 0) and (r['mae'] is None or r['mae'] > 0)
        assert (root / r['samples']).read_text().count('data_') == 8             # every generated cell, as CIF
    assert (root / rows[1.0]['samples']).read_text() != (root / rows[0.0]['samples']).read_text()   # 0 = unconditional
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p2.returncode == 0 and 'MAE' not in p2.stdout                     # nothing left to do
