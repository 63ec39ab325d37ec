"""End-to-end: the papermill runners work as the README says, on the smoke profiles, and fail fast on bad names."""
import json, subprocess, sys
from pathlib import Path
import pytest
from conftest import run, ROOT

def papermill(nb, out, *params, timeout=900):
    args = ['papermill', str(ROOT / 'nbs' / nb), str(out), '-k', 'python3', '--no-progress-bar']
    for p in params: args += list(p)
    return run(args, timeout=timeout)

def run_dirs(root: Path):
    return sorted(p.parent for p in root.rglob('metrics.json'))

def test_train_smoke_molecules(tmp_path):
    papermill('train.ipynb', tmp_path / 'out.ipynb', ('-f', str(ROOT / 'params' / 'smoke.yaml')),
              ('-p', 'arch', 'pairformer'), ('-p', 'gen', 'flow_matching'), ('-p', 'runs_root', str(tmp_path / 'runs')))
    (d,) = run_dirs(tmp_path / 'runs')
    names = {p.name for p in d.iterdir()}
    assert {'params.yaml', 'metrics.json'} <= names, names
    assert any(n.endswith('.xyz') for n in names) or (d / 'samples').exists(), names
    m = json.loads((d / 'metrics.json').read_text())
    assert m, 'empty metrics'

def test_train_smoke_crystals(tmp_path):
    papermill('train.ipynb', tmp_path / 'out.ipynb', ('-f', str(ROOT / 'params' / 'smoke.yaml')),
              ('-p', 'arch', 'gnn'), ('-p', 'gen', 'diffusion'), ('-p', 'dataset', 'perov5'), ('-p', 'split', 'val'),
              ('-p', 'runs_root', str(tmp_path / 'runs')))
    (d,) = run_dirs(tmp_path / 'runs')
    assert list(d.rglob('*.cif')), 'no CIF samples written'

def test_train_rejects_unknown_arch_before_work(tmp_path):
    p = subprocess.run([sys.executable, '-c', "import molbench.generative.runner as t; t.run(arch='pairformr', profile='smoke')"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "pairformer" in p.stderr and "gnn" in p.stderr and "transformer" in p.stderr, p.stderr[-2000:]
    assert not (tmp_path / 'runs').exists()

def test_boom_smoke(tmp_path):
    papermill('boom.ipynb', tmp_path / 'out.ipynb', ('-p', 'model', 'rf'), ('-p', 'task', 'hof'),
              ('-p', 'profile', 'smoke'), ('-p', 'run_dir', str(tmp_path / 'run')))
    (d,) = run_dirs(tmp_path)
    m = json.loads((d / 'metrics.json').read_text())
    assert 'rmse_ood' in json.dumps(m) or 'ood' in json.dumps(m).lower()

def test_nlmtp_smoke(tmp_path):
    papermill('nlmtp.ipynb', tmp_path / 'out.ipynb', ('-p', 'profile', 'smoke'), ('-p', 'run_dir', str(tmp_path / 'run')))
    assert run_dirs(tmp_path), 'no metrics.json written'
