#!/usr/bin/env bash
# The local Airflow stack (docker/compose.yaml): the deploy image run the way `astro dev start`
# runs it, for teams without the Astro CLI.
#   bash ci/stack.sh images    build what the stack runs: the deploy image and the metadata PostgreSQL
#   bash ci/stack.sh up        images, then start the stack and wait for the API server
#   bash ci/stack.sh down      stop and remove the containers (WIPE=1: the metadata database too)
#   bash ci/stack.sh compose   print the compose command this machine has (installs one where it can)
# Environment: STACK_PROJECT (compose project name, default blueprint), the STACK_* variables of
# docker/compose.yaml (ports, password, settings and .env files).
set -euo pipefail
cd "$(dirname "$0")/.."
project=${STACK_PROJECT:-blueprint}
postgres_image=${STACK_POSTGRES_IMAGE:-airflow-dbt-blueprint/postgres:15}
say() { echo "stack: $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }

compose_command() {
  if docker compose version >/dev/null 2>&1; then
    echo "docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    echo docker-compose
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing docker-compose with apt-get"
    bash ci/apt-install.sh docker-compose
    echo docker-compose
  else
    fail "neither \`docker compose\` nor docker-compose is installed: install Docker Compose"
  fi
}

build_images() {
  local base
  base=$(bash ci/ensure-docker.sh)
  local inputs label=blueprint.build-inputs
  inputs=$( { docker image inspect -f '{{.Id}}' "$base"; cat docker/postgres/*; } | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$postgres_image" 2>/dev/null)" != "$inputs" ]; then
    say "building $postgres_image on $base"
    docker build --network host --build-arg "BASE_IMAGE=$base" --label "$label=$inputs" -t "$postgres_image" docker/postgres \
      >.local/postgres-image-build.log 2>&1 \
      || { tail -n 20 .local/postgres-image-build.log >&2; fail "building $postgres_image failed"; }
  fi
  bash ci/build-astro-image.sh >&2
}

compose() {
  # shellcheck disable=SC2046  # the command is one or two words
  $(compose_command) -f docker/compose.yaml -p "$project" "$@"
}

wait_for_api() {
  local url="http://127.0.0.1:${STACK_AIRFLOW_PORT:-8080}/api/v2/monitor/health"
  for _ in $(seq 180); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "$url" 2>/dev/null && return 0
    sleep 1
  done
  compose ps >&2 || true
  compose logs --tail 30 airflow-init api-server >&2 || true
  fail "the Airflow API server did not answer on $url within 180 s"
}

# The Fernet key and the token secret every Airflow container shares: made once per checkout.
load_secrets() {
  local file=.local/stack/secrets.env
  if [ ! -s "$file" ]; then
    mkdir -p .local/stack && (umask 077 && python3 - >"$file" <<'PY'
import base64, os, secrets
print("STACK_FERNET_KEY=" + base64.urlsafe_b64encode(os.urandom(32)).decode())
print("STACK_JWT_SECRET=" + secrets.token_urlsafe(32))
PY
    )
  fi
  set -a
  # shellcheck disable=SC1090  # written just above
  [ -n "${STACK_FERNET_KEY:-}" ] || . "$file"
  set +a
}

mkdir -p .local
load_secrets
export STACK_HOSTNAME=${STACK_HOSTNAME:-$(hostname)}
case ${1:-} in
  images) compose_command >/dev/null && build_images ;;
  up)
    compose_command >/dev/null
    build_images
    [ -n "${STACK_ENV_FILE:-}" ] || touch .env  # the Astro CLI's .env, passed to every container
    start=$SECONDS
    compose up -d >&2
    wait_for_api
    say "Airflow is up in $((SECONDS - start)) s: http://127.0.0.1:${STACK_AIRFLOW_PORT:-8080} (stop it with \`make down\`)"
    ;;
  down)
    if [ "${WIPE:-0}" = 1 ]; then compose down --volumes; else compose down; fi
    ;;
  compose) compose_command ;;
  *) fail "usage: bash ci/stack.sh images|up|down|compose" ;;
esac
