#!/usr/bin/env bash
# Deploy to an Astro Deployment: an image deploy (`astro deploy`: the project image and the DAGs)
# or a DAG-only deploy (`astro deploy --dags`), each with the dbt project and its fresh manifest.
#   bash ci/deploy-astro.sh [--image | --dags | --auto] [--dry-run]
#   --image  project image deploy: Dockerfile, requirements, include/ and the DAGs (the default)
#   --dags   DAG-only deploy: dags/ only, no restart; enough when only dags/ or the dbt project changed
#   --auto   --dags when every file changed since DEPLOY_BASE_SHA is under dags/ or the dbt
#            project, else --image (also when DEPLOY_BASE_SHA is unset or unknown)
# Where the manifest lives: a DAG-only deploy uploads dags/ only, so the image's copy of the dbt
# project and manifest would go stale. Every deploy therefore also ships the dbt project with its
# fresh target/manifest.json as an Astro dbt bundle (`astro dbt deploy`), mounted at
# /usr/local/airflow/<projects.<name>.project_dir>: the path the settings already read, over the image's copy.
# An image deploy ships the deploy image CI built and tested (`astro deploy --image-name`), not one
# the Astro CLI would build anew: the one ci/build-astro-image.sh recorded in
# $DEPLOY_OUT/astro-image.txt, checked by image ID (ASTRO_BUILD_ON_DEPLOY=true lets astro deploy
# build the Dockerfile itself instead, untested).
# The runtime image is pinned by digest as the Deployment variable BLUEPRINT__RUNTIME__IMAGE,
# before the bundles, so new tasks never run a new manifest on an old image.
# Settings (environment):
#   ASTRO_DEPLOYMENT_ID   the Deployment's ID (required)
#   ASTRO_API_TOKEN       secret: a Deployment API token (required; read by the astro CLI)
#   DBT_RUNTIME_IMAGE     <registry>/<repository>@sha256:... (default: what ci/deploy-image.sh
#                         wrote to $DEPLOY_OUT/image.txt); PIN_RUNTIME_IMAGE=false for worker modes only
#   DEPLOY_BASE_SHA       for --auto (the deploy workflow passes the previous commit of main)
#   ASTRO_DBT_MOUNT_ROOT  where the dbt bundles are mounted: <root>/<project_dir> each (default /usr/local/airflow)
# --dry-run (DRY_RUN=1): validates, checks the manifest, builds the dbt bundle, and prints the
# astro commands instead of running them.

set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=deploy-astro
# shellcheck source=ci/lib.sh
. ci/lib.sh

kind=image
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --image) kind=image ;;
    --dags) kind=dags ;;
    --auto) kind=auto ;;
    --kind) kind=${2:-}; shift ;;
    --kind=*) kind=${1#*=} ;;
    -h | --help) usage 0 ;;
    *) echo "error: unknown option $1" >&2; usage ;;
  esac
  shift
done
case $kind in image | dags | auto) ;; *) fail "the deploy kind must be image, dags or auto (got '$kind')" ;; esac

require_settings "ASTRO_DEPLOYMENT_ID (Astro Deployment ID)" "ASTRO_API_TOKEN (secret: Deployment API token)"
ensure_venvs
commit=$(deploy_commit)
projects=$(dbt_project_dirs) || fail "cannot read the dbt projects (projects.*.project_dir) from the settings"
project_paths=$(while read -r project; do deployed_project_path "$project"; done <<<"$projects")

if [ "$kind" = auto ]; then
  base=${DEPLOY_BASE_SHA:-}
  if [ -z "$base" ] || [[ $base =~ ^0+$ ]] || ! git cat-file -e "$base^{commit}" 2>/dev/null; then
    kind=image
    note "--auto: no known previous deploy (DEPLOY_BASE_SHA='${base}'): image deploy"
  else
    others=$(git diff --name-only "$base" "$commit" | grep -vE "^(dags/|$(paste -sd'|' <<<"$project_paths")/)" || true)
    if [ -z "$others" ]; then
      kind=dags
      note "--auto: only dags/ and the dbt projects changed since ${base:0:12}: DAG-only deploy"
    else
      kind=image
      note "--auto: files outside dags/ and the dbt projects changed since ${base:0:12} ($(head -n 3 <<<"$others" | paste -sd, -)...): image deploy"
    fi
  fi
fi

image=
if pin_runtime_image; then
  image=$(runtime_image_ref)
  [ -n "$image" ] || fail "no dbt runtime image to pin: set DBT_RUNTIME_IMAGE=<registry>/<repository>@sha256:..., run ci/deploy-image.sh first, or set PIN_RUNTIME_IMAGE=false when the deployment runs no container mode"
  check_digest_ref "$image"
fi
# The tested deploy image, unchanged since its tests (same image ID).
deploy_image=()
if [ "$kind" = image ] && [ "${ASTRO_BUILD_ON_DEPLOY:-false}" != true ]; then
  record=$DEPLOY_OUT/astro-image.txt
  [ -s "$record" ] || fail "no tested deploy image in $record: build and test it first (bash ci/pipeline.sh astro-image stack), or set ASTRO_BUILD_ON_DEPLOY=true to let astro deploy build the Dockerfile untested"
  read -r tested_ref tested_id <"$record"
  current_id=$(docker image inspect --format '{{.Id}}' "$tested_ref" 2>/dev/null) \
    || fail "the tested deploy image $tested_ref is not on this machine: deploy from the job that built and tested it"
  [ "$current_id" = "$tested_id" ] \
    || fail "$tested_ref is $current_id, not the image tested ($tested_id): rebuild and test it (bash ci/pipeline.sh astro-image stack)"
  deploy_image=(--image-name "$tested_ref")
  note "deploy image: $tested_ref ($tested_id), as tested"
fi
[ "$DRY_RUN" = 1 ] || command -v astro >/dev/null 2>&1 \
  || fail "the astro CLI is not on PATH: install it (https://www.astronomer.io/docs/astro/cli/install-cli), as the deploy workflow does"

# The dbt bundles, one per project, staged outside the Astro project (astro dbt deploy refuses
# paths inside one).
staging=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/astro-dbt-bundle.XXXXXX")
trap 'rm -rf "$staging"' EXIT
bundles=()  # every bundle is staged (and its manifest checked) before anything is deployed
while read -r project; do
  bundle=$staging/$(basename "$project")
  stage_dbt_project "$project" "$bundle"
  files=$(find "$bundle" -type f | wc -l | tr -d ' ')
  manifest_sha=$(sha256sum "$bundle/target/manifest.json" | cut -c1-16)
  bundles+=("$bundle=${ASTRO_DBT_MOUNT_ROOT:-/usr/local/airflow}/$(deployed_project_path "$project")")
  note "dbt bundle: $bundle ($files files, manifest sha256 $manifest_sha) -> ${bundles[-1]#*=}"
done <<<"$projects"

description="CI deploy of $commit ($kind)"
deployment=$ASTRO_DEPLOYMENT_ID
if [ -n "$image" ]; then
  cloud astro deployment variable update --deployment-id "$deployment" "BLUEPRINT__RUNTIME__IMAGE=$image"
fi
for bundle in "${bundles[@]}"; do
  cloud astro dbt deploy "$deployment" --project-path "${bundle%%=*}" --mount-path "${bundle#*=}" --description "$description"
done
if [ "$kind" = dags ]; then
  cloud astro deploy "$deployment" --dags --description "$description"
else
  cloud astro deploy "$deployment" "${deploy_image[@]}" --description "$description"
fi
done_word=deployed
[ "$DRY_RUN" = 1 ] && done_word="dry run complete:"
note "$done_word $kind deploy of $commit to Astro Deployment $deployment${image:+ (runtime image $image)}"
