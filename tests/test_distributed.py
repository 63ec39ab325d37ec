"""Data-parallel training through `torchrun` on the CPU (gloo), end to end.

- 2 processes × batch 8 end on the parameters (and EMA) of 1 process × batch 16 after the same steps (the DDP self-check
  of molbench.training.distributed: a real backbone, a loss with no random draws, float64);
- one rank SIGKILLed mid-run (MOLBENCH_FAULT + MOLBENCH_FAULT_RANK): torchrun stops the other, the run folder keeps a
  verified checkpoint, and resuming it on 2 processes — or on 1 — ends on the same parameters as the uninterrupted run;
- a generative smoke run on 2 processes: training, sharded sampling gathered on rank 0, metrics once, the run folder of
  a one-process run (plus distributed.json), read back when called again;
- bench/gpu_check.sh --dry-run (its CPU rehearsal) passes.
Each torchrun launch costs an interpreter start per process (a few seconds); the training itself is tens of steps.
"""
import json, os, shutil, subprocess, sys, time

import pytest
import torch

from conftest import ROOT
from molbench.training.distributed import run_check, train_run
from molbench.training.trainer import FAULT_ENV, FAULT_RANK_ENV, CKPT_LAST, load_checkpoint, verify_checkpoint

torch.set_num_threads(1)
TORCHRUN = [str(ROOT / '.venv' / 'bin' / 'torchrun')] if (ROOT / '.venv' / 'bin' / 'torchrun').exists() else [sys.executable, '-m', 'torch.distributed.run']
CHECK = ['--steps', '12', '--batch-size', '16', '--ckpt-every', '4']
TOL = 1e-12          # float64: the two computations differ only by the order of a sum over two halves of the batch


def torchrun(args, nproc=2, env=None, timeout=300):
    "torchrun --standalone --nproc_per_node=nproc -m molbench.training.distributed ARGS; the finished process."
    e = dict(os.environ, OMP_NUM_THREADS='1')
    for k in (FAULT_ENV, FAULT_RANK_ENV): e.pop(k, None)
    e.update(env or {})
    cmd = TORCHRUN + ['--standalone', f'--nproc_per_node={nproc}', '--monitor-interval=0.5', '-m', 'molbench.training.distributed', *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    p.seconds = time.perf_counter() - t0
    return p

def ok(p):
    assert p.returncode == 0, f"torchrun failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p

def maxdiff(a, b) -> float: return (a - b).abs().max().item()


@pytest.fixture(scope='module')
def one_process():
    "The self-check on 1 process × batch 16, in this process (no process group)."
    return run_check(steps=12, batch_size=16, ckpt_every=4)


def test_two_processes_match_one_and_survive_a_killed_rank(tmp_path, one_process):
    ref = one_process
    # 1. uninterrupted: 2 processes × batch 8
    ok(torchrun(['check', *CHECK, '--run-dir', str(tmp_path / 'a'), '--out', str(tmp_path / 'a.pt')]))
    two = torch.load(tmp_path / 'a.pt', weights_only=False)
    assert (two['world_size'], two['backend'], two['steps']) == (2, 'gloo', 12)
    d_par, d_ema = maxdiff(two['params'], ref['params']), maxdiff(two['ema'], ref['ema'])
    print(f"\nDDP 2 × 8 vs 1 × 16 after 12 steps: max |Δ parameter| {d_par:.3g}, max |Δ EMA| {d_ema:.3g} "
          f"(parameters up to {ref['params'].abs().max():.3g})")
    assert d_par <= TOL and d_ema <= TOL
    assert torch.allclose(torch.tensor(two['losses']), torch.tensor(ref['losses']), atol=1e-6)   # the logged loss: mean over ranks
    assert maxdiff(two['params'], run_check(steps=12, batch_size=8)['params']) > 1e-4          # a real difference shows

    # 2. rank 1 killed inside step 7 (after the step-4 checkpoint): torchrun ends rank 0 too, the checkpoint is resumable
    b = tmp_path / 'b'
    p = torchrun(['check', *CHECK, '--run-dir', str(b), '--out', str(tmp_path / 'b.pt')],
                 env={FAULT_ENV: 'train_step:7', FAULT_RANK_ENV: '1'}, timeout=180)
    assert p.returncode != 0, "a killed rank must fail the launch"
    assert 'kills process' in p.stderr and 'Signal 9 (SIGKILL)' in p.stderr, p.stderr[-3000:]
    assert not (tmp_path / 'b.pt').exists()
    state, used = load_checkpoint(b)
    assert used.name == CKPT_LAST and verify_checkpoint(used) is None
    assert (state['step'], state['world_size'], len(state['rng_ranks'])) == (4, 2, 2)
    shutil.copytree(b, tmp_path / 'c')

    # 3. resumed on 2 processes: continues from step 4 to the uninterrupted result
    r = ok(torchrun(['check', *CHECK, '--run-dir', str(b), '--out', str(tmp_path / 'b.pt')]))
    res = torch.load(tmp_path / 'b.pt', weights_only=False)
    assert res['resumed_from'] == str(b / CKPT_LAST) and res['steps'] == 12
    d_same = maxdiff(res['params'], two['params'])
    assert d_same <= TOL and maxdiff(res['ema'], two['ema']) <= TOL

    # 4. resumed on 1 process (another world size): the same again
    with pytest.warns(UserWarning, match='resuming a 2-process checkpoint with 1 process'):
        alone = run_check(steps=12, batch_size=16, ckpt_every=4, run_dir=tmp_path / 'c')
    d_other = maxdiff(alone['params'], two['params'])
    assert alone['resumed_from'] == str(tmp_path / 'c' / CKPT_LAST) and d_other <= TOL and maxdiff(alone['ema'], two['ema']) <= TOL
    print(f"resumed after a killed rank: on 2 processes max |Δ| {d_same:.3g}, on 1 process {d_other:.3g}; "
          f"kill + shutdown {p.seconds:.0f} s, resume {r.seconds:.0f} s")


def test_generative_run_on_two_processes(tmp_path):
    d = tmp_path / 'run'
    sets = ['arch=gnn', 'gen=flow_matching', 'device=cpu', 'metrics=false', 'n_samples=8', 'sample_batch_size=2']
    p = ok(torchrun(['train', '--profile', 'smoke', *sum((['--set', s] for s in sets), []), '--run-dir', str(d)]))
    assert f'{d}: 20 steps, 8 samples' in p.stdout
    m = json.loads((d / 'metrics.json').read_text())
    assert m['train']['steps'] == 20 and m['checks']['n_samples'] == 8 and m['files']['samples.pt'] == 8
    starts = json.loads((d / 'distributed.json').read_text())['starts']
    assert [(s['world_size'], s['backend'], s['per_process_batch']) for s in starts] == [(2, 'gloo', 4)]
    ck = torch.load(d / CKPT_LAST, weights_only=False)
    assert ck['world_size'] == 2 and ck['step'] == 20 and ck['global_batch'] == 8
    rows = [json.loads(l) for l in (d / 'log.jsonl').read_text().splitlines()]
    assert [r['step'] for r in rows] == [5, 10, 15, 20]                 # one log, rank 0's
    # the gathered samples are the chunks every rank drew from the EMA weights: redo them here, alone
    from molbench.generative import runner as T
    from molbench.training.distributed import generate_distributed
    prm = T.resolve_params('smoke', arch='gnn', gen='flow_matching', device='cpu', metrics=False, n_samples=8, sample_batch_size=2)
    data = T.build_data(prm)
    model, process = T.build_model(prm, data), T.build_process(prm, data)
    model.load_state_dict(ck['ema']['model'])
    again, _ = generate_distributed(prm, model, process, data, 'cpu')
    assert torch.allclose(again.x, torch.load(d / 'samples.pt')['x'], atol=1e-5)
    # called again (alone) in the finished folder: read back, nothing trained
    res = train_run('smoke', arch='gnn', gen='flow_matching', device='cpu', metrics=False, n_samples=8, sample_batch_size=2, run_dir=str(d))
    assert res['train'] == m['train'] and len(json.loads((d / 'distributed.json').read_text())['starts']) == 1


def test_gpu_check_dry_run(tmp_path):
    env = dict(os.environ); env.pop(FAULT_ENV, None)
    t0 = time.perf_counter()
    p = subprocess.run(['bash', 'bench/gpu_check.sh', '--dry-run', '--archs', 'gnn', '--out', str(tmp_path)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-3000:]
    out = p.stdout
    assert 'DDP (1 process, gloo, cpu) vs no process group: max |Δ parameter| 0' in out, out[-3000:]
    rows = json.loads((tmp_path / 'throughput.json').read_text())
    assert [(r['arch'], r['compile']) for r in rows] == [('gnn', 'none'), ('gnn', 'eager')]
    assert all(r['train_mol_per_s'] > 0 and r['bad_steps'] == 0 for r in rows)
    assert 'all steps passed' in out and (tmp_path / 'log.txt').exists()
    print(f"\ngpu_check.sh --dry-run --archs gnn: {time.perf_counter() - t0:.0f} s")


# ---------------------------------------------------------------- BOOM's neural families under torchrun (one loop)
BOOM_DDP_SCRIPT = '''
import sys, numpy as np, pandas as pd, torch
torch.set_num_threads(1)
from molbench.training.distributed import init_distributed, shutdown_distributed
from molbench.store import fetch
from molbench.data.boom import LLNL_FILES
from molbench.boom.models import MLPModel
rank, world = init_distributed('gloo')
df = pd.read_csv(fetch(LLNL_FILES['hof']), nrows=64).rename(columns={'hof_s': 'y'}); df.insert(0, 'id', np.arange(len(df)))
m = MLPModel(epochs=3, batch_size=16, hidden=(32,), dropout=0.0, patience=100, max_steps=6, device='cpu').fit(df)
if rank == 0:
    torch.save(dict(world=world, params=torch.cat([p.detach().flatten() for p in m.net.parameters()]), history=m.history), sys.argv[1])
shutdown_distributed()
'''

def test_boom_mlp_two_processes_match_one(tmp_path):
    "torchrun × 2 of BOOM's MLP family, batch 16 over both (8 each), ends on the parameters of one process with batch 16."
    if not os.environ.get('MOLBENCH_DATA_DIR'): pytest.skip('needs $MOLBENCH_DATA_DIR (the reference data)')
    import numpy as np, pandas as pd
    from molbench.store import fetch
    from molbench.data.boom import LLNL_FILES
    from molbench.boom.models import MLPModel
    script, out = tmp_path / 'boom_ddp.py', tmp_path / 'two.pt'
    script.write_text(BOOM_DDP_SCRIPT)
    e = dict(os.environ, OMP_NUM_THREADS='1'); e.pop(FAULT_ENV, None)
    t0 = time.perf_counter()
    p = subprocess.run(TORCHRUN + ['--standalone', '--nproc_per_node=2', '--monitor-interval=0.5', str(script), str(out)],
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    ok(p)
    two = torch.load(out, weights_only=False)
    df = pd.read_csv(fetch(LLNL_FILES['hof']), nrows=64).rename(columns={'hof_s': 'y'}); df.insert(0, 'id', np.arange(len(df)))
    one = MLPModel(epochs=3, batch_size=16, hidden=(32,), dropout=0.0, patience=100, max_steps=6, device='cpu').fit(df)
    ref = torch.cat([q.detach().flatten() for q in one.net.parameters()])
    d = maxdiff(two['params'], ref)
    print(f"\nBOOM MLP, DDP 2 × 8 vs 1 × 16 after 6 steps: max |Δ parameter| {d:.3g}; torchrun {time.perf_counter() - t0:.0f} s")
    assert two['world'] == 2 and [h['step'] for h in two['history']] == [h['step'] for h in one.history] == [4, 6]
    assert d < 1e-5, d                                                         # float32: only the order of a sum differs
    half = MLPModel(epochs=3, batch_size=8, hidden=(32,), dropout=0.0, patience=100, max_steps=6, device='cpu').fit(df)
    assert maxdiff(torch.cat([q.detach().flatten() for q in half.net.parameters()]), ref) > 1e-4   # a real difference shows


def test_boom_runner_under_torchrun_writes_one_run_folder(tmp_path):
    "`torchrun -m molbench.boom.runner mlp hof` with 2 processes: both train, rank 0 alone creates, scores and writes one run folder."
    if not os.environ.get('MOLBENCH_DATA_DIR'): pytest.skip('needs $MOLBENCH_DATA_DIR (the reference data)')
    from molbench.training.trainer import verify_checkpoint
    e = dict(os.environ, OMP_NUM_THREADS='1'); e.pop(FAULT_ENV, None)
    p = subprocess.run(TORCHRUN + ['--standalone', '--nproc_per_node=2', '--monitor-interval=0.5', '-m', 'molbench.boom.runner',
                                   'mlp', 'hof', '--profile', 'smoke', '--run-dir', str(tmp_path), '--set', 'batch_size=16'],
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    ok(p)
    (d,) = [q for q in tmp_path.iterdir() if q.is_dir()]                      # one folder, made by rank 0
    m = json.loads((d / 'metrics.json').read_text())
    assert m['world_size'] == 2 and m['model'] == 'mlp' and m['id']['n'] > 0 and m['ood']['n'] > 0
    assert (d / 'predictions.csv').exists() and verify_checkpoint(d / CKPT_LAST) is None
    assert json.loads(p.stdout.strip().splitlines()[-1])['world_size'] == 2   # printed once, by rank 0
