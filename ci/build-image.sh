#!/usr/bin/env bash
# Build the dbt runtime image (docker/Dockerfile) and print its size.
#   bash ci/build-image.sh     -> airflow-dbt-blueprint/dbt-runtime:<git short sha> and :local
# Works without Docker Hub or internet access inside the build (PyPI reachable from the host):
# Python packages come from a wheelhouse built here from dbt/requirements.lock.txt, and the base
# image is BASE_IMAGE, else what ci/ensure-docker.sh finds (the pinned default or a local stand-in).
# Skips the build when an image from the same inputs exists (label blueprint.build-inputs).
# Environment: BASE_IMAGE, IMAGE_NAME, DBT_PROJECT (default dbt/jaffle_shop, whose seeds are
# generated at SEED_SCALE, default 1), PARSE_DATABASE / PARSE_SCHEMA (the deployment's database and
# schema, see docker/README.md), FORCE=1 (rebuild even when up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
image=${IMAGE_NAME:-airflow-dbt-blueprint/dbt-runtime}
project=${DBT_PROJECT:-dbt/jaffle_shop}
lock=dbt/requirements.lock.txt
say() { echo "build-image: $*" >&2; }

if [ -n "${BASE_IMAGE:-}" ]; then
  bash ci/ensure-docker.sh --engine-only
  base=$BASE_IMAGE
else
  base=$(bash ci/ensure-docker.sh)
fi
docker image inspect "$base" >/dev/null 2>&1 || docker pull -q "$base" >/dev/null

# The wheelhouse must match the base's Python, C library and CPU.
wheelhouse=$(bash ci/wheelhouse.sh "$base" "$lock")

# A small build context: the image needs the project, the lock, the wheels and the entrypoint.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/dbt" "$context/docker" "$context/wheels"
cp -l "$wheelhouse"/*.whl "$context/wheels/" 2>/dev/null || cp "$wheelhouse"/*.whl "$context/wheels/"
cp docker/Dockerfile docker/entrypoint.sh "$context/docker/"
cp "$lock" "$context/dbt/"
mkdir "$context/dbt/project"
tar -C "$project" -c --exclude=./target --exclude=./logs --exclude=./dbt_packages --exclude=./.user.yml . \
  | tar -C "$context/dbt/project" -x
# Installed packages travel with the project (the build has no network for hub or git packages);
# -h turns the links of local packages into copies.
[ ! -d "$project/dbt_packages" ] || tar -C "$project" -ch dbt_packages | tar -C "$context/dbt/project" -x
if [ "$(realpath "$project")" = "$(realpath dbt/jaffle_shop)" ]; then  # generated data, never the working tree's
  rm -f "$context"/dbt/project/seeds/*.csv
  python3 -m tools.generate_data --scale "${SEED_SCALE:-1}" --out "$context/dbt/project/seeds" >/dev/null
fi

dbt_version=$(sed -n 's/^dbt-core==//p' "$lock")
dbt_postgres_version=$(sed -n 's/^dbt-postgres==//p' "$lock")
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
short=$(git rev-parse --short HEAD 2>/dev/null || echo dev)
build_args=(
  --build-arg "BASE_IMAGE=$base" --build-arg "PROJECT_NAME=$(basename "$(realpath "$project")")"
  --build-arg "DBT_VERSION=$dbt_version"
  --build-arg "DBT_POSTGRES_VERSION=$dbt_postgres_version"
  --build-arg "PARSE_DATABASE=${PARSE_DATABASE:-jaffle_shop}" --build-arg "PARSE_SCHEMA=${PARSE_SCHEMA:-}"
)
# Everything the image is made of, so an unchanged image is not rebuilt (the revision is not:
# a new commit that changes none of these files reuses the image).
inputs=$( { docker image inspect -f '{{.Id}}' "$base"; printf '%s\n' "${build_args[@]}"
            cd "$context" && find . -type f ! -name '*.whl' | LC_ALL=C sort | xargs sha256sum; } \
          | sha256sum | cut -c1-16)
inputs=$inputs-$(basename "$wheelhouse")
label=blueprint.build-inputs
if [ "${FORCE:-0}" != 1 ] && [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$image:local" 2>/dev/null)" = "$inputs" ]; then
  say "$image:local is up to date (inputs $inputs)"
else
  say "building $image:$short on $base (dbt-core $dbt_version)"
  start=$SECONDS log=.local/docker-build.log
  mkdir -p .local
  # The host network: engines started with --bridge=none (see ci/ensure-docker.sh) have no other.
  docker build --network host -f "$context/docker/Dockerfile" "${build_args[@]}" \
    --build-arg "VERSION=$(git describe --always --dirty 2>/dev/null || echo dev)" \
    --build-arg "REVISION=$revision" --build-arg "SOURCE=$(git remote get-url origin 2>/dev/null || echo unknown)" \
    --label "$label=$inputs" -t "$image:local" "$context" >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; echo "error: docker build failed (full log: $log)" >&2; exit 1; }
  say "built in $((SECONDS - start)) s"
fi
docker tag "$image:local" "$image:$short"
size=$(docker image inspect -f '{{.Size}}' "$image:local")
echo "image: $image:$short ($image:local), $(awk -v b="$size" 'BEGIN {printf "%.0f MB", b / 1e6}'), base $base, dbt-core $dbt_version"
