#!/usr/bin/env bash
# Build the molbench book offline: vendor 3Dmol.js, plotly.js and MathJax into book/_static/vendor, then jupyter-book.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" MOLBENCH_OFFLINE_JS=1 JUPYTER_PREFER_ENV_PATH=1
if [ -z "${MOLBENCH_DATA_DIR:-}" ] && [ -d ../shared/data ]; then export MOLBENCH_DATA_DIR="$(cd ../shared/data && pwd)"; fi
vendor=book/_static/vendor
mkdir -p "$vendor"
# npm packages are cached under the molbench cache so a rebuild needs no network.
cache="${MOLBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/molbench}/npm"
mkdir -p "$cache"
fetch_npm() {  # fetch_npm PACKAGE@VERSION TARBALL
  [ -f "$cache/$2" ] || (cd "$cache" && npm pack --silent "$1" >/dev/null)
  [ -f "$cache/$2" ] || { echo "could not fetch $1 from the npm registry" >&2; exit 1; }
}
if [ ! -f "$vendor/3Dmol-min.js" ]; then
  fetch_npm 3dmol@2.5.5 3dmol-2.5.5.tgz
  tar -xzf "$cache/3dmol-2.5.5.tgz" -O package/build/3Dmol-min.js > "$vendor/3Dmol-min.js.tmp" && mv "$vendor/3Dmol-min.js.tmp" "$vendor/3Dmol-min.js"
fi
if [ ! -f "$vendor/mathjax/tex-mml-chtml.js" ]; then
  fetch_npm mathjax@3.2.2 mathjax-3.2.2.tgz
  rm -rf "$vendor/mathjax.tmp" && mkdir -p "$vendor/mathjax.tmp"
  tar -xzf "$cache/mathjax-3.2.2.tgz" -C "$vendor/mathjax.tmp" --strip-components=2 package/es5
  rm -rf "$vendor/mathjax" && mv "$vendor/mathjax.tmp" "$vendor/mathjax"
fi
python - <<'PY'
import pathlib, shutil, plotly
src = pathlib.Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js'
dst = pathlib.Path('book/_static/vendor/plotly.min.js')
if not dst.exists() or dst.stat().st_size != src.stat().st_size: shutil.copyfile(src, dst)
PY
start=$SECONDS
jupyter-book build . --keep-going "$@"
# jupyter-book 1 emits sphinx-thebe's configuration script twice per page; the second copy is a JavaScript error
# ("THEBE_JS_URL has already been declared"). Keep the first. (Thebe itself needs a live kernel server, never used offline.)
python - <<'PY'
import pathlib, re
for page in pathlib.Path('_build/html').rglob('*.html'):
    text = page.read_text(encoding='utf-8')
    tags = re.findall(r'<script>const THEBE_JS_URL = [^<]*</script>\n?', text)
    if len(tags) > 1:
        head, sep, rest = text.partition(tags[0])
        page.write_text(head + sep + rest.replace(tags[0], '').replace(tags[1], '') if tags[1] != tags[0] else head + sep + rest.replace(tags[0], ''), encoding='utf-8')
PY
echo "book built in $((SECONDS - start)) s: $PWD/_build/html/index.html"
