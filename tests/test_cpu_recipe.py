"""bench/cpu_recipe.py through bench/gpu_run.sh --dry-run: the GPU run's steps at smoke sizes on a CPU; rows, samples, resume."""
import json, os, subprocess, sys
from pathlib import Path


def test_gpu_run_dry_run_writes_the_benchmark_columns(root, tmp_path):
    out = tmp_path / 'generative_qm9_gpu.json'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = ['bash', 'bench/gpu_run.sh', '--dry-run', '--out', str(out)]
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert 'autocast matmul on cpu' in p.stdout
    res = json.loads(out.read_text())
    assert res['command'].startswith('python bench/cpu_recipe.py') and res['git_commit']
    rows = res['rows']
    assert sorted(r['arch'] for r in rows) == ['gnn', 'pairformer', 'transformer'] and {r['gen'] for r in rows} == {'flow_matching'}
    for r in rows:
        assert r['budget_minutes'] == 0.05 and r['stopped'] == 'max_minutes' and r['steps'] > 0 and r['train_flops'] > 0
        assert set(r['metrics']) == {'val', 'test'} and r['metrics']['test']['n_samples'] == 16
        assert r['gen_cfg']['atom_ot'] is True and r['val_curve'] and r['cpu_s'] > 0
        assert (root / r['samples']).resolve() == tmp_path / 'generative_qm9_gpu_samples' / f"{r['name']}.xyz"   # its own folder
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert p2.returncode == 0 and '0 run(s) to do, 3 row(s) done' in p2.stdout, p2.stdout[-2000:]
