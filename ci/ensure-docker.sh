#!/usr/bin/env bash
# Make a Docker engine and the dbt image's base image available; idempotent, quick when both are.
#   - an engine that answers (Docker Desktop, GitHub Actions, a running dockerd) is used as it is;
#   - on a Debian host without one, as root: apt-get install docker.io, then start it (systemd when
#     it runs, else `dockerd $DOCKERD_FLAGS` in the background, log in $DOCKERD_LOG);
#   - when the default base image is neither present nor pullable (no registry), build an
#     equivalent Debian bookworm + Python 3.11 base locally with ci/build-base-image.sh.
#   bash ci/ensure-docker.sh [--engine-only]
# Prints the base image to build on (stdout, one line; messages go to stderr). Exits 1 with one
# line naming the problem when no engine can be had. Leaves dockerd running.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Dockerfile's pinned default, and the tag of the locally built equivalent.
DEFAULT_BASE_IMAGE=$(sed -n 's/^ARG BASE_IMAGE=//p' docker/Dockerfile | head -n 1)
LOCAL_BASE_IMAGE=${LOCAL_BASE_IMAGE:-airflow-dbt-blueprint/python-base:3.11-bookworm}

# No bridge network or iptables rules: works in containers without NET_ADMIN. Containers then
# need `--network host`, which is what the tests and the benchmark use.
DOCKERD_FLAGS=${DOCKERD_FLAGS:---iptables=false --bridge=none}
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/blueprint-dockerd.log}
say() { echo "ensure-docker: $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }
engine_up() { command -v docker >/dev/null 2>&1 && timeout 15 docker info >/dev/null 2>&1; }

start_engine() {
  if ! command -v dockerd >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || fail "no Docker engine, and this is not a Debian-like host: install Docker"
    say "installing docker.io with apt-get"
    bash ci/apt-install.sh docker.io
  fi
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    say "starting docker with systemctl"
    systemctl start docker
  else
    say "starting dockerd $DOCKERD_FLAGS (log: $DOCKERD_LOG)"
    # The daemon outlives its caller, so it gets the machine's environment, not the caller's: a
    # test worker's TMPDIR is removed when the worker ends, and runc writes every exec's files
    # there (a health check then fails for as long as the engine runs).
    local daemon_env=(PATH="$PATH" HOME="${HOME:-/root}") name
    for name in HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
      if [ -n "${!name:-}" ]; then daemon_env+=("$name=${!name}"); fi
    done
    # shellcheck disable=SC2086  # DOCKERD_FLAGS is a list of flags
    setsid nohup env -i "${daemon_env[@]}" dockerd $DOCKERD_FLAGS >>"$DOCKERD_LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 60); do engine_up && return 0; sleep 0.5; done
  fail "dockerd did not answer within 30 s; see $DOCKERD_LOG"
}

if engine_up; then
  say "using the running Docker engine"
elif [ "$(id -u)" = 0 ]; then
  start_engine
else
  fail "no Docker engine answers \`docker info\`, and starting one needs root: start Docker (or run as root)"
fi

[ "${1:-}" = --engine-only ] && exit 0

# The base image: the pinned default when present or pullable, else the local equivalent.
if docker image inspect "$DEFAULT_BASE_IMAGE" >/dev/null 2>&1; then
  echo "$DEFAULT_BASE_IMAGE"
elif timeout 60 docker pull -q "$DEFAULT_BASE_IMAGE" >/dev/null 2>&1; then
  say "pulled $DEFAULT_BASE_IMAGE"
  echo "$DEFAULT_BASE_IMAGE"
else
  if ! docker image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1; then
    say "cannot pull $DEFAULT_BASE_IMAGE (no registry?): building the equivalent $LOCAL_BASE_IMAGE"
    bash ci/build-base-image.sh "$LOCAL_BASE_IMAGE" >&2
  fi
  echo "$LOCAL_BASE_IMAGE"
fi
