"""Shared fixtures for molbench's end-to-end checks (the unit tests live in the notebooks)."""
import os, subprocess, sys
from pathlib import Path
import multiprocessing as mp, signal
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def root() -> Path:
    return ROOT

def run(cmd, timeout=900, **kw):
    "Run a command from the repo root with the venv first on PATH; fail with its output."
    env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.update(kw.pop('env', {}))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, f"{cmd} failed ({p.returncode}):\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p


FORK = mp.get_context('fork')
KILLED = -signal.SIGKILL
from molbench.training.trainer import FAULT_ENV   # the kill-at-a-point test hook

def in_child(fn, *args, fault=None, timeout=300):
    "Run `fn(*args)` in a forked process, with $MOLBENCH_FAULT=fault: (exit code, ('ok', result) | ('error', text) | None if killed)."
    here, there = FORK.Pipe(duplex=False)
    def child():
        if fault: os.environ[FAULT_ENV] = fault
        else: os.environ.pop(FAULT_ENV, None)
        try: there.send(('ok', fn(*args)))
        except BaseException as e:
            there.send(('error', f'{type(e).__name__}: {e}')); os._exit(1)
    p = FORK.Process(target=child); p.start(); there.close()
    try: got = here.recv() if here.poll(timeout) else None
    except EOFError: got = None      # killed before it could answer
    p.join(timeout)
    if p.exitcode is None: p.kill(); p.join()
    return p.exitcode, got
