"""TensorBoard and W&B logging of the one training loop, for real: a short run writes TensorBoard event files and an
offline W&B run, and what they hold, read back, equals the run's own `log.jsonl` rows — also after a resume."""
import time, warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

pytest.importorskip('tensorboard')
pytest.importorskip('wandb')

from molbench.training.trainer import (CKPT_PREV, RunLogger, TrainConfig, Trainer, tensorboard_scalars, wandb_history,
                                       wandb_mode)


@pytest.fixture
def no_login(tmp_path, monkeypatch):
    "No W&B login anywhere (no key, an empty netrc) and W&B's own folders inside tmp_path: the Trainer must choose offline."
    for k in ('WANDB_API_KEY', 'WANDB_MODE', 'WANDB_BASE_URL', 'WANDB_DIR', 'WANDB_SILENT', 'WANDB_ERROR_REPORTING'):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('NETRC', str(tmp_path / 'netrc'))
    for k in ('CACHE', 'CONFIG', 'DATA'): monkeypatch.setenv(f'WANDB_{k}_DIR', str(tmp_path / f'wandb-{k.lower()}'))
    return tmp_path


def setup(seed=0):
    "A two-layer MLP regressing y = (sum x)^2: 12 examples in batches of 4."
    g = torch.Generator().manual_seed(123)
    X = torch.randn(12, 3, generator=g); Y = X.sum(1, keepdim=True) ** 2
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)), DataLoader(TensorDataset(X, Y), batch_size=4, shuffle=True)


def mse_loss(scale=1.0, nan_on=()):
    "MSE (times `scale`), NaN on the chosen calls, with the MSE as a named part."
    calls = {'n': 0}
    def loss_fn(model, batch):
        calls['n'] += 1
        x, y = batch; loss = scale * ((model(x) - y) ** 2).mean()
        return (loss * float('nan') if calls['n'] in nan_on else loss), {'mse': loss.detach() / scale}
    return loss_fn


def probe(model, step):
    "An eval metric: the EMA model's output at a fixed point."
    return {'probe': float(model(torch.ones(1, 3)).squeeze()), 'step_half': step / 2}


def numbers(row): return {k: v for k, v in row.items() if k != 'step' and isinstance(v, (int, float))}


def tb_expected(rows):
    "What TensorBoard should hold for these rows: every number as a float32 event at its row's step, in order."
    out = {}
    for r in rows:
        for k, v in numbers(r).items(): out.setdefault(k, []).append((r['step'], float(np.float32(v))))
    return out


def wandb_expected(rows):
    "What W&B should hold: one history row a step, the numbers of that step's rows merged (a later row's value wins)."
    out = {}
    for r in rows: out.setdefault(r['step'], {}).update(numbers(r))
    return out


def wandb_got(run_folder):
    hist = wandb_history(run_folder)
    return {h['_step']: {k: v for k, v in h.items() if not k.startswith('_')} for h in hist}, [h['_step'] for h in hist]


CFG = TrainConfig(max_steps=24, lr=1e-2, warmup_steps=3, log_every=2, eval_every=8, ckpt_every=12, ema_decay=0.9,
                  progress=False, device='cpu', tensorboard=True, wandb_project='molbench-test')


def test_wandb_mode_without_login(no_login, monkeypatch):
    assert wandb_mode() == 'offline'
    monkeypatch.setenv('WANDB_API_KEY', 'k' * 40); assert wandb_mode() == 'online'
    monkeypatch.setenv('WANDB_MODE', 'disabled'); assert wandb_mode() == 'disabled'


def test_tensorboard_and_wandb_equal_the_jsonl_log(no_login):
    t0 = time.perf_counter()
    run = no_login / 'runs' / 'tiny'
    m, L = setup()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        A = Trainer(m, mse_loss(nan_on={7}), L, CFG, run, eval_fn=probe)   # call 7 is NaN: a bad step at step 6, a log step
    assert any('W&B logs offline' in str(x.message) and 'wandb sync' in str(x.message) for x in w)
    with A: s = A.fit()
    assert (s['steps'], s['bad_steps']) == (24, 1)
    rows_a = RunLogger(run).rows
    kinds = [r['kind'] for r in rows_a]
    assert kinds.count('train') == 12 and kinds.count('eval') == 3 and kinds.count('bad_step') == 1
    assert [r['kind'] for r in rows_a if r['step'] == 6] == ['train', 'bad_step']   # two rows, one step: W&B merges them

    tb = tensorboard_scalars(run / 'tb')
    assert tb == tb_expected(rows_a)                                  # every row, every number, float32
    assert set(tb) >= {'loss', 'mse', 'lr', 'grad_norm', 'samples_per_s', 'epoch', 'bad_steps', 'eval/probe'}
    assert len(tb['loss']) == 12 and tb['bad_steps'][2:4] == [(6, 0.0), (6, 1.0)]

    (wb_a,) = sorted((run / 'wandb').glob('offline-run-*'))           # offline, inside the run folder, one run
    got, steps = wandb_got(wb_a)
    assert steps == sorted(set(r['step'] for r in rows_a))            # one history row a step, in order
    assert got == wandb_expected(rows_a)                              # exactly: W&B keeps float64
    assert got[6]['bad_steps'] == 1 and got[24]['eval/probe'] == rows_a[-1]['eval/probe']
    assert not (no_login / 'wandb').exists()                          # nothing written outside the run folder's wandb/

    # resume from the step-12 checkpoint with another loss: the rows after 12 change, and the backends follow the JSONL
    m, L = setup(seed=5)
    with pytest.warns(UserWarning, match='W&B logs offline'):           # each W&B-logging trainer says so
        B = Trainer(m, mse_loss(scale=2.0), L, CFG, run, eval_fn=probe)
    assert B.resume(run / CKPT_PREV).name == CKPT_PREV and B.step == 12
    with B: B.fit()
    rows_b = RunLogger(run).rows
    kept = [r for r in rows_a if r['step'] <= 12]
    assert rows_b[:len(kept)] == kept and rows_b[len(kept)]['step'] == 14
    new = rows_b[len(kept):]
    old = [r for r in rows_a if r['step'] > 12]
    assert [r['step'] for r in new] == [r['step'] for r in old if r['kind'] != 'bad_step']
    assert all(a['loss'] != b['loss'] for a, b in zip([r for r in old if r['kind'] == 'train'], [r for r in new if r['kind'] == 'train']))
    assert len(list((run / 'tb').glob('events.out.tfevents.*'))) == 2
    assert tensorboard_scalars(run / 'tb') == tb_expected(rows_b)    # the purge hid the killed-off steps 14–24 of run A
    wb = sorted((run / 'wandb').glob('offline-run-*'))
    assert len(wb) == 2 and wb[0] == wb_a                             # the resumed process: a second W&B run, same name
    assert wandb_got(wb_a)[0] == wandb_expected(rows_a)               # the first one unchanged
    assert wandb_got(wb[1])[0] == wandb_expected(new)                 # the second one: the steps after the checkpoint
    print(f"logging smoke test: {time.perf_counter() - t0:.1f} s")
