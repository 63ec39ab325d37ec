"""One training loop: BOOM's neural families and NL-MTP train through `molbench.training.trainer.Trainer`, so a run
SIGKILLed mid-training (MOLBENCH_FAULT, see molbench.training.trainer.fault_point) and rerun in the same folder ends with
exactly the parameters, early-stopping history and verified checkpoint of an uninterrupted run.

Each run is a few seconds on one CPU thread, in a forked process (tests/test_faults.py does the same).
"""
import math, os, signal
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from molbench.training.trainer import FAULT_ENV, CKPT_LAST, load_checkpoint, verify_checkpoint

torch.set_num_threads(1)
os.environ.pop(FAULT_ENV, None)
from conftest import KILLED, in_child as _in_child


def in_child(fn, *args, fault=None, timeout=300):
    "conftest.in_child, failing the test if the child raised: (exit code, result or None if it died)."
    code, got = _in_child(fn, *args, fault=fault, timeout=timeout)
    if got is not None and got[0] == 'error': raise AssertionError(f"child failed: {got[1]}")
    return code, (got[1] if got else None)


def flat(module) -> np.ndarray: return torch.cat([p.detach().flatten().cpu() for p in module.parameters()]).numpy()


# ---------------------------------------------------------------- BOOM: the MLP family
@pytest.fixture(scope='module')
def hof():
    if not os.environ.get('MOLBENCH_DATA_DIR'): pytest.skip('needs $MOLBENCH_DATA_DIR (the reference data)')
    from molbench.store import fetch
    from molbench.data.boom import LLNL_FILES
    df = pd.read_csv(fetch(LLNL_FILES['hof']), nrows=80).rename(columns={'hof_s': 'y'})
    df.insert(0, 'id', np.arange(len(df)))
    return df


MLP = dict(epochs=4, batch_size=16, hidden=(32,), patience=100, device='cpu', seed=3)   # 58 fit rows: 4 steps an epoch, 16 in all

def fit_mlp(df, run_dir):
    from molbench.boom.models import MLPModel
    m = MLPModel(**MLP).fit(df.iloc[:64], run_dir=run_dir)
    hist = [{k: v for k, v in h.items() if k != 'seconds'} for h in m.history]
    return dict(params=flat(m.net), history=hist, stop=m.stop_reason, pred=m.predict(df.iloc[64:]))


@pytest.fixture(scope='module')
def mlp_ref(hof, tmp_path_factory):
    "The uninterrupted run (descriptors computed here first, so every forked run inherits them)."
    from molbench.boom.models import descriptor_features
    descriptor_features(hof.smiles)
    code, ref = in_child(fit_mlp, hof, tmp_path_factory.mktemp('mlp') / 'ref')
    assert code == 0 and ref['stop'] == 'epochs' and [h['step'] for h in ref['history']] == [4, 8, 12, 16]
    return ref


@pytest.mark.parametrize('fault', ['train_step:7', 'ckpt_rotate:3'])
def test_boom_mlp_killed_and_resumed_matches_uninterrupted(tmp_path, hof, mlp_ref, fault):
    ref, run = mlp_ref, tmp_path / 'killed'
    code, got = in_child(fit_mlp, hof, run, fault=fault)
    assert code == KILLED and got is None, f"the fault {fault} did not kill the run"
    state, used = load_checkpoint(run)                            # what survived the kill: a verified earlier checkpoint
    assert verify_checkpoint(used) is None and 0 < state['step'] < 16
    code, res = in_child(fit_mlp, hof, run)                       # rerun the same folder: continues
    assert code == 0
    assert np.array_equal(res['params'], ref['params']), f"max |Δ| {np.abs(res['params'] - ref['params']).max():.3g}"
    assert res['history'] == ref['history'] and np.array_equal(res['pred'], ref['pred'])
    state, used = load_checkpoint(run)
    assert used.name == CKPT_LAST and state['step'] == 16 and state['meta']['early_stopping']['stopped'] == 'epochs'
    rows = (run / 'log.jsonl').read_text().splitlines()
    assert len(rows) == 8                                          # 4 train + 4 eval rows, none twice after the resume


# ---------------------------------------------------------------- NL-MTP
@pytest.fixture(scope='module')
def nlmtp_tiny():
    if not os.environ.get('MOLBENCH_DATA_DIR'): pytest.skip('needs $MOLBENCH_DATA_DIR (the reference data)')
    from molbench.nlmtp import load_hof_table, featurize, scaffold_split, build_nlmtp_data, NLMTPConfig
    tab = load_hof_table().iloc[:120]
    fe = featurize(tab['smiles'], tab['id'])
    data = build_nlmtp_data(tab, scaffold_split(fe['scaffold'], seed=0), features=fe)
    return data, NLMTPConfig(len(data.vocab), data.ctx.shape[1], data.n_desc, d_model=16, n_heads=2, d_ff=32)

def fit_nlmtp(data, cfg, run_dir):
    from molbench.nlmtp import train_nlmtp, NLMTPTrainConfig
    tc = NLMTPTrainConfig(epochs=3, batch_size=32, warmup_steps=2, mmp_epochs=2.0, eval_batch_size=128, seed=1)
    r = train_nlmtp(data, cfg, tc, run_dir, log=lambda s: None)
    last, _ = load_checkpoint(run_dir)
    return dict(best=flat(r['model']), last=torch.cat([v.flatten() for v in last['model'].values()]).numpy(),
                steps=r['steps'], best_epoch=r['best_epoch'], history=r['history'])


def test_nlmtp_killed_and_resumed_matches_uninterrupted(tmp_path, nlmtp_tiny):
    data, cfg = nlmtp_tiny
    spe = math.ceil(len(data.rows('train')) / 32)
    code, ref = in_child(fit_nlmtp, data, cfg, tmp_path / 'ref')
    assert code == 0 and ref['steps'] == 3 * spe and len(ref['history']) == 3
    run = tmp_path / 'killed'
    code, got = in_child(fit_nlmtp, data, cfg, run, fault=f'train_step:{spe + 2}')   # inside epoch 2, after epoch 1's checkpoint
    assert code == KILLED and got is None
    state, used = load_checkpoint(run)
    assert verify_checkpoint(used) is None and state['step'] == spe
    assert not (run / 'last.pt').exists() and not (run / 'best.pt').exists()
    code, res = in_child(fit_nlmtp, data, cfg, run)
    assert code == 0
    assert np.array_equal(res['last'], ref['last']), f"max |Δ| {np.abs(res['last'] - ref['last']).max():.3g}"
    assert np.array_equal(res['best'], ref['best']) and res['best_epoch'] == ref['best_epoch']
    assert res['history'] == ref['history']
