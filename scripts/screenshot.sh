#!/usr/bin/env bash
# Headless-Chromium screenshot of a built book page: scripts/screenshot.sh _build/html/book/datasets.html out.png [W,H]
set -euo pipefail
page=$(realpath "$1"); out=$(realpath -m "$2"); size=${3:-1280,2400}
chromium --headless --no-sandbox --disable-gpu --use-gl=swiftshader --enable-unsafe-swiftshader \
  --disable-background-networking --no-first-run --disable-component-update --disable-sync \
  --user-data-dir="$(mktemp -d)" --virtual-time-budget=8000 --window-size="$size" \
  --screenshot="$out" "file://$page" 2>/dev/null
echo "$out"
