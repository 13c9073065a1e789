#!/usr/bin/env bash
# Make a Redis server binary available for the Celery tests and benchmark; idempotent, quick when
# it is there. The tests start their own throwaway server from it (tools/redis_server.py), on a
# free loopback port, and stop it; this script starts nothing.
#   - a redis-server (or REDIS_SERVER=path) already on this machine is used as it is;
#   - on a Debian host without one, as root: apt-get install redis-server (Debian's package),
#     with its service kept from starting (nothing should listen on 6379 behind the tests' back).
#   - on a laptop: `brew install redis` (macOS), `apt-get install redis-server` (Debian/Ubuntu),
#     `dnf install redis` (Fedora); any Redis 6 or later works.
#   bash ci/ensure-redis.sh
# Prints the server's path (stdout, one line; messages go to stderr). Exits 1 with one line naming
# the problem when no Redis can be had.
set -euo pipefail

say() { echo "ensure-redis: $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }
laptop="install Redis (macOS: brew install redis; Debian/Ubuntu: apt-get install redis-server) or set REDIS_SERVER"

found() {
  local candidate
  for candidate in "${REDIS_SERVER:-}" redis-server /usr/bin/redis-server; do
    [ -n "$candidate" ] && command -v "$candidate" 2>/dev/null && return 0
  done
  return 1
}

if path=$(found); then
  echo "$path"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || fail "no redis-server, and this is not a Debian-like host: $laptop"
[ "$(id -u)" = 0 ] || fail "no redis-server, and installing Debian's package needs root: $laptop"

# Debian's package starts its service on install where it can; a policy-rc.d that refuses (the
# standard Debian mechanism, also what container images use) keeps it from doing so.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
say "installing redis-server with apt-get"
bash "$(dirname "$0")/apt-install.sh" --no-install-recommends redis-server \
  || fail "apt-get install redis-server failed"
path=$(found) || fail "redis-server was installed but is not on PATH"
echo "$path"
