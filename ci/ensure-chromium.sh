#!/usr/bin/env bash
# Make a headless Chromium available for the browser tests; idempotent, quick when it is there.
#   - a chromium (or CHROMIUM=path) already on this machine is used as it is;
#   - on a Debian host without one, as root: apt-get install chromium (Debian's package: no
#     browser download from a vendor's site, which these machines cannot reach anyway).
#   bash ci/ensure-chromium.sh
# Prints the browser's path (stdout, one line; messages go to stderr). Exits 1 with one line
# naming the problem when no Chromium can be had.
set -euo pipefail

say() { echo "ensure-chromium: $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }

found() {
  local candidate
  for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
    [ -n "$candidate" ] && command -v "$candidate" 2>/dev/null && return 0
  done
  return 1
}

if path=$(found); then
  echo "$path"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || fail "no Chromium, and this is not a Debian-like host: install Chromium or set CHROMIUM"
[ "$(id -u)" = 0 ] || fail "no Chromium, and installing Debian's chromium package needs root: apt-get install chromium"
say "installing chromium with apt-get"
bash "$(dirname "$0")/apt-install.sh" --no-install-recommends chromium \
  || fail "apt-get install chromium failed"
path=$(found) || fail "chromium was installed but is not on PATH"
echo "$path"
