"""Faults and determinism, end to end, on the smoke profile (a tiny GNN, 20 steps, seconds per run).

- a run killed with SIGKILL anywhere (mid-step, mid-checkpoint, mid-sampling, between samples and metrics) and rerun in
  the same folder ends with the checkpoint state, samples, log and metrics.json of an uninterrupted run;
- a sweep killed and rerun has every row exactly once;
- a download or cache file half-written (a dying connection, a killed process, a truncated file) is never used;
- a full or read-only disk fails with a DiskWriteError naming the file, and loses nothing written before;
- the same seed gives a byte-identical metrics.json, across processes; wall-clock times live in timing.json.

Kills use `MOLBENCH_FAULT` (molbench.training.trainer.fault_point, inert unless set) in forked processes, so each attempt costs
its run time only, not a fresh interpreter's imports.
"""
import errno, importlib.util, json, os, random, resource, signal, subprocess, sys, tempfile
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, FORK, KILLED, in_child
import molbench.store, molbench.generative.runner, molbench.training.trainer
from molbench.store import RemoteFile, fetch, cached_file, DataUnavailableError
from molbench.generative.runner import run, TIMING_KEYS
from molbench.training.trainer import FAULT_ENV, CKPT_LAST, CKPT_PREV, DiskWriteError, load_checkpoint, verify_checkpoint

torch.set_num_threads(1)
os.environ.pop(FAULT_ENV, None)
# 20 steps, checkpoints at 10 and 20, log rows every 5, two batches of 8 samples; no EDM metrics (seconds, not quality)
SMOKE = dict(arch='gnn', gen='flow_matching', profile='smoke', device='cpu', progress=False, metrics=False,
             n_samples=16, sample_batch_size=8)
WALL = ('samples_per_s', 'elapsed_s')  # the log's wall-clock columns


def diff(a, b, at='') -> list:
    "Where two nested states (dicts, lists, tensors, arrays, numbers) differ."
    if isinstance(a, dict):
        if not isinstance(b, dict) or set(a) != set(b): return [f'{at}: keys']
        return [d for k in a for d in diff(a[k], b[k], f'{at}/{k}')]
    if isinstance(a, (list, tuple)):
        if not isinstance(b, (list, tuple)) or len(a) != len(b): return [f'{at}: length']
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f'{at}[{i}]')]
    if isinstance(a, torch.Tensor): return [] if isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b) else [at]
    if isinstance(a, np.ndarray): return [] if np.array_equal(a, b) else [at]
    return [] if a == b else [at]

def state(run_dir, which=CKPT_LAST) -> dict:
    "A checkpoint without what may differ between identical runs: wall-clock time and the run's own folder name (in meta)."
    s = torch.load(Path(run_dir) / which, weights_only=False)
    return {k: v for k, v in s.items() if k not in ('elapsed_s', 'meta')}

def log_rows(run_dir) -> list:
    return [{k: v for k, v in json.loads(l).items() if k not in WALL} for l in Path(run_dir, 'log.jsonl').read_text().splitlines()]

def leftovers(run_dir) -> list:
    return sorted(p.name for p in Path(run_dir).rglob('.*') if p.is_file())

def wall_keys(o, at='') -> list:
    "Paths of wall-clock keys anywhere in a nested dict."
    if not isinstance(o, dict): return []
    return [f'{at}/{k}' for k in o if k in TIMING_KEYS] + [q for k, v in o.items() for q in wall_keys(v, f'{at}/{k}')]

def assert_same_as(d, ref):
    "Run folder `d` ends exactly where the uninterrupted `ref` does."
    d, ref = Path(d), Path(ref)
    assert (d / 'metrics.json').read_bytes() == (ref / 'metrics.json').read_bytes(), \
        f"metrics.json differs:\n{(d / 'metrics.json').read_text()}\nvs\n{(ref / 'metrics.json').read_text()}"
    assert not diff(state(d), state(ref)), f"checkpoint state differs at {diff(state(d), state(ref))}"
    assert torch.equal(torch.load(d / 'samples.pt')['x'], torch.load(ref / 'samples.pt')['x'])
    assert log_rows(d) == log_rows(ref)
    assert not leftovers(d), f"temporary files left in {d}: {leftovers(d)}"
    assert not list(d.parent.glob(d.name + '-*')), 'a second folder was made for the same run'


@pytest.fixture(scope='module')
def reference(tmp_path_factory) -> Path:
    "An uninterrupted smoke run."
    d = tmp_path_factory.mktemp('ref') / 'run'
    run(**SMOKE, run_dir=str(d))
    return d


def test_run_killed_anywhere_then_rerun_matches_uninterrupted(tmp_path, reference):
    rng = random.Random(16)                                  # deterministic but varied kill steps
    k1, k2 = rng.randint(1, 9), rng.randint(1, 9)
    d = tmp_path / 'run'
    go = lambda: run(**SMOKE, run_dir=str(d))
    attempts = [(f'train_step:{k1}', f'inside step {k1}, before the first checkpoint'),
                ('ckpt_write:2', 'writing the step-20 checkpoint (temporary file complete, not renamed)'),
                (f'train_step:{k2}', f'inside step {10 + k2}, resumed from step 10'),
                ('ckpt_rotate:1', 'step 20 checkpoint: last rotated to prev, its new sidecar written, file not in place'),
                ('sample:1', 'after the first of two sample batches'),
                ('results:1', 'samples written, metrics.json not yet')]
    for fault, where in attempts:
        code, _ = in_child(go, fault=fault)
        assert code == KILLED, f"{fault} ({where}): exit code {code}, expected a SIGKILL"
        assert not (d / 'metrics.json').exists(), f"{fault}: metrics.json written by a killed run"
        if fault == 'ckpt_write:2': assert load_checkpoint(d)[0]['step'] == 10 and leftovers(d)
        if fault.startswith('ckpt_rotate'):
            assert not (d / CKPT_LAST).exists() and verify_checkpoint(d / CKPT_PREV) is None
        if fault == 'sample:1': assert load_checkpoint(d)[0]['step'] == 20
        if fault == 'results:1': assert (d / 'samples.pt').exists()
    params = (d / 'params.yaml').read_bytes()
    last = (d / CKPT_LAST).read_bytes(); (d / CKPT_LAST).write_bytes(last[:len(last) // 2])   # and a truncated last checkpoint
    with pytest.warns(UserWarning, match='ckpt_last.pt is unusable'):
        res = go()                                           # the rerun: from step 10 (ckpt_prev), samples, evaluates
    assert res['run_dir'] == str(d) and res['train']['steps'] == 20
    assert_same_as(d, reference)
    assert (d / 'params.yaml').read_bytes() == params
    assert res['timing']['train']['elapsed_s'] > 0


def test_same_seed_gives_identical_metrics_across_processes(tmp_path):
    kw = dict(SMOKE, metrics=True, n_reference=16)           # the EDM metrics too
    a = run(**kw, run_dir=str(tmp_path / 'a'))
    code = "import json, sys; from molbench.generative.runner import run; run(**json.loads(sys.argv[1]))"
    env = dict(os.environ, PYTHONHASHSEED='12345', OMP_NUM_THREADS='1')   # another process, another str-hash order
    env.pop(FAULT_ENV, None)
    p = subprocess.run([sys.executable, '-c', code, json.dumps({**kw, 'run_dir': str(tmp_path / 'b')})], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    ma, mb = (tmp_path / 'a' / 'metrics.json').read_bytes(), (tmp_path / 'b' / 'metrics.json').read_bytes()
    assert ma == mb, f"same seed, different metrics.json:\n{ma.decode()}\nvs\n{mb.decode()}"
    m = json.loads(ma)
    assert 'atom_stability' in m['metrics'] and not wall_keys(m), f"wall-clock fields in metrics.json: {wall_keys(m)}"
    ta, tb = (json.loads((tmp_path / x / 'timing.json').read_text()) for x in 'ab')
    assert ta['train']['elapsed_s'] > 0 and ta['sampling']['sampling_s'] > 0 and 'seconds' in ta['metrics']
    assert ta != tb                                          # what may differ, does — and lives apart
    assert a['timing'] == ta and a['run_dir'] == str(tmp_path / 'a')
    c = run(**dict(kw, seed=1), run_dir=str(tmp_path / 'c'))
    assert (tmp_path / 'c' / 'metrics.json').read_bytes() != ma and c['train']['final_loss'] != m['train']['final_loss']


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'bench' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_generative_sweep_killed_and_rerun_has_every_row_once(tmp_path):
    sweep = _load_script('sweep_generative')
    out, runs = tmp_path / 'table.json', tmp_path / 'runs'
    argv = ['--profile', 'smoke', '--archs', 'gnn', '--gens', 'flow_matching,diffusion', '--dataset', 'qm9',
            '--set', 'hidden=16', '--set', 'layers=1', '--set', 'nfe=4', '--set', 'metrics=false', '--set', 'device=cpu',
            '--set', 'progress=false', '--runs-root', str(runs), '--out', str(out)]
    fm, df = runs / 'qm9-gnn-flow_matching', runs / 'qm9-gnn-diffusion'
    code, _ = in_child(sweep.main, argv, fault='sweep_row:1')        # the first run finished, its row not written
    assert code == KILLED and not out.exists() and (fm / 'metrics.json').exists()
    code, _ = in_child(sweep.main, argv, fault='train_step:15')      # first row recovered; the second run dies at step 15
    assert code == KILLED and [r['gen'] for r in json.loads(out.read_text())['rows']] == ['flow_matching']
    assert load_checkpoint(df)[0]['step'] == 10 and not (df / 'metrics.json').exists()
    code, got = in_child(sweep.main, argv)
    assert code == 0, got
    rows = json.loads(out.read_text())['rows']
    assert [(r['arch'], r['gen']) for r in rows] == [('gnn', 'flow_matching'), ('gnn', 'diffusion')]
    for r in rows:
        assert r['metrics'] == json.loads(Path(ROOT, r['run_dir'], 'metrics.json').read_text()) and r['timing']
        assert r['metrics']['train']['steps'] == 20
    assert [r['step'] for r in log_rows(df) if r['kind'] == 'train'] == [5, 10, 15, 20]   # steps 11–15 logged once
    assert sorted(p.name for p in runs.iterdir()) == ['qm9-gnn-diffusion', 'qm9-gnn-flow_matching']
    code, _ = in_child(sweep.main, argv)                             # a rerun of a finished sweep changes nothing
    assert code == 0 and json.loads(out.read_text())['rows'] == rows

def test_boom_sweep_killed_and_rerun_has_every_row_once(tmp_path):
    boom = _load_script('boom_sweep')
    from molbench.boom.runner import run_boom
    run_boom('rf', 'density', 'smoke', run_dir=str(tmp_path / 'warm'))   # load the data once, before forking
    out, runs = tmp_path / 'boom.csv', tmp_path / 'runs'
    argv = ['--models', 'rf', '--tasks', 'density,hof', '--profile', 'smoke', '--out', str(out), '--runs-root', str(runs)]
    code, _ = in_child(boom.main, argv, fault='sweep_row:2')          # density's row written, hof finished but not recorded
    assert code == KILLED and pd.read_csv(out)[['model', 'task']].values.tolist() == [['rf', 'density']]
    code, got = in_child(boom.main, argv)
    assert code == 0, got
    table = pd.read_csv(out)
    assert table[['model', 'task', 'profile', 'seed']].values.tolist() == [['rf', 'density', 'smoke', 0], ['rf', 'hof', 'smoke', 0]]
    assert all(Path(ROOT, r, 'metrics.json').exists() for r in table.run_dir)
    code, _ = in_child(boom.main, argv)                             # a rerun of a finished sweep changes nothing
    assert code == 0 and pd.read_csv(out).equals(table)

def test_sweep_row_merging():
    gen = _load_script('sweep_generative')
    rows = []
    for r in [dict(arch='gnn', gen='fm', dataset='qm9', v=1), dict(arch='gnn', gen='dm', dataset='qm9', v=2),
              dict(arch='gnn', gen='fm', dataset='qm9', v=3), dict(arch='gnn', gen='fm', dataset='mp20', v=4)]:
        rows = gen.merge_row(rows, r)
    assert [(r['gen'], r['dataset'], r['v']) for r in rows] == [('fm', 'qm9', 3), ('dm', 'qm9', 2), ('fm', 'mp20', 4)]
    assert gen.merge_row([dict(arch='a', gen='b', dataset='c', v=0)] * 2, dict(arch='a', gen='b', dataset='c', v=1)) == \
        [dict(arch='a', gen='b', dataset='c', v=1)]                   # duplicates on disk collapse to one row
    boom = _load_script('boom_sweep')
    row = lambda m, t, s=0, v=0.0: pd.DataFrame([dict(model=m, task=t, profile='smoke', seed=s, id_rmse=v)])
    table = pd.DataFrame()
    for new in [row('rf', 'hof', v=1.0), row('rf', 'density', v=2.0), row('rf', 'hof', v=3.0), row('rf', 'hof', s=1, v=4.0)]:
        table = boom.merge_rows(table, new)
    assert table[['task', 'seed', 'id_rmse']].values.tolist() == [['density', 0, 2.0], ['hof', 0, 3.0], ['hof', 1, 4.0]]
    assert boom.has_row(table, 'rf', 'hof', 'smoke', 1) and not boom.has_row(table, 'rf', 'hof', 'cpu', 0)
    assert not boom.has_row(table, 'rf', 'gap', 'smoke', 0) and not boom.has_row(pd.DataFrame(), 'rf', 'hof', 'smoke', 0)
    read_back = pd.read_csv(pd.io.common.StringIO(table.to_csv(index=False)))          # seeds come back from the CSV as ints
    assert boom.merge_rows(read_back, row('rf', 'hof', v=5.0))['id_rmse'].tolist() == [2.0, 4.0, 5.0]


BODY = b'smiles,y\n' + b'CCO,1.0\n' * 400

class Response:
    "A fake HTTP response serving `data` in 512-byte chunks, announcing `length`; `die(k)` is called before chunk k."
    def __init__(self, data, length=None, die=None):
        self.data, self.k, self.die, self.headers = data, 0, die, {'Content-Length': str(length or len(data))}
    def read(self, n):
        if self.die: self.die(self.k)
        out = self.data[512 * self.k: 512 * (self.k + 1)]; self.k += 1
        return out
    def __enter__(self): return self
    def __exit__(self, *a): pass

def test_half_written_download_or_cache_is_never_used(tmp_path, monkeypatch):
    import hashlib
    monkeypatch.setenv('MOLBENCH_CACHE', str(tmp_path / 'cache'))
    dl = tmp_path / 'cache' / 'downloads'
    rf = RemoteFile('set/f.csv', 'https://example.org/f.csv', hashlib.sha256(BODY).hexdigest())
    def reset(k):
        if k == 3: raise ConnectionResetError('connection reset by peer')
    with pytest.raises(DataUnavailableError, match='connection reset'):
        fetch(rf, urlopen=lambda u: Response(BODY, die=reset), progress=False)
    assert not (dl / rf.relpath).exists() and not list(dl.rglob('*.tmp'))
    unpinned = RemoteFile('set/g.csv', 'https://example.org/g.csv')   # no published checksum: only the length can tell
    with pytest.raises(DataUnavailableError, match=f'ended after 1,536 of {len(BODY):,} bytes'):
        fetch(unpinned, urlopen=lambda u: Response(BODY[:1536], length=len(BODY)), progress=False)
    assert not (dl / unpinned.relpath).exists() and not (dl / 'set' / 'g.csv.sha256').exists()
    def kill(k):                                              # a process killed mid-download leaves only a temporary file
        if k == 3: os.kill(os.getpid(), signal.SIGKILL)
    code, _ = in_child(lambda: fetch(rf, urlopen=lambda u: Response(BODY, die=kill), progress=False))
    assert code == KILLED and not (dl / rf.relpath).exists() and list(dl.rglob('*.tmp'))
    assert fetch(rf, urlopen=lambda u: Response(BODY), progress=False).read_bytes() == BODY   # the next fetch starts afresh
    (dl / rf.relpath).write_bytes(BODY[:100])                 # truncated on disk: detected by its checksum, re-downloaded
    with pytest.warns(UserWarning, match='fails its SHA-256 check'):
        assert fetch(rf, urlopen=lambda u: Response(BODY), progress=False).read_bytes() == BODY
    builds = []
    def build(p): builds.append(p); Path(p).write_bytes(BODY)
    c = cached_file(tmp_path / 'derived' / 'table.bin', build)
    c.write_bytes(BODY[:-7])                                  # a derived cache file, truncated
    with pytest.warns(UserWarning, match='fails its SHA-256 check'):
        assert cached_file(c, build).read_bytes() == BODY and len(builds) == 2
    code, _ = in_child(lambda: cached_file(tmp_path / 'derived' / 'other.bin', lambda p: (Path(p).write_bytes(BODY[:50]), os.kill(os.getpid(), signal.SIGKILL))))
    assert code == KILLED and not (tmp_path / 'derived' / 'other.bin').exists()
    assert cached_file(tmp_path / 'derived' / 'other.bin', build).read_bytes() == BODY


def test_full_disk_fails_clearly_and_loses_nothing(tmp_path, reference):
    d = tmp_path / 'run'
    def limited():                                            # every file may grow to 50 kB; a checkpoint is ~110 kB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
        return run(**SMOKE, run_dir=str(d))
    code, (kind, msg) = in_child(limited)
    assert code == 1 and kind == 'error'
    assert msg.startswith(f'DiskWriteError: cannot write {d / CKPT_LAST}: the file would exceed the file-size limit'), msg
    assert 'rerun the same run folder to continue' in msg
    assert [(r['step'], r['kind']) for r in log_rows(d)] == [(5, 'train'), (10, 'train'), (10, 'eval')]   # written before the failed checkpoint, intact
    assert not (d / CKPT_LAST).exists() and not leftovers(d)
    run(**SMOKE, run_dir=str(d))                              # space again: the rerun continues in the same folder
    assert_same_as(d, reference)

def test_log_row_cut_short_by_a_full_disk(tmp_path, reference, monkeypatch):
    d = tmp_path / 'run'
    real_open, n = open, {'appends': 0}
    def disk_fills_up(file, mode='r', *a, **k):              # the fourth log row (train 5, 10, eval 10, then train 15) gets half-way onto the disk
        f = real_open(file, mode, *a, **k)
        if 'a' in mode and Path(file).name == 'log.jsonl':
            n['appends'] += 1
            if n['appends'] == 4:
                class Torn:
                    def __enter__(self): return self
                    def __exit__(self, *e): f.close()
                    def write(self, text): f.write(text[:len(text) // 2]); f.flush(); raise OSError(errno.ENOSPC, 'No space left on device')
                return Torn()
        return f
    monkeypatch.setattr(molbench.training.trainer, 'open', disk_fills_up, raising=False)
    with pytest.raises(DiskWriteError, match=f'cannot write {d / "log.jsonl"}: the disk is full \\(ENOSPC\\)'):
        run(**SMOKE, run_dir=str(d))
    monkeypatch.undo()
    assert not (d / 'log.jsonl').read_text().endswith('\n')  # the torn row is on disk
    assert load_checkpoint(d)[0]['step'] == 10
    with pytest.warns(UserWarning, match='dropped an unfinished last row'):
        run(**SMOKE, run_dir=str(d))
    assert_same_as(d, reference)

def test_read_only_disk_fails_clearly_and_loses_nothing(tmp_path, reference, monkeypatch):
    d = tmp_path / 'run'
    read_only = {'on': False}
    real_mkstemp, real_generate = tempfile.mkstemp, molbench.generative.runner.generate
    def mkstemp(*a, dir=None, **k):                           # atomic_write's first step: a new file in the folder
        if read_only['on'] and dir is not None and str(dir).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, 'Read-only file system')
        return real_mkstemp(*a, dir=dir, **k)
    def generate(*a, **k):                                    # the disk turns read-only once training is over
        read_only['on'] = True; return real_generate(*a, **k)
    monkeypatch.setattr(tempfile, 'mkstemp', mkstemp)
    monkeypatch.setattr(molbench.generative.runner, 'generate', generate)
    with pytest.raises(DiskWriteError, match=f'cannot write {d / "samples.pt"}: the file system is read-only \\(EROFS\\)'):
        run(**SMOKE, run_dir=str(d))
    assert load_checkpoint(d)[0]['step'] == 20 and verify_checkpoint(d / CKPT_PREV) is None
    assert not (d / 'metrics.json').exists() and not (d / 'samples.pt').exists() and not leftovers(d)
    assert [r['step'] for r in log_rows(d) if r['kind'] == 'train'] == [5, 10, 15, 20]
    real_mkdir = os.mkdir                                     # read-only from the start: not even the folder can be made
    def mkdir(path, *a, **k):
        if str(path).startswith(str(tmp_path)): raise OSError(errno.EROFS, 'Read-only file system')
        return real_mkdir(path, *a, **k)
    monkeypatch.setattr(os, 'mkdir', mkdir)
    with pytest.raises(DiskWriteError, match=f'cannot write {tmp_path / "never"}: the file system is read-only'):
        run(**SMOKE, run_dir=str(tmp_path / 'never'))
    assert not (tmp_path / 'never').exists()
    monkeypatch.undo()
    run(**SMOKE, run_dir=str(d))                              # writable again: training is done, so it samples and writes
    assert_same_as(d, reference)
