#!/usr/bin/env python
"""Train, sample and evaluate every backbone × process under one profile; collect the metrics into one results file.

Each combination is one `molbench.generative.runner.run` in its own run folder, <runs-root>/<dataset>-<arch>-<gen>. The results file
holds one row per combination: the run folder, this invocation's wall time, the run's metrics.json and its timing.json.

Killed and rerun, a sweep loses and duplicates nothing: the results file is rewritten atomically after every combination;
a combination already in it is skipped; one that was interrupted is continued in its folder (from its last good
checkpoint); one that finished but was killed before its row was written is read back from its folder, not redone.
Rows are merged by (arch, gen, dataset): a row never appears twice. (A finished run folder is reused by the same
settings, so start a fresh sweep of the same settings under a new --runs-root.)

With --executor slurm (or local / debug, submitit's executors on this machine) every combination not yet in the results
file is one job of a job array (molbench.training.cluster): --gpus-per-job K runs it with DDP on K GPUs; a job that is preempted
or reaches its time limit is requeued and continues its run folder from the last checkpoint; this process waits and
writes each job's row into the same results file as soon as that job finishes. Rerun the driver after it was killed only
once its jobs have ended (it would submit the unfinished ones again, into the same run folders).

Usage: OMP_NUM_THREADS=1 python bench/sweep_generative.py --profile default --set minutes=2 --out results/generative_qm9.json
       [--archs gnn,transformer] [--gens flow_matching] [--dataset qm9]
       [--executor slurm --gpus-per-job 1 --partition gpu --timeout-min 240 --setup 'source .venv/bin/activate']
"""
from __future__ import annotations
import argparse, json, os, shlex, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = ('arch', 'gen', 'dataset')   # one row per combination

def parse_value(v: str):
    "'2' → 2, '0.5' → 0.5, 'true' → True, anything else stays a string."
    import yaml
    return yaml.safe_load(v)

def merge_row(rows: list[dict], row: dict) -> list[dict]:
    "`rows` with `row` in the place of any earlier row of the same (arch, gen, dataset), else appended: never a duplicate."
    key = tuple(row[k] for k in KEY)
    out, placed = [], False
    for r in rows:
        if tuple(r.get(k) for k in KEY) != key: out.append(r)
        elif not placed: out.append(row); placed = True
    return out if placed else out + [row]

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--profile', default=None, help='params/<name>.yaml profile(s), comma-separated')
    ap.add_argument('--archs', default='gnn,transformer,pairformer')
    ap.add_argument('--gens', default='flow_matching,diffusion,stochastic_interpolant')
    ap.add_argument('--dataset', default='qm9')
    ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='override a run parameter')
    ap.add_argument('--runs-root', default=str(ROOT / 'runs' / 'sweep'))
    ap.add_argument('--out', required=True, help='results JSON (rewritten atomically after every combination)')
    from molbench.training.cluster import add_executor_args, executor_from_args, submit, collect, SweepJob, job_log
    add_executor_args(ap)
    a = ap.parse_args(argv)
    from molbench.generative.runner import run, register_all
    from molbench.training.trainer import fault_point
    from molbench.core import write_json, check_choice, ARCHS, GENS
    register_all()
    archs, gens = a.archs.split(','), a.gens.split(',')
    for x in archs: check_choice('arch', x, ARCHS.names)
    for g in gens: check_choice('gen', g, GENS.names)
    extra = {}
    for kv in a.set:
        if '=' not in kv: raise SystemExit(f"--set takes KEY=VALUE, got {kv!r}")
        k, v = kv.split('=', 1); extra[k] = parse_value(v)
    out = Path(a.out)
    rows = []
    for r in (json.loads(out.read_text())['rows'] if out.exists() else []): rows = merge_row(rows, r)
    done = {tuple(r[k] for k in KEY) for r in rows}
    command = shlex.join(['python', 'bench/sweep_generative.py'] + (argv if argv is not None else sys.argv[1:]))
    todo = []
    for arch in archs:
        for gen in gens:
            if (arch, gen, a.dataset) in done:
                print(f"{arch} × {gen}: already in {out}, skipped"); continue
            profile = ','.join(filter(None, [a.profile, arch, gen]))
            run_dir = Path(a.runs_root) / f'{a.dataset}-{arch}-{gen}'
            todo.append(dict(arch=arch, gen=gen, dataset=a.dataset, profile=profile, run_dir=str(run_dir), **extra))

    def record(kw, m, wall_s, job=None):
        nonlocal rows
        m = dict(m); timing = m.pop('timing'); where = m.pop('run_dir')
        row = dict(arch=kw['arch'], gen=kw['gen'], dataset=a.dataset, profile=kw['profile'], overrides=extra, run_dir=os.path.relpath(where, ROOT),
                   wall_s=round(wall_s, 1), metrics=m, timing=timing)
        if job is not None: row['job'] = job
        rows = merge_row(rows, row)
        fault_point('sweep_row')                         # test hook: a kill with the run finished, its row not yet written
        write_json(out, {'command': command, 'rows': rows})
        print(f"{kw['arch']} × {kw['gen']}: {row['wall_s']} s → {out}", flush=True)

    ex = executor_from_args(a)
    if ex is None:                                       # the local loop, in this process
        for kw in todo:
            t0 = time.perf_counter()
            record(kw, run(**kw), time.perf_counter() - t0)
        return
    jobs = submit(ex, SweepJob('generative'), todo)      # one job per combination: one array
    print(f"submitted {len(jobs)} job(s) to {a.executor}: {', '.join(j.job_id for j in jobs)}; logs in {a.jobs_folder}", flush=True)
    keys = [(kw, j.job_id) for kw, j in zip(todo, jobs)]
    failed = collect(jobs, keys, lambda k, r: record(k[0], r['result'], r['wall_s'], {'executor': a.executor, 'id': k[1]}),
                     poll_s=a.poll_s)
    if failed:
        raise SystemExit(f"{len(failed)} job(s) failed: " + ', '.join(f"{k[0]['arch']} × {k[0]['gen']}" for k, _ in failed)
                         + f" (logs in {a.jobs_folder}); rerun to retry them — finished rows are kept")

if __name__ == '__main__':
    main()
