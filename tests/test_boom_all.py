"""Every BOOM model family runs on every one of the ten tasks through the runner (smoke profile: wiring, not quality)."""
import math
import pandas as pd
from conftest import run

FAMILIES = ['rf', 'mlp', 'chemprop', 'gcn', 'gin', 'gat', 'mpnn', 'tgnn', 'egnn', 'mace', 'et', 'graphormer3d',
            'chemberta', 'modernbert', 'molformer', 'regression_transformer']

def test_every_family_on_every_task(tmp_path):
    out = tmp_path / 'boom_smoke.csv'
    run(['python', 'bench/boom_sweep.py', '--models', ','.join(FAMILIES), '--tasks', 'all', '--profile', 'smoke',
         '--jobs', '2', '--runs-root', str(tmp_path / 'runs'), '--out', str(out)], timeout=1800)
    t = pd.read_csv(out)
    assert len(t) == len(FAMILIES) * 10, len(t)
    assert set(t.model) == set(FAMILIES) and t.task.nunique() == 10
    for r in t.itertuples():
        assert math.isfinite(r.id_rmse) and math.isfinite(r.ood_rmse), (r.model, r.task)
        assert r.n_id > 0 and r.n_ood > 0, (r.model, r.task)
        if r.model != 'rf':   # every trained family says why it stopped; the smoke profile caps its steps
            assert r.stop_reason in ('max_steps', 'epochs', 'patience'), (r.model, r.task, r.stop_reason)
    assert len(list((tmp_path / 'runs').glob('*/metrics.json'))) == len(t)   # one run folder per pair
    assert t.command.str.startswith('python bench/boom_sweep.py --models').all() and (t.git_commit.str.len() == 12).all()
