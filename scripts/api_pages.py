#!/usr/bin/env python
"""Render the library notebooks (nbs/) as the book's API reference: book/api/<path>.ipynb, executed, directives hidden.

For every library notebook under nbs/ (not the papermill runners nbs/train.ipynb, nbs/boom.ipynb, nbs/nlmtp.ipynb, not
nbs/index.ipynb, not files starting with `_` or `.`) this script

1. executes the notebook as `nbdev_test` does — every cell in the notebook's own folder, `#| hide` cells included (they
   hold the imports the demos need), except `#| slow` / `#| cuda` cells and cells with `#| eval: false` — with nbclient
   and the `python3` kernel, `MOLBENCH_DATA_DIR` taken from the environment and `MOLBENCH_OFFLINE_JS=1` (3D views use the
   book's own 3Dmol.js, plotly figures the book's plotly.js);
2. drops the `#| hide` cells, strips every `#| …` directive line from the others (a cell left empty, such as
   `#| default_exp`, goes), keeps the markdown, the exported code and the demos with their outputs; a skipped cell keeps
   its code with a comment saying why it has no output;
3. replaces any output larger than --max-output kB with a note, removes widget state, replaces an embedded copy of
   3Dmol.js or plotly.js (`nbs/02_viz` tests both ways of serving them) by the book's own, and replaces machine paths in
   the outputs (the repository, the data folder, the cache, the home folder, temporary folders, the Python installation)
   with placeholders — and fails if a path under the checkout's parent folder survives;
4. writes the page with notebook metadata `mystnb: {execution_mode: 'off'}`, so `jupyter-book build` renders the saved
   outputs and never executes these pages again; and rewrites the API block of `_toc.yml` and `book/api/index.md`.

The pages are meant to be committed (total ≲ 5 MB, printed at the end). Regenerate them after changing a notebook:

    OMP_NUM_THREADS=1 MOLBENCH_DATA_DIR=/path/to/data nice -n 19 .venv/bin/python scripts/api_pages.py   # all (minutes)
    .venv/bin/python scripts/api_pages.py nbs/00_core.ipynb nbs/01_store.ipynb                           # some
    .venv/bin/python scripts/api_pages.py --toc-only                                                     # toc + index

`make api` runs the first form (with ../shared/data as the data folder when it exists).
"""
import argparse, copy, json, os, re, subprocess, sys, time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NBS, OUT = ROOT / 'nbs', ROOT / 'book' / 'api'
TOC = ROOT / '_toc.yml'
RUNNERS = {'train.ipynb', 'boom.ipynb', 'nlmtp.ipynb', 'index.ipynb'}   # top-level notebooks that are not library pages
SKIP_FLAGS = ('slow', 'cuda')        # settings.ini tst_flags: nbdev_test skips these unless asked
TOC_BEGIN = '# BEGIN API REFERENCE (written by scripts/api_pages.py; edit the script, not this block)'
TOC_END = '# END API REFERENCE'
DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+):?\s*(.*?)\s*$')
KERNELSPEC = {'display_name': 'python3', 'language': 'python', 'name': 'python3'}
# Notebooks that test both ways `molbench.viz` serves 3Dmol.js and plotly.js, and so must start without MOLBENCH_OFFLINE_JS:
# their outputs embed the libraries, which `book_js` then replaces by the book's own copies (what the book mode writes).
EMBEDDED_JS = {'02_viz.ipynb'}


def library_notebooks() -> list[Path]:
    "Every library notebook under nbs/, in the order nbdev numbers them (folder by folder)."
    out = []
    for p in sorted(NBS.rglob('*.ipynb')):
        rel = p.relative_to(NBS)
        if any(part.startswith(('_', '.')) for part in rel.parts) or '.ipynb_checkpoints' in rel.parts: continue
        if len(rel.parts) == 1 and rel.name in RUNNERS: continue
        out.append(p)
    return out


def directives(cell) -> tuple[dict, str]:
    "The cell's leading `#| key value` directives (as nbdev reads them) and its source without them."
    lines, direc = cell.source.splitlines(), {}
    i = 0
    while i < len(lines):
        m = DIRECTIVE.match(lines[i])
        if m: direc[m.group(1).lower()] = m.group(2); i += 1
        elif not lines[i].strip() and not direc: i += 1        # blank lines before the first directive
        else: break
    return direc, '\n'.join(lines[i:]).strip('\n')


def skip_reason(direc: dict) -> str | None:
    "Why `nbdev_test` would not run a cell with these directives, or None."
    if direc.get('eval', '').lower() == 'false': return 'marked `#| eval: false`'
    for f in SKIP_FLAGS:
        if f in direc: return f'a `#| {f}` cell (`nbdev_test --flags {f}` runs it)'
    return None


def frontmatter_skip(nb) -> bool:
    "nbdev's `skip_exec: true` front matter (the first raw or markdown cell)."
    first = next((c for c in nb.cells if c.cell_type in ('raw', 'markdown')), None)
    return bool(first is not None and re.search(r'^skip_exec:\s*true\s*$', first.source, re.M))


def execute(nb, path: Path, timeout: int) -> list[tuple[int, str]]:
    "Run the notebook's cells in its folder as nbdev_test does; returns (cell index, reason) of the cells not run."
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', allow_errors=False,
                            resources={'metadata': {'path': str(path.parent)}})
    env = dict(os.environ)
    if path.name in EMBEDDED_JS: env.pop('MOLBENCH_OFFLINE_JS', None)
    skipped = []
    with client.setup_kernel(env=env):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != 'code': continue
            why = skip_reason(directives(cell)[0]) or ('nbdev_export call' if 'nbdev_export(' in cell.source else None)
            if why: skipped.append((i, why)); cell.outputs = []; cell.execution_count = None; continue
            client.execute_cell(cell, i)
    return skipped


class BookJS:
    "Rewrites outputs that embed 3Dmol.js or plotly.js into what `molbench.viz` writes in book mode (the page's copies)."
    def __init__(self):
        from molbench import viz
        import plotly.offline
        self.pairs = []
        try: self.pairs.append((viz._embedded_loader(), f"loadScriptAsync('{viz.OFFLINE_JS}')"))
        except Exception: pass                                       # no local 3Dmol.js: nothing can have embedded it
        js = plotly.offline.get_plotlyjs()
        self.pairs += [(f'<script>{js}</script>', ''), (f'<script type="text/javascript">{js}</script>', '')]
    def __call__(self, text: str) -> str:
        for a, b in self.pairs: text = text.replace(a, b)
        return text


class Scrubber:
    "Replaces this machine's paths in output text by placeholders."
    def __init__(self):
        import site, sysconfig, tempfile
        pairs = [(str(ROOT / '.venv' / 'lib'), '<venv>/lib'), (sysconfig.get_paths()['purelib'], '<site-packages>')]
        if os.environ.get('MOLBENCH_DATA_DIR'): pairs.append((str(Path(os.environ['MOLBENCH_DATA_DIR']).resolve()), '$MOLBENCH_DATA_DIR'))
        try:
            from molbench.core import cache_dir
            pairs.append((str(cache_dir()), '$MOLBENCH_CACHE'))
        except Exception: pass
        pairs += [(str(ROOT), '<repo>'), (sys.base_prefix, '<python>'), (str(Path.home()), '~')]
        self.book_js = BookJS()
        self.pairs = sorted({(a, b) for a, b in pairs if a and len(a) > 1}, key=lambda ab: -len(ab[0]))
        tmp = re.escape(tempfile.gettempdir().rstrip('/'))
        self.tmp = re.compile(tmp + r'/[^\s\'"<>),:\]]*')
        self.parent = str(ROOT.parent) + os.sep                 # the folder that holds this checkout (and ../shared)
    def survivor(self, text: str) -> str | None:
        "An excerpt around the first path under the checkout's parent folder left in `text`, or None."
        i = text.find(self.parent)
        return None if i < 0 else text[max(0, i - 80):i + 80]
    def __call__(self, text: str) -> str:
        text = self.book_js(text)
        for a, b in self.pairs: text = text.replace(a, b)
        return self.tmp.sub('<tmp>', text)


def clean_outputs(cell, scrub: Scrubber, max_bytes: int) -> list[str]:
    "Scrub paths, drop widget views and oversized outputs of one code cell; returns notes on what was dropped."
    notes, outs = [], []
    for o in cell.get('outputs', []):
        o = copy.deepcopy(o)
        if o.output_type == 'stream': o.text = scrub(o.text)
        elif o.output_type in ('display_data', 'execute_result'):
            o.data.pop('application/vnd.jupyter.widget-view+json', None)
            for k, v in list(o.data.items()):
                if isinstance(v, str): o.data[k] = scrub(v)
                elif k.endswith('json'): o.data[k] = json.loads(scrub(json.dumps(v)))
            if not o.data: continue
        elif o.output_type == 'error':
            o.traceback = [scrub(t) for t in o.traceback]; o.evalue = scrub(o.evalue)
        size = len(json.dumps(o))
        if size > max_bytes:
            notes.append(f'{size / 1e3:.0f} kB')
            o = nbformat.v4.new_output('stream', name='stdout', text=f'[an output of {size / 1e3:.0f} kB is left out of the book page; '
                                       'run the notebook to see it]\n')
        outs.append(o)
    cell.outputs = outs
    return notes


def page(nb, src: Path, skipped: list[tuple[int, str]], scrub: Scrubber, max_bytes: int, commit: str) -> tuple[object, dict]:
    "The book page of an executed library notebook, and a report of what was changed."
    why = dict(skipped)
    cells, report = [], dict(hidden=0, skipped=len(skipped), dropped_outputs=[])
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'raw': continue
        if c.cell_type == 'markdown':
            cells.append(nbformat.v4.new_markdown_cell(c.source, id=c.get('id'))); continue
        direc, body = directives(c)
        if 'hide' in direc: report['hidden'] += 1; continue
        if not body.strip(): continue
        if i in why: body = f'# not run for this page: {why[i]}\n' + body
        new = nbformat.v4.new_code_cell(body, id=c.get('id'))
        new.outputs, new.execution_count = c.get('outputs', []), c.get('execution_count')
        tags = [t for t in c.get('metadata', {}).get('tags', []) if t in ('hide-input', 'hide-output', 'remove-input', 'remove-output')]
        if tags: new.metadata['tags'] = tags
        report['dropped_outputs'] += clean_outputs(new, scrub, max_bytes)
        cells.append(new)
    rel = src.relative_to(ROOT).as_posix()
    note = nbformat.v4.new_markdown_cell(
        f"```{{note}}\nThis page is the library notebook `{rel}`, executed by `scripts/api_pages.py` (commit `{commit}`): "
        "nbdev's directives and the hidden set-up cells are left out; the code and the outputs of the demos and tests are "
        "as they ran then. Cells flagged slow were not run here.\n```", id='apipage0')
    first = next((k for k, c in enumerate(cells) if c.cell_type == 'markdown' and c.source.lstrip().startswith('# ')), None)
    cells.insert(0 if first is None else first + 1, note)
    out = nbformat.v4.new_notebook(cells=cells, metadata={
        'kernelspec': KERNELSPEC, 'language_info': {'name': 'python'},
        'mystnb': {'execution_mode': 'off'}})           # myst-nb: render the saved outputs, never execute this page
    out.nbformat, out.nbformat_minor = 4, 5
    return out, report


def title_and_summary(nb_path: Path) -> tuple[str, str]:
    "The notebook's `# title` and its `> summary` line (nbdev's front matter in markdown)."
    nb = nbformat.read(nb_path, as_version=4)
    for c in nb.cells:
        if c.cell_type == 'markdown' and c.source.lstrip().startswith('# '):
            lines = c.source.strip().splitlines()
            summary = next((l.lstrip('> ').strip() for l in lines[1:] if l.startswith('>')), '')
            return lines[0][2:].strip(), summary
    return nb_path.stem, ''


def write_toc_and_index(pages: list[Path]):
    "Rewrite the API block of _toc.yml (a section per folder, its 00_ notebook as the folder's page) and book/api/index.md."
    def entry(p: Path) -> str: return 'book/api/' + p.relative_to(OUT).with_suffix('').as_posix()
    tree: dict = {}
    for p in pages:
        node = tree
        for part in p.relative_to(OUT).parts[:-1]: node = node.setdefault(part, {})
        node.setdefault('__files__', []).append(p)
    lines = []
    def emit(node, indent):
        for p in node.get('__files__', []):
            if p.name.startswith('00_') and p.parent != OUT: continue     # a folder's index: emitted as the folder's page
            lines.append(f"{' ' * indent}- file: {entry(p)}")
        for name in sorted(k for k in node if k != '__files__'):
            sub = node[name]
            head = next((p for p in sub.get('__files__', []) if p.name.startswith('00_')), None)
            if head is None:                                         # a folder without an index notebook: flatten it
                emit(sub, indent); continue
            lines.append(f"{' ' * indent}- file: {entry(head)}")
            at = len(lines)
            emit(sub, indent + 4)
            if len(lines) > at: lines.insert(at, f"{' ' * indent}  sections:")
    emit(tree, 10)
    block = '\n'.join([f'      {TOC_BEGIN}', '      - file: book/api/index', '        sections:', *lines, f'      {TOC_END}'])
    toc = TOC.read_text(encoding='utf-8')
    pat = re.compile(r'^[ \t]*' + re.escape(TOC_BEGIN) + r'.*?' + re.escape(TOC_END) + r'[ \t]*$', re.S | re.M)
    if not pat.search(toc): raise SystemExit(f'{TOC.name}: no API block ({TOC_BEGIN!r} … {TOC_END!r}) to rewrite')
    TOC.write_text(pat.sub(lambda m: block, toc, count=1), encoding='utf-8')
    rows = []
    for p in pages:
        src = NBS / p.relative_to(OUT)
        title, summary = title_and_summary(p)
        summary = summary.replace('|', r'\|')
        rows.append(f"| {{doc}}`{title} <{p.relative_to(OUT).with_suffix('').as_posix()}>` | `nbs/{src.relative_to(NBS).as_posix()}` | {summary} |")
    (OUT / 'index.md').write_text(
        "# API reference\n\n"
        "The library `molbench/` is exported from the notebooks in `nbs/` by nbdev. Each page below is one of those notebooks "
        "as it ran — its explanation, its exported code and its demos and tests with their outputs — with nbdev's directives "
        "and hidden set-up cells left out. The pages are written by `scripts/api_pages.py` (`make api`) and are not "
        "re-executed when the book is built. The papermill runners `nbs/train.ipynb`, `nbs/boom.ipynb` and `nbs/nlmtp.ipynb` "
        "are the commands of {doc}`../reproducibility`, not API pages.\n\n"
        "| page | notebook | what it holds |\n|---|---|---|\n" + '\n'.join(rows) + '\n', encoding='utf-8')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('notebooks', nargs='*', help='library notebooks to regenerate (default: all)')
    ap.add_argument('--timeout', type=int, default=900, help='seconds one cell may run')
    ap.add_argument('--max-output', type=float, default=200, help='kB: larger outputs are replaced by a note')
    ap.add_argument('--toc-only', action='store_true', help='only rewrite the toc block and book/api/index.md')
    a = ap.parse_args()
    os.environ.update(MOLBENCH_OFFLINE_JS='1', IN_TEST='1', JUPYTER_PREFER_ENV_PATH='1', PYTHONHASHSEED='0')
    os.environ.setdefault('OMP_NUM_THREADS', '1'); os.environ.setdefault('MKL_NUM_THREADS', '1')
    os.environ['PATH'] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    if not os.environ.get('MOLBENCH_DATA_DIR'):
        print('MOLBENCH_DATA_DIR is not set: notebooks will read the cache or download their data', file=sys.stderr)
    allnb = library_notebooks()
    todo = [Path(n).resolve() for n in a.notebooks] if a.notebooks else allnb
    bad = [str(p) for p in todo if p not in allnb]
    if bad: raise SystemExit(f'not library notebooks: {bad} (library notebooks: nbs/**/*.ipynb except {sorted(RUNNERS)})')
    commit = subprocess.run(['git', 'rev-parse', '--short=10', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip() or 'unknown'
    if subprocess.run(['git', 'status', '--porcelain', '--', 'nbs'], cwd=ROOT, capture_output=True, text=True).stdout.strip(): commit += '` with uncommitted changes in `nbs/'
    scrub, failed = Scrubber(), []
    for src in ([] if a.toc_only else todo):
        dst = OUT / src.relative_to(NBS)
        t0 = time.time()
        nb = nbformat.read(src, as_version=4)
        try:
            skipped = [] if frontmatter_skip(nb) else execute(nb, src, a.timeout)
        except (CellExecutionError, Exception) as e:              # report, keep going: the other pages are still written
            failed.append(f"{src.relative_to(ROOT)}: {scrub(str(e)).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__}")
            print(f'FAILED {src.relative_to(ROOT)} after {time.time() - t0:.0f} s', file=sys.stderr); continue
        out, rep = page(nb, src, skipped, scrub, int(a.max_output * 1000), commit)
        text = nbformat.writes(out)
        if (left := scrub.survivor(text)) is not None:
            raise SystemExit(f'{dst.relative_to(ROOT)}: a machine path survived the scrubbing: {left!r}')
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_suffix('.ipynb.tmp'); tmp.write_text(text, encoding='utf-8'); tmp.replace(dst)
        print(f"{dst.relative_to(ROOT)}: {len(text) / 1e3:.0f} kB, {time.time() - t0:.0f} s, {rep['hidden']} hidden and "
              f"{rep['skipped']} skipped cells" + (f", outputs left out: {', '.join(rep['dropped_outputs'])}" if rep['dropped_outputs'] else ''), flush=True)
    pages = [OUT / p.relative_to(NBS) for p in allnb if (OUT / p.relative_to(NBS)).exists()]
    write_toc_and_index(pages)
    total = sum(p.stat().st_size for p in OUT.rglob('*') if p.is_file())
    print(f'{len(pages)} of {len(allnb)} library notebooks have a page; book/api holds {total / 1e6:.2f} MB'
          + ('  (more than the ~5 MB meant to be committed)' if total > 5e6 else ''))
    if failed:
        print('failed (their previous pages, if any, are kept):\n  ' + '\n  '.join(failed), file=sys.stderr); sys.exit(1)


if __name__ == '__main__':
    main()
