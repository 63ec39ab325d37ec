"""bench/transfer.py on a tiny grid: pretrain on QM9, fine-tune on perov-5 from its weights, against scratch; resumable."""
import json, shutil, os, subprocess, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))

GRID = '''
arch: gnn
gen: flow_matching
profile: smoke
pairs: [[qm9, perov5]]
seeds: [0]
pretrain_steps: 4
finetune_steps: 3
n_reference: 12
vocab_n: 200
n_train: {qm9: 64, perov5: 64}
set: {n_val: 8, n_samples: 8, sample_batch_size: 8, nfe: 4, ckpt_every: 2}
joint: {pairs: [[qm9, perov5]], steps: 3}
'''


def test_pair_summary_is_paired_by_seed():
    from transfer import pair_summary
    row = lambda init, seed, loss, src='qm9': {'source': src if init != 'scratch' else None, 'target': 'perov5', 'seed': seed,
                                               'init': init, 'val_loss': loss, 'metrics': {'test': {'validity': loss}}}
    rows = [row('transfer', 0, 1.0), row('scratch', 0, 3.0), row('transfer', 1, 2.0), row('scratch', 1, 3.0), row('transfer', 2, 9.0)]
    s = pair_summary(rows)['qm9->perov5']
    assert s['seeds'] == [0, 1] and s['transfer_minus_scratch']['val_loss']['mean'] == -1.5   # (−2 + −1) / 2; seed 2 has no pair
    joint = [dict(row('joint', k, v, 'qm9'), joint='qm9+perov5') for k, v in ((0, 4.0), (1, 5.0))]
    j = pair_summary(rows + joint)['joint(qm9+perov5)->perov5']
    assert j['seeds'] == [0, 1] and j['joint_minus_scratch']['val_loss']['mean'] == 1.5            # (1 + 2) / 2


def test_transfer_runs_and_resumes(root, tmp_path):
    (tmp_path / 'g.yaml').write_text(GRID)
    out = tmp_path / 'transfer.json'
    cmd = [sys.executable, 'bench/transfer.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out), '--runs-root', str(tmp_path / 'runs')]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    by = {r['init']: r for r in res['rows'] if r['name'] != 'scratch-qm9-s0'}   # (scratch on QM9: the joint model's other baseline)
    assert set(by) == {'pretrain', 'transfer', 'scratch', 'joint'}
    joint = {r['target']: r for r in res['rows'] if r['init'] == 'joint'}
    assert set(joint) == {'qm9', 'perov5'} and joint['qm9']['train_flops'] == joint['perov5']['train_flops'] > 0
    assert joint['perov5']['steps'] == 3 and joint['perov5']['batch_size'] == {'qm9': 4, 'perov5': 4}
    assert set(joint['qm9']['metrics']) == {'val', 'test'} and set(joint['perov5']['metrics']) == {'test'}
    assert joint['qm9']['val_curve'] and joint['qm9']['val_curve'][-1]['val_loss'] == joint['qm9']['val_loss']
    assert {'scratch-qm9-s0', 'scratch-perov5-s0'} <= {r['name'] for r in res['rows']}      # the joint model's baselines
    assert {'joint(qm9+perov5)->qm9', 'joint(qm9+perov5)->perov5'} <= set(res['pairs'])
    assert by['transfer']['init_from'] > 0 and by['scratch']['init_from'] is None
    assert by['transfer']['steps'] == by['scratch']['steps'] == 3 and by['transfer']['train_flops'] == by['scratch']['train_flops']
    assert set(by['pretrain']['metrics']) == {'val', 'test'} and set(by['transfer']['metrics']) == {'test'}
    assert by['transfer']['samples'].endswith('.cif') and (root / by['transfer']['samples']).read_text().count('data_') == 8
    assert set(res['vocab']) >= {1, 6, 7, 8, 9} and 'qm9->perov5' in res['pairs'] and 'trains on val' in res['splits']['perov5']
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert p2.returncode == 0 and 'val loss' not in p2.stdout                   # everything was done
    # a fresh clone has no runs/: a fine-tune still to do whose pretraining folder is gone trains the pretraining again
    res['rows'] = [r for r in res['rows'] if r['init'] != 'transfer']
    out.write_text(json.dumps(res))
    shutil.rmtree(tmp_path / 'runs' / by['pretrain']['name'])
    p3 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert p3.returncode == 0 and 'training it again' in p3.stdout, p3.stderr[-3000:]
    assert {r['init'] for r in json.loads(out.read_text())['rows']} == {'pretrain', 'transfer', 'scratch', 'joint'}
