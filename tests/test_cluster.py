"""Sweeps through submitit (molbench.training.cluster), end to end on this machine.

- bench/sweep_generative.py and bench/boom_sweep.py with --executor debug (jobs in this process) write the same rows, with
  the same metrics, into the same results files as their local loops; a rerun skips what is done;
- a smoke sweep with --executor local (jobs are processes, submitit's own signal handling): the job is sent the
  preemption signal mid-training, submitit calls SweepJob.checkpoint and requeues it, the rerun continues the run folder
  from its last checkpoint, and the row the driver writes carries the metrics of an uninterrupted run, byte for byte.
(The Slurm submission script is checked in nbs/training/43_cluster.ipynb with stand-ins for sbatch and srun.)
"""
import importlib.util, json, os, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import ROOT
from molbench.generative.runner import run
from molbench.training.trainer import FAULT_ENV

torch.set_num_threads(1)
os.environ.pop(FAULT_ENV, None)
SMALL = dict(hidden=16, layers=1, nfe=4, metrics=False, device='cpu', progress=False, n_samples=8)   # seconds per run
SMOKE_SETS = sum((['--set', f'{k}={str(v).lower() if isinstance(v, bool) else v}'] for k, v in SMALL.items()), [])


def _load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / 'bench' / f'{name}.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _rows(out) -> list: return json.loads(Path(out).read_text())['rows']


def test_generative_sweep_on_the_debug_executor_writes_the_local_rows(tmp_path, capsys):
    sweep = _load_script('sweep_generative')
    base = ['--profile', 'smoke', '--archs', 'gnn', '--gens', 'flow_matching,diffusion', *SMOKE_SETS]
    sweep.main(base + ['--runs-root', str(tmp_path / 'a'), '--out', str(tmp_path / 'a.json')])
    jobs = ['--executor', 'debug', '--jobs-folder', str(tmp_path / 'jobs'), '--poll-s', '0']
    sweep.main(base + ['--runs-root', str(tmp_path / 'b'), '--out', str(tmp_path / 'b.json')] + jobs)
    local, cluster = _rows(tmp_path / 'a.json'), _rows(tmp_path / 'b.json')
    assert [(r['arch'], r['gen']) for r in cluster] == [(r['arch'], r['gen']) for r in local] == [('gnn', 'flow_matching'), ('gnn', 'diffusion')]
    for a, b in zip(local, cluster):
        assert b['metrics'] == a['metrics'] and b['overrides'] == a['overrides'] and b['profile'] == a['profile']
        assert set(b) == set(a) | {'job'} and b['job']['executor'] == 'debug' and b['wall_s'] > 0
        assert Path(ROOT, b['run_dir'], 'metrics.json').read_bytes() == Path(ROOT, a['run_dir'], 'metrics.json').read_bytes()
    capsys.readouterr()
    sweep.main(base + ['--runs-root', str(tmp_path / 'b'), '--out', str(tmp_path / 'b.json')] + jobs)   # rerun: nothing to submit
    out = capsys.readouterr().out
    assert out.count('already in') == 2 and 'submitted 0 job(s)' in out and _rows(tmp_path / 'b.json') == cluster


def test_boom_sweep_on_the_debug_executor_writes_the_local_rows(tmp_path):
    boom = _load_script('boom_sweep')
    base = ['--models', 'rf', '--tasks', 'density', '--profile', 'smoke']
    boom.main(base + ['--out', str(tmp_path / 'a.csv'), '--runs-root', str(tmp_path / 'ra')])
    boom.main(base + ['--out', str(tmp_path / 'b.csv'), '--runs-root', str(tmp_path / 'rb'), '--executor', 'debug',
                      '--jobs-folder', str(tmp_path / 'jobs'), '--poll-s', '0'])
    a, b = pd.read_csv(tmp_path / 'a.csv'), pd.read_csv(tmp_path / 'b.csv')
    assert list(a.columns) == list(b.columns) and len(a) == len(b) == 1
    same = [c for c in a.columns if c not in ('run_dir', 'wall_seconds', 'fit_seconds', 'command')]   # the commands differ by design
    assert a[same].equals(b[same]), f"{a[same].T}\nvs\n{b[same].T}"


def _task_pids(jobs_folder) -> list[int]:
    "PIDs of the processes running submitit jobs of `jobs_folder` (the tasks, not their controller)."
    pids = []
    for d in Path('/proc').iterdir():
        if not d.name.isdigit(): continue
        try: cmd = (d / 'cmdline').read_bytes().split(b'\0')
        except OSError: continue
        if b'submitit.core._submit' in cmd and str(jobs_folder).encode() in cmd: pids.append(int(d.name))
    return pids

@pytest.mark.skipif(not Path('/proc').is_dir(), reason='finds the job process through /proc (Linux)')
def test_local_executor_sweep_requeued_after_preemption_matches_an_uninterrupted_run(tmp_path):
    params = dict(steps=60, ckpt_every=10, log_every=10)
    sets = SMOKE_SETS + sum((['--set', f'{k}={v}'] for k, v in params.items()), [])
    jobs, runs, out = tmp_path / 'jobs', tmp_path / 'runs', tmp_path / 'sweep.json'
    env = dict(os.environ, OMP_NUM_THREADS='1'); env.pop(FAULT_ENV, None)
    driver = subprocess.Popen([sys.executable, 'bench/sweep_generative.py', '--profile', 'smoke', '--archs', 'gnn', '--gens',
                               'flow_matching', *sets, '--runs-root', str(runs), '--out', str(out), '--executor', 'local',
                               '--jobs-folder', str(jobs), '--poll-s', '0.5', '--timeout-min', '20'],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ref = run(arch='gnn', gen='flow_matching', profile='smoke,gnn,flow_matching', run_dir=str(tmp_path / 'ref'), **SMALL, **params)
    try:
        ckpt = runs / 'qm9-gnn-flow_matching' / 'ckpt_last.pt'
        t0 = time.time()
        while not ckpt.exists():                                        # training has reached its first checkpoint
            assert driver.poll() is None and time.time() - t0 < 240, f"no checkpoint; driver: {driver.stdout.read() if driver.poll() is not None else 'running'}"
            time.sleep(0.05)
        pids = _task_pids(jobs)
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGUSR2)                                # Slurm's warning before preemption / the time limit
        log, _ = driver.communicate(timeout=400)
    finally:
        if driver.poll() is None: driver.kill()
    assert driver.returncode == 0, log
    job_out = next(jobs.glob('*_0_log.out')).read_text()
    assert 'Caught signal SIGUSR2' in job_out and 'Calling checkpoint method' in job_out and 'Requeued job' in job_out, job_out
    assert 'molbench: job signalled' in job_out and job_out.count('Starting with JobEnvironment') == 2, job_out
    rows = _rows(out)
    assert [(r['arch'], r['gen'], r['job']['executor']) for r in rows] == [('gnn', 'flow_matching', 'local')]
    d = ROOT / rows[0]['run_dir']
    assert (d / 'metrics.json').read_bytes() == (tmp_path / 'ref' / 'metrics.json').read_bytes()
    assert rows[0]['metrics'] == json.loads((tmp_path / 'ref' / 'metrics.json').read_text())
    rows_of = lambda p: [json.loads(l) for l in (p / 'log.jsonl').read_text().splitlines()]
    steps = lambda p, kind: [r['step'] for r in rows_of(p) if r['kind'] == kind]
    assert steps(d, 'train') == steps(tmp_path / 'ref', 'train') == [10, 20, 30, 40, 50, 60]     # nothing logged twice
    assert steps(d, 'eval') == steps(tmp_path / 'ref', 'eval')                                   # the validation loss too
    assert len({(r['step'], r['kind']) for r in rows_of(d)}) == len(rows_of(d))
    print(f"\nrequeued after SIGUSR2: {'continuing from step' in job_out and job_out.split('continuing from step')[1].split()[0]}")


def test_local_executor_job_with_two_processes_trains_with_ddp(tmp_path):
    "--processes-per-job 2 (on Slurm: --gpus-per-job 2): the job's two tasks form a gloo process group and run train_run."
    sweep = _load_script('sweep_generative')
    out = tmp_path / 'sweep.json'
    sweep.main(['--profile', 'smoke', '--archs', 'gnn', '--gens', 'flow_matching', *SMOKE_SETS, '--set', 'sample_batch_size=4',
                '--runs-root', str(tmp_path / 'runs'), '--out', str(out), '--executor', 'local', '--processes-per-job', '2',
                '--jobs-folder', str(tmp_path / 'jobs'), '--poll-s', '0.5', '--timeout-min', '20'])
    (row,) = _rows(out)
    d = ROOT / row['run_dir']
    assert row['metrics']['train']['steps'] == 20 and row['metrics']['checks']['n_samples'] == 8
    starts = json.loads((d / 'distributed.json').read_text())['starts']
    assert [(s['world_size'], s['backend'], s['per_process_batch']) for s in starts] == [(2, 'gloo', 4)]
    assert torch.load(d / 'ckpt_last.pt', weights_only=False)['world_size'] == 2
    assert sorted(p.name for p in (tmp_path / 'jobs').glob('*_log.out')) == [f"{row['job']['id']}_{t}_log.out" for t in (0, 1)]
