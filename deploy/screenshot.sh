#!/usr/bin/env bash
# Writes a screenshot of the public transparency page with headless Chromium.
#   deploy/screenshot.sh [URL] [OUT.png] [LANG] [WIDTHxHEIGHT]
# URL defaults to the local stack's partner listener, http://127.0.0.1:8080/transparency;
# OUT to transparency.png; LANG (en, id, ...) is sent as ?lang=LANG (the page's visible switch);
# the window defaults to a phone's 412x2400 (use e.g. 1280x2400 for a desktop). The page is
# taken as tall as the window: give a larger height to see more of it.
# Needs chromium (installed here when missing, as deploy/test.sh does).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/deploy/lib/common.sh"

url="${1:-http://127.0.0.1:8080/transparency}"
out="${2:-transparency.png}"
lang="${3:-}"
size="${4:-412x2400}"
if ! [[ "$size" =~ ^([0-9]{2,5})x([0-9]{2,5})$ ]]; then
  echo "error: window size '$size' is not WIDTHxHEIGHT, e.g. 412x2400" >&2
  exit 2
fi
if [ -n "$lang" ]; then
  if ! [[ "$lang" =~ ^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$ ]]; then
    echo "error: language '$lang' is not a language tag such as en or id" >&2
    exit 2
  fi
  case "$url" in *\?*) url="$url&lang=$lang" ;; *) url="$url?lang=$lang" ;; esac
fi
command -v chromium >/dev/null || ensure_packages chromium
# An absolute path: chromium writes the file relative to its own working directory otherwise.
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
# --no-sandbox: root (CI, containers) cannot use chromium's sandbox. The page has no script, so
# what the browser lays out is what a visitor sees.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$profile" \
  --lang="${lang:-en}" --window-size="${size/x/,}" --screenshot="$out" "$url" 2>"$profile/chromium.log" || {
  cat "$profile/chromium.log" >&2
  echo "error: chromium could not take the screenshot of $url" >&2
  exit 1
}
[ -s "$out" ] || { cat "$profile/chromium.log" >&2; echo "error: no screenshot written to $out" >&2; exit 1; }
echo "$out: $url at $size"
