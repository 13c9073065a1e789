#!/usr/bin/env bash
# Build the deploy image: the root Dockerfile, as `astro dev start` and `astro deploy` build it.
#   bash ci/build-astro-image.sh     -> airflow-dbt-blueprint/astro:<git short sha> and :local
# The runtime it builds on: RUNTIME_IMAGE when set, else the Dockerfile's Astro Runtime when it
# is present or can be pulled, else the stand-in docker/astro-runtime (built here on the Debian +
# Python base of ci/ensure-docker.sh, from requirements/dev.lock.txt). On the stand-in, pip in the
# build gets its wheels from a server this script runs on 127.0.0.1 for the build's duration
# (wheels downloaded on the host from the locks; a build here cannot reach PyPI).
# Environment: RUNTIME_IMAGE, IMAGE_NAME, FORCE=1 (rebuild the stand-in even when up to date),
# NO_CACHE=1 (both builds from scratch: what the benchmark's cold build measures).
# Prints one line: the image, its size, and what it was built on; writes "<image> <image ID>" to
# $DEPLOY_OUT/astro-image.txt (default .local/deploy), the image an Astro image deploy ships.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE_NAME:-airflow-dbt-blueprint/astro}
standin=airflow-dbt-blueprint/astro-runtime:3.3-standin
uv=.venvs/tools/bin/uv
say() { echo "build-astro-image: $*" >&2; }
fail() { echo "error: $*" >&2; exit 1; }
mkdir -p .local

python_base=$(bash ci/ensure-docker.sh)
runtime=${RUNTIME_IMAGE:-}
if [ -z "$runtime" ]; then
  runtime=$(sed -n 's/^ARG RUNTIME_IMAGE=//p' Dockerfile | head -n 1)
  if ! docker image inspect "$runtime" >/dev/null 2>&1 && ! timeout 60 docker pull -q "$runtime" >/dev/null 2>&1; then
    say "cannot pull $runtime (no access to Astronomer's registry?): building on the stand-in $standin"
    runtime=$standin
  fi
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Pinned sets, compiled against the lock for the base's Python: what the stand-in installs, and
# every version requirements.txt may resolve to on top of it (the ONBUILD step's constraints).
compile_pins() {
  local python_version
  python_version=$(docker run --rm --network none --entrypoint python3 "$python_base" -c \
    'import sys; print("%d.%d" % sys.version_info[:2])')
  [ -x "$uv" ] || bash scripts/bootstrap.sh >/dev/null
  printf '%s\n' "apache-airflow==$(sed -n 's/^apache-airflow==//p' requirements/dev.lock.txt)" \
    apache-airflow-providers-standard apache-airflow-providers-postgres >"$work/airflow-runtime.in"
  cat "$work/airflow-runtime.in" requirements.txt >"$work/constraints.in"
  local name
  for name in airflow-runtime constraints; do
    "$uv" pip compile --quiet --no-header --no-annotate --python-version "$python_version" \
      --python-platform "$(uname -m)-unknown-linux-gnu" -c requirements/dev.lock.txt \
      "$work/$name.in" -o "$work/$name.txt"
  done
}

# A throwaway wheel server on loopback, stopped on exit; sets `index` to its address (not a
# command substitution: the server's PID must reach this shell's cleanup). The address is a build argument, and
# build arguments are part of Docker's cache key: the port is derived from the wheelhouse so that
# an unchanged project is a cache hit, and a random one is taken only when that port is busy.
serve_wheels() {
  local wheelhouse=$1 port_file=$work/port
  python3 - "$wheelhouse" >"$port_file" 2>/dev/null <<'PY' &
import functools, hashlib, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
handler.log_message = lambda *args: None
preferred = 20000 + int(hashlib.sha256(sys.argv[1].encode()).hexdigest(), 16) % 20000
try:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", preferred), handler)
except OSError:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(server.server_address[1], flush=True)
server.serve_forever()
PY
  server_pid=$!
  for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
  [ -s "$port_file" ] || fail "the wheel server did not start"
  index="http://127.0.0.1:$(cat "$port_file")/"
}

build_args=()
[ "${NO_CACHE:-0}" != 1 ] || { build_args=(--no-cache); FORCE=1; }
if [ "$runtime" = "$standin" ]; then
  compile_pins
  wheelhouse=$(bash ci/wheelhouse.sh "$python_base" "$work/constraints.txt" dbt/requirements.lock.txt)
  serve_wheels "$wheelhouse"
  say "wheels served at $index"
  build_args+=(--build-arg "PIP_FIND_LINKS=$index" --build-arg PIP_NO_INDEX=1)
  mkdir "$work/standin"
  cp docker/astro-runtime/Dockerfile docker/astro-runtime/entrypoint.sh \
    "$work/airflow-runtime.txt" "$work/constraints.txt" "$work/standin/"
  inputs=$( { docker image inspect -f '{{.Id}}' "$python_base"
              cd "$work/standin" && sha256sum ./* | LC_ALL=C sort; } | sha256sum | cut -c1-16)
  label=blueprint.build-inputs
  if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$standin" 2>/dev/null)" = "$inputs" ]; then
    say "$standin is up to date (inputs $inputs)"
  else
    say "building the Astro Runtime stand-in $standin on $python_base"
    start=$SECONDS
    docker build --network host --build-arg "BASE_IMAGE=$python_base" "${build_args[@]}" \
      --label "$label=$inputs" -t "$standin" "$work/standin" >.local/astro-runtime-build.log 2>&1 \
      || { tail -n 30 .local/astro-runtime-build.log >&2; fail "the stand-in build failed (log: .local/astro-runtime-build.log)"; }
    say "stand-in built in $((SECONDS - start)) s"
  fi
fi

# The project image: the root Dockerfile, unchanged, with the repository as its context (what
# .dockerignore leaves). Docker's layer cache makes an unchanged project a no-op.
short=$(git rev-parse --short HEAD 2>/dev/null || echo dev)
say "building $image:$short on $runtime"
start=$SECONDS
docker build --network host --build-arg "RUNTIME_IMAGE=$runtime" "${build_args[@]}" \
  --label "org.opencontainers.image.revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$image:local" . >.local/astro-build.log 2>&1 \
  || { tail -n 40 .local/astro-build.log >&2; fail "docker build of the Dockerfile failed (log: .local/astro-build.log)"; }
say "built in $((SECONDS - start)) s"
docker tag "$image:local" "$image:$short"
# What an image deploy ships: ci/deploy-astro.sh checks that this exact image (by ID) is deployed.
out=${DEPLOY_OUT:-.local/deploy}
mkdir -p "$out"
echo "$image:$short $(docker image inspect -f '{{.Id}}' "$image:local")" >"$out/astro-image.txt"
size=$(docker image inspect -f '{{.Size}}' "$image:local")
echo "image: $image:$short ($image:local), $(awk -v b="$size" 'BEGIN {printf "%.0f MB", b / 1e6}'), runtime $runtime"
