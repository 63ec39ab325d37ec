"""The book builds offline: viewers and figures are present and no script comes from a CDN."""
import re
from conftest import run

def test_book_builds_offline(root):
    run(['bash', 'scripts/build_book.sh'])
    html = root / '_build' / 'html'
    page = (html / 'book' / 'datasets.html').read_text(encoding='utf-8')
    srcs = re.findall(r'<script[^>]*\bsrc="([^"]+)"', page)
    remote = [s for s in srcs if s.startswith(('http:', 'https:', '//'))]
    assert not remote, f"scripts loaded from the network: {remote}"
    assert any(s.startswith('../_static/vendor/3Dmol-min.js') for s in srcs)
    assert any(s.startswith('../_static/vendor/plotly.min.js') for s in srcs)
    assert (html / '_static' / 'vendor' / '3Dmol-min.js').stat().st_size > 100_000
    assert 'Plotly.newPlot' in page            # plotly figures are rendered from the page, not a CDN
    assert '$3Dmol.createViewer' in page       # interactive 3D views are present
    assert 'cdn.jsdelivr' not in page and 'cdn.plot.ly' not in page


def test_book_pages_render_offline_in_chromium(root, tmp_path):
    """Every page of the built book in headless Chromium with every host unresolvable: no JavaScript error, no failed
    load (so no request left the machine), no missing image, no blank 3D view, and the plotly figures drawn."""
    import html as html_lib, json, pytest
    from test_offline_views import CHROMIUM, PROBE_HEAD, PROBE_TAIL, chromium
    if CHROMIUM is None: pytest.skip('needs headless Chromium (Debian: apt-get install chromium)')
    html = root / '_build' / 'html'
    if not (html / 'book' / 'generative.html').exists(): run(['bash', 'scripts/build_book.sh'])
    tail = PROBE_TAIL.replace("failed: window.__failed,",
                              "failed: window.__failed, images: Array.from(document.images).filter(function (i) "
                              "{ return !i.complete || i.naturalWidth === 0; }).map(function (i) { return i.src; }), "
                              "article: (document.querySelector('.bd-article-container') || {getBoundingClientRect: "
                              "function () { return {width: 0}; }}).getBoundingClientRect().width,")
    # the paper's pages, and the API reference rendered from the library notebooks (book/api/**, saved outputs)
    api = sorted((html / 'book' / 'api').rglob('*.html'))
    pages = sorted((html / 'book').glob('*.html')) + api + [html / 'index.html']
    assert len(pages) >= 6 and api, pages
    seen = {}
    for page in pages:
        src = page.read_text(encoding='utf-8')
        assert str(root) not in src, f"{page.relative_to(html)}: a path of this machine ({root}) is in the page"
        probed = page.with_name(f'.probe-{page.name}')                     # beside the page: its relative links still work
        probed.write_text(src.replace('<head>', '<head>' + PROBE_HEAD, 1).replace('</body>', tail + '</body>', 1), encoding='utf-8')
        try: dom = chromium(probed.as_uri(), '--dump-dom', '--window-size=1280,4000')
        finally: probed.unlink()
        m = re.search(r'<pre id="molbench-probe"[^>]*>(.*?)</pre>', dom, re.S)
        if 'http-equiv="refresh"' in src.lower() and not m: continue                # index.html only redirects to the intro
        assert m, f'{page.name}: the probe did not run'
        probe = json.loads(html_lib.unescape(m.group(1)))
        seen[page.relative_to(html / 'book').as_posix() if page.parent != html else page.name] = probe
        assert not probe['errors'], f"{page.name}: JavaScript errors {probe['errors']}"
        assert not probe['failed'], f"{page.name}: failed loads (a request left the machine or a file is missing) {probe['failed']}"
        assert not probe['images'], f"{page.name}: missing images {probe['images']}"
        assert all(v['canvases'] and not v['warning'] and v['nonwhite'] > 200 for v in probe['views']), f"{page.name}: blank 3D view {probe['views']}"
        if 'Plotly.newPlot' in src: assert probe['plotly'] == 'object' and probe['plots'] >= 1, f'{page.name}: plotly figures not drawn'
        # at 1280 px the article uses the width beside the navigation (the in-page contents no longer take a column of it)
        assert probe['article'] >= 900, f"{page.name}: the article column is {probe['article']:.0f} px wide at 1280 px"
    assert seen['datasets.html']['views'] and seen['generative.html']['plots'] >= 1, {k: (len(v['views']), v['plots']) for k, v in seen.items()}
    assert seen['intro.html']['plots'] >= 1, 'the headline figure is not drawn'
    assert any(v['views'] for k, v in seen.items() if k.startswith('api/')), 'no 3D view on any API page'
    # the book's parts, in order, in the navigation of every page
    nav = (html / 'book' / 'intro.html').read_text(encoding='utf-8')
    captions = [c for c in ('Overview', 'Methods', 'Results', 'Appendix') if f'<span class="caption-text">{c}</span>' in nav]
    assert captions == ['Overview', 'Methods', 'Results', 'Appendix'], captions
