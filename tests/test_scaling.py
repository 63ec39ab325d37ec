"""The ScalingLawTracker's file under real processes: two writers at once, one killed mid-run, and resuming it."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

WRITER = r'''
import sys, itertools
from molbench.generative.scaling import ScalingLawTracker
path, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tr = ScalingLawTracker(path)
print('ready', flush=True)
for step in (range(n) if n > 0 else itertools.count()):
    tr.record(run, step, N=1e5, D=32.0 * (step + 1), C=3.2e9 * (step + 1), val_loss=1.0 / (step + 1), gen='flow_matching',
              padding='x' * 2000)   # long lines: a torn or interleaved write would show
'''


def _spawn(root, path, run, n):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(root))
    return subprocess.Popen([sys.executable, '-c', WRITER, str(path), run, str(n)], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(path, run):
    return [json.loads(l) for l in Path(path).read_text().splitlines() if f'"run": "{run}"' in l]


def test_concurrent_writers_and_a_killed_one(root, tmp_path):
    from molbench.generative.scaling import ScalingLawTracker
    f = tmp_path / 'scaling.jsonl'
    a = _spawn(root, f, 'a', 0)                                       # another process writes run a until it is killed
    assert a.stdout.readline().strip() == 'ready', a.stderr.read()
    t0 = time.time()
    while (not f.exists() or len(_lines(f, 'a')) < 20) and time.time() - t0 < 60: time.sleep(0.02)
    b = ScalingLawTracker(f)                                          # this process writes run b meanwhile
    for step in range(200):
        b.record('b', step, N=2e5, D=32.0 * (step + 1), C=6.4e9 * (step + 1), val_loss=2.0 / (step + 1), gen='flow_matching',
                 padding='y' * 2000)
    still_running = a.poll() is None
    a.send_signal(signal.SIGKILL); a.wait()
    assert still_running, f"the writer of run a stopped on its own: {a.stderr.read()}"
    # every line of the file is one whole record: no torn or interleaved writes
    text = f.read_text()
    assert text.endswith('\n')
    recs = [json.loads(l) for l in text.splitlines()]
    steps_a = [r['step'] for r in recs if r['run'] == 'a']
    assert [r['step'] for r in recs if r['run'] == 'b'] == list(range(200))
    assert steps_a == list(range(len(steps_a))) and len(steps_a) >= 20
    assert {r['run'] for r in recs} == {'a', 'b'} and all(len(r['padding']) == 2000 for r in recs)
    # the killed run resumes where its records stop; re-recording its last step is a no-op
    tr = ScalingLawTracker(f)
    assert tr.last_step('a') == len(steps_a) - 1 and len(tr) == 200 + len(steps_a)
    k = tr.last_step('a')
    tr.record('a', k, N=1e5, D=32.0 * (k + 1), C=3.2e9 * (k + 1), val_loss=1.0 / (k + 1), gen='flow_matching', padding='x' * 2000)
    tr.record('a', k + 1, N=1e5, D=32.0 * (k + 2), C=3.2e9 * (k + 2), val_loss=1.0 / (k + 2), gen='flow_matching')
    assert [r['step'] for r in _lines(f, 'a')] == list(range(k + 2))
    fit = ScalingLawTracker(f).fit_compute(where={'run': 'b'}, select='all', n_boot=0)   # L = 2/(step+1) ∝ C^-1
    assert abs(fit.params['alpha'] - 1) < 0.01


GRID = '''
dataset: qm9
profile: smoke
combos: [[gnn, flow_matching]]
model_n_train: 128
model_sizes: [{hidden: 8, layers: 1}, {hidden: 16, layers: 1}, {hidden: 32, layers: 1}]
data_model: {hidden: 8, layers: 1}
data_sizes: [32, 64, 128]
set: {steps: 12, ckpt_every: 4, n_val: 16, batch_size: 8, n_samples: 4, sample_batch_size: 4, nfe: 2}
'''


def test_scaling_sweep_records_fits_and_resumes(root, tmp_path):
    "bench/scaling.py on a tiny grid: one row per run with its FLOPs and losses, tracker records at each checkpoint, fits; a rerun does nothing."
    (tmp_path / 'g.yaml').write_text(GRID)
    out = tmp_path / 'scaling.json'
    cmd = [sys.executable, 'bench/scaling.py', '--grid', str(tmp_path / 'g.yaml'), '--out', str(out),
           '--runs-root', str(tmp_path / 'runs'), '--n-boot', '10']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(out.read_text())
    names = [r['name'] for r in res['runs']]
    assert len(names) == 5 and len(set(names)) == 5                      # h8-l1-n128 is both a model-size and a data-size run
    assert {r['experiment'] for r in res['runs']} == {'model_size', 'data_size', 'model_size+data_size'}
    assert all(r['N'] > 0 and r['train_flops'] > 0 and r['val_loss'] > 0 and r['n_val'] == 16 for r in res['runs'])
    Ns = sorted(r['N'] for r in res['runs'] if 'model_size' in r['experiment'])
    assert Ns[0] < Ns[1] < Ns[2]
    recs = [json.loads(l) for l in Path(res['tracker'] if Path(res['tracker']).is_absolute() else root / res['tracker']).read_text().splitlines()]
    assert sorted({(r['run'], r['step']) for r in recs}) == sorted((n, s) for n in names for s in (4, 8, 12))
    fit = res['fits']['gnn:flow_matching']['L_of_C']
    assert 'error' not in fit and 2 <= fit['n_runs'] <= 5 and set(fit['intervals']) == {'E', 'A', 'alpha'}
    assert res['git_commit'] and res['command'].startswith('python bench/scaling.py')
    assert sorted(q.stem for q in (tmp_path / 'scaling_samples').glob('*.xyz')) == sorted(names)   # the samples behind each row
    p2 = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)   # everything done: nothing runs again
    assert p2.returncode == 0 and '0 run(s) to do, 5 done' in p2.stdout, p2.stdout + p2.stderr[-2000:]
