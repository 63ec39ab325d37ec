"""The executed runner reads offline: the smoke run of nbs/train.ipynb, exported to HTML by nbconvert, opened in headless
Chromium with every host unresolvable (only file:// loads), renders its 3D view and its plotly figures, and shows its
results as tables (no NaN rows, no raw dicts, no 'IProgress not found')."""
import html as html_lib, json, os, re, shutil, subprocess, tempfile, time
from pathlib import Path
import pytest
from conftest import run, ROOT

CHROMIUM = next((c for c in (shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome')) if c), None)
# nbconvert's own page template asks CDNs for these (AMD loader, MathJax, mermaid, the widget renderer of the saved
# progress-bar state): not molbench's; offline the bar shows its text form
TEMPLATE_CDN = ('require.js', 'mathjax', 'mermaid', '@jupyter-widgets/html-manager')

PROBE_HEAD = """<script>
window.__failed = []; window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && (t.src || t.href)) window.__failed.push(t.src || t.href);
  else window.__errors.push(String(e.message || e));
}, true);
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('unhandled rejection: ' + String(e.reason)); });
</script>"""

# After the page settled: per 3Dmol container, its canvases and how many of their pixels are not background white.
PROBE_TAIL = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  var views = [];
  document.querySelectorAll('div[id^="3dmolviewer_"]').forEach(function (div) {
    var n = 0, total = 0, canvases = div.querySelectorAll('canvas');
    canvases.forEach(function (c) {
      var t = document.createElement('canvas'); t.width = c.width; t.height = c.height;
      var g = t.getContext('2d'); g.drawImage(c, 0, 0);
      var d = g.getImageData(0, 0, t.width, t.height).data; total += d.length / 4;
      for (var i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235)) n++;
    });
    views.push({id: div.id, canvases: canvases.length, nonwhite: n, pixels: total,
                warning: !!div.querySelector('p[id^="3dmolwarning_"]')});
  });
  var pre = document.createElement('pre'); pre.id = 'molbench-probe'; pre.style.display = 'none';
  pre.textContent = JSON.stringify({threedmol: typeof window.$3Dmol, plotly: typeof window.Plotly, views: views,
    plots: document.querySelectorAll('.js-plotly-plot .main-svg').length, failed: window.__failed, errors: window.__errors});
  document.body.appendChild(pre);
}, 3000); });
</script>"""

def chromium(url: str, *args, timeout: int = 120) -> str:
    "Headless Chromium on `url` with every host name unresolvable (no network but file://); returns stdout."
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--use-gl=swiftshader',
                            '--enable-unsafe-swiftshader', '--host-resolver-rules=MAP * ~NOTFOUND',
                            '--disable-background-networking', '--no-first-run', '--disable-component-update',
                            '--disable-sync', f'--user-data-dir={profile}', '--virtual-time-budget=8000', *args, url],
                           capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"chromium failed ({p.returncode}): {p.stderr[-2000:]}"
    return p.stdout

@pytest.mark.skipif(CHROMIUM is None, reason='needs headless Chromium (Debian: apt-get install chromium)')
def test_train_runner_renders_offline(tmp_path):
    t0 = time.time()
    out = tmp_path / 'train.ipynb'
    run(['papermill', str(ROOT / 'nbs' / 'train.ipynb'), str(out), '-k', 'python3', '--no-progress-bar',
         '-f', str(ROOT / 'params' / 'smoke.yaml'), '-p', 'arch', 'pairformer', '-p', 'progress', 'True',
         '-p', 'runs_root', str(tmp_path / 'runs')], timeout=600)
    nb = json.loads(out.read_text(encoding='utf-8'))
    outputs = [o for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])]
    text = lambda o: ''.join(o.get('text', '')) + ''.join(''.join(v) if isinstance(v, list) else json.dumps(v)
                                                         for v in o.get('data', {}).values())
    assert not [o for o in outputs if 'IProgress not found' in text(o)], 'tqdm fell back: ipywidgets missing'
    # the results read as a sentence and tables: what was trained and how long it took; no NaN rows
    md = [''.join(o['data']['text/markdown']) for o in outputs if 'text/markdown' in o.get('data', {})]
    assert any(re.match(r'Trained \*\*pairformer\*\* \([\d,]+ parameters\) with \*\*flow_matching\*\* on \*\*qm9 .* for 20 '
                        r'steps( \([\d.e+]+ FLOPs\))? in [\d.]+ s', m) for m in md), md
    tables = [''.join(o['data']['text/html']) for o in outputs
              if 'text/html' in o.get('data', {}) and 'quality' in ''.join(o['data']['text/html'])]
    assert tables and not re.search(r'>\s*(nan|NaN|None)\s*<', tables[0]), 'a NaN row in the metrics table'
    assert any(m.startswith('**Not computed**') for m in md), md   # the smoke model's samples are not valid molecules

    import nbformat
    from nbconvert import HTMLExporter
    html, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))   # as `jupyter nbconvert --to html`
    for cdn in ('npm/3dmol@', "loadScriptAsync('http", 'cdn.plot.ly/plotly'):   # py3Dmol's and plotly's CDN copies
        assert cdn not in html, f'{cdn} in the exported page'
    remote = [s for s in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html) if re.match(r'(https?:)?//', s)]
    assert all(any(k in s.lower() for k in TEMPLATE_CDN) for s in remote), remote
    assert html.count('3dmolviewer_') >= 1 and 'DecompressionStream' in html
    page = tmp_path / 'train.html'
    page.write_text(html.replace('<head>', '<head>' + PROBE_HEAD, 1).replace('</body>', PROBE_TAIL + '</body>', 1),
                    encoding='utf-8')

    shot = Path(os.environ.get('MOLBENCH_SCREENSHOT_DIR', tmp_path)) / 'train-offline.png'   # evidence for a person
    shot.parent.mkdir(parents=True, exist_ok=True)
    dom = chromium(page.as_uri(), '--dump-dom', f'--screenshot={shot}', '--window-size=1280,7200')
    m = re.search(r'<pre id="molbench-probe"[^>]*>(.*?)</pre>', dom, re.S)
    assert m, 'the probe did not run: ' + dom[-1000:]
    probe = json.loads(html_lib.unescape(m.group(1)))
    assert probe['threedmol'] == 'object', probe
    assert probe['views'] and all(v['canvases'] and not v['warning'] for v in probe['views']), probe['views']
    assert all(v['nonwhite'] > 200 for v in probe['views']), f"a blank 3D view: {probe['views']}"
    assert probe['plotly'] == 'object' and probe['plots'] >= 2, probe
    ours = [s for s in probe['failed'] if not any(k in s.lower() for k in TEMPLATE_CDN)]
    assert not ours, f'failed loads: {ours}'
    assert not [e for e in probe['errors'] if re.search(r'3Dmol|Plotly|viewer', e, re.I)], probe['errors']
    assert shot.stat().st_size > 50_000
    print(f'{shot}; {time.time() - t0:.0f} s; probe: {probe}')
