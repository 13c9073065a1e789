#!/usr/bin/env bash
# Build the dbt runtime image and push it to the registry, tagged with the commit, then print its
# digest reference (<registry>/<repository>@sha256:...): the deployed config pins that, so the
# DAGs run exactly the image CI tested.
#   bash ci/deploy-image.sh [--dry-run] [--local-image REF]
# Settings (environment):
#   IMAGE_REGISTRY     registry host, e.g. myregistry.azurecr.io (required)
#   IMAGE_REPOSITORY   repository in it (default dbt-runtime)
#   REGISTRY_LOGIN     acr (default: `az acr login`, after azure/login), docker (REGISTRY_USERNAME
#                      and the secret REGISTRY_PASSWORD), ecr (AWS_REGION), gcloud, or none
#   ACR_NAME           the ACR's name when it is not the registry host's first label
#   GIT_COMMIT         the commit to tag (default: HEAD)
# --local-image REF: push this local image instead of building one with ci/build-image.sh.
# Writes the reference to $DEPLOY_OUT/image.txt (default .local/deploy) and, under GitHub Actions,
# the step outputs image, digest and tag. --dry-run (DRY_RUN=1): builds, tags and writes as
# usual, prints the login and push; the local image ID stands in for the registry's digest.

set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=deploy-image
# shellcheck source=ci/lib.sh
. ci/lib.sh

local_image=
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --local-image) local_image=${2:-}; shift ;;
    --local-image=*) local_image=${1#*=} ;;
    -h | --help) usage 0 ;;
    *) echo "error: unknown option $1" >&2; usage ;;
  esac
  shift
done

check_registry_login_kind
mapfile -t specs < <(registry_settings)
require_settings "${specs[@]}"
commit=$(deploy_commit)
repo=$(image_repo)
target=$repo:$commit
# Build (or reuse, when its inputs are unchanged) the image CI tests.
if [ -z "$local_image" ]; then
  note "building the dbt runtime image (ci/build-image.sh)"
  bash ci/build-image.sh >&2
  local_image="${IMAGE_NAME:-airflow-dbt-blueprint/dbt-runtime}:local"
fi
command -v docker >/dev/null 2>&1 || fail "docker is not on PATH: the image is tagged and pushed with the docker CLI"
image_id=$(docker image inspect --format '{{.Id}}' "$local_image" 2>/dev/null) \
  || fail "no local image $local_image: build it with bash ci/build-image.sh"

registry_login
docker tag "$local_image" "$target"
note "tagged $local_image ($image_id) as $target"
cloud docker push "$target"

if [ "$DRY_RUN" = 1 ]; then
  digest=$image_id
  note "dry run: the local image ID stands in for the registry digest, known only after the push"
else
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$target" \
    | sed -n "s|^$repo@||p" | head -n 1)
  [ -n "$digest" ] || digest=$(registry_digest "$repo" "$commit")
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "pushed $target, but could not read its digest from docker or the registry"
fi
ref=$repo@$digest

mkdir -p "$DEPLOY_OUT"
echo "$ref" >"$DEPLOY_OUT/image.txt"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  { echo "image=$ref"; echo "digest=$digest"; echo "tag=$target"; } >>"$GITHUB_OUTPUT"
fi
note "image for commit $commit: $ref (written to $DEPLOY_OUT/image.txt)"
echo "$ref"
