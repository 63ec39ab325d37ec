"""bench/boom_near_duplicates.py: the OOD error split by near duplicates, by hand; the script on BOOM's density task (smoke profile)."""
import json, math, sys
from pathlib import Path
import pandas as pd
from conftest import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))


def test_split_by_similarity_by_hand():
    from boom_near_duplicates import split_by_similarity
    pred = pd.DataFrame({'id': [1, 2, 3, 4, 5], 'split': ['ood', 'ood', 'ood', 'id', 'ood'],
                         'y': [0.0, 0.0, 0.0, 0.0, 0.0], 'y_pred': [1.0, 3.0, 4.0, 9.0, 2.0]})
    s = split_by_similarity(pred, {1: 1.0, 2: 0.5, 3: 0.95, 4: 1.0}, near=0.9)   # id 5 has no similarity: unmatched
    assert s['n_ood'] == 4 and s['n_unmatched'] == 1
    assert s['near']['n'] == 2 and math.isclose(s['near']['rmse'], math.sqrt((1 + 16) / 2))   # ids 1 and 3
    assert s['rest']['n'] == 1 and math.isclose(s['rest']['rmse'], 3.0)                        # id 2; the ID row is ignored
    assert math.isclose(s['ood_rmse'], math.sqrt((1 + 9 + 16 + 4) / 4))


def test_near_duplicates_on_density(tmp_path):
    out = tmp_path / 'nd.json'
    (tmp_path / 'pred').mkdir()
    run(['python', 'bench/boom_near_duplicates.py', '--tasks', 'density', '--profile', 'smoke', '--predictions',
         str(tmp_path / 'pred'), '--out', str(out)], timeout=600)
    r = json.loads(out.read_text())
    d = r['tasks']['density']
    assert r['profile'] == 'smoke' and d['n_train'] == 64 and d['id']['n'] == d['ood']['n'] == 32
    for split in ('id', 'ood'):
        q, at = d[split]['quantiles'], d[split]['at_least']
        assert 0 <= q['q10'] <= q['q50'] <= q['q90'] <= q['max'] <= 1
        assert at['0.7'] >= at['0.8'] >= at['0.9'] >= at['1'] >= 0
    assert d['models'] == {} and r['command'].startswith('python bench/boom_near_duplicates.py')
