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
