# Shared by ci/preflight.sh and ci/deploy-*.sh (sourced, not run): options, dry runs, settings
# checks and the registry look-up. Every deploy script accepts --dry-run (or DRY_RUN=1): it does
# every local step (validation, building what it uploads, composing the exact commands) and
# prints the commands that would talk to the cloud instead of running them.
# shellcheck shell=bash

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DRY_RUN=${DRY_RUN:-0}
[ "$DRY_RUN" = true ] && DRY_RUN=1
# Where the deploy scripts leave what they built and what they pushed (image.txt, bundles).
DEPLOY_OUT=${DEPLOY_OUT:-.local/deploy}

fail() { printf 'error: %s\n' "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "${SCRIPT_NAME:-deploy}" "$*" >&2; }

# Run a command that talks to the cloud, or in a dry run print it (quoted so it can be pasted).
cloud() {
  if [ "$DRY_RUN" = 1 ]; then
    printf 'dry-run: would run:'
    printf ' %q' "$@"
    printf '\n'
  else
    note "running: $1 ${2:-} ${3:-} ..."
    "$@"
  fi
}

# require_settings "NAME (what it is)" ...: fail with one line listing every empty one.
require_settings() {
  local missing=() spec name
  for spec in "$@"; do
    name=${spec%% *}
    [ -n "${!name:-}" ] || missing+=("$spec")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    local joined
    joined=$(printf '%s, ' "${missing[@]}")
    fail "missing deploy settings (${#missing[@]}): ${joined%, }. Set them as environment variables (in GitHub: repository or environment variables, secrets for secrets); see the README, section Deploys"
  fi
}

# The commit being deployed: GIT_COMMIT, else the checkout's HEAD. Full 40-character SHA.
deploy_commit() {
  local commit=${GIT_COMMIT:-${GITHUB_SHA:-}}
  [ -n "$commit" ] || commit=$(git rev-parse HEAD 2>/dev/null) || fail "not a git checkout and GIT_COMMIT is not set"
  [[ $commit =~ ^[0-9a-f]{40}$ ]] || fail "GIT_COMMIT must be a full 40-character commit SHA (got '$commit')"
  echo "$commit"
}

# The runtime image settings shared by deploy-image.sh and preflight.sh.
IMAGE_REPOSITORY=${IMAGE_REPOSITORY:-dbt-runtime}
REGISTRY_LOGIN=${REGISTRY_LOGIN:-acr}
image_repo() { echo "${IMAGE_REGISTRY%/}/$IMAGE_REPOSITORY"; }
acr_name() { echo "${ACR_NAME:-${IMAGE_REGISTRY%%.*}}"; }

check_registry_login_kind() {
  case $REGISTRY_LOGIN in
    acr | docker | ecr | gcloud | none) ;;
    *) fail "REGISTRY_LOGIN must be one of acr, docker, ecr, gcloud, none (got '$REGISTRY_LOGIN')" ;;
  esac
}

# The settings the registry login needs, as "NAME (what it is)" specs for require_settings.
registry_settings() {
  echo "IMAGE_REGISTRY (registry host, e.g. myregistry.azurecr.io)"
  case $REGISTRY_LOGIN in
    docker)
      echo "REGISTRY_USERNAME (registry user)"
      echo "REGISTRY_PASSWORD (secret: registry password or token)"
      ;;
    ecr) echo "AWS_REGION (the ECR registry's region)" ;;
  esac
}

# Log docker in to the registry (printed instead in a dry run). No password on a command line.
registry_login() {
  case $REGISTRY_LOGIN in
    acr) cloud az acr login --name "$(acr_name)" ;;
    docker)
      if [ "$DRY_RUN" = 1 ]; then
        echo "dry-run: would run: printf %s \"\$REGISTRY_PASSWORD\" | docker login $IMAGE_REGISTRY --username $REGISTRY_USERNAME --password-stdin"
      else
        printf '%s' "$REGISTRY_PASSWORD" | docker login "$IMAGE_REGISTRY" --username "$REGISTRY_USERNAME" --password-stdin
      fi
      ;;
    ecr)
      if [ "$DRY_RUN" = 1 ]; then
        echo "dry-run: would run: aws ecr get-login-password --region $AWS_REGION | docker login --username AWS --password-stdin $IMAGE_REGISTRY"
      else
        aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$IMAGE_REGISTRY"
      fi
      ;;
    gcloud) cloud gcloud auth configure-docker "${IMAGE_REGISTRY%%/*}" --quiet ;;
    none) note "REGISTRY_LOGIN=none: using the registry credentials docker already has" ;;
  esac
}

# The digest (sha256:...) of REPO:TAG in the registry, or nothing when the registry lacks it.
# ACR through the Azure CLI (logged in by azure/login); other registries through buildx, with the
# credentials `docker login` stored.
registry_digest() {
  local repo=$1 tag=$2
  if [ "$REGISTRY_LOGIN" = acr ]; then
    az acr repository show --name "$(acr_name)" --image "${repo#*/}:$tag" --query digest --output tsv 2>/dev/null || true
  else
    docker buildx imagetools inspect "$repo:$tag" --format '{{.Manifest.Digest}}' 2>/dev/null || true
  fi
}

# The image reference to deploy: DBT_RUNTIME_IMAGE, else what ci/deploy-image.sh wrote.
runtime_image_ref() {
  if [ -n "${DBT_RUNTIME_IMAGE:-}" ]; then
    echo "$DBT_RUNTIME_IMAGE"
  elif [ -s "$DEPLOY_OUT/image.txt" ]; then
    head -n 1 "$DEPLOY_OUT/image.txt"
  fi
}

check_digest_ref() {
  [[ $1 =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]] \
    || fail "the dbt runtime image must be referenced by digest, <registry>/<repository>@sha256:<64 hex> (got '$1')"
}

# pin_runtime_image: whether the deployment pins the dbt runtime image (container modes).
pin_runtime_image() { [ "${PIN_RUNTIME_IMAGE:-true}" != false ] && [ "${PIN_RUNTIME_IMAGE:-true}" != 0 ]; }

PY=${PY:-.venvs/airflow/bin/python}
ensure_venvs() { [ -x "$PY" ] || bash scripts/bootstrap.sh >&2; }

# The registered dbt projects' directories, one per line: repository-relative (absolute when outside it).
dbt_project_dirs() {
  "$PY" - <<'EOF'
from include.blueprint.settings import REPO_ROOT, load_settings

for project in load_settings().projects.values():
    path = project.project_dir
    print(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)
EOF
}

# Where a deployed tree keeps the dbt project: its repository-relative path, or dbt/<name>.
deployed_project_path() { case $1 in /*) echo "dbt/$(basename "$1")" ;; *) echo "$1" ;; esac; }

# stage_dbt_project SRC DEST: the dbt project as deployed: its files (no target/ or logs/), its
# installed packages (dbt_packages/, from `make manifest`: hub and git packages need the network,
# which workers may not have; local packages' links resolved to copies), the generated seeds, and
# target/manifest.json, which must be fresh and is written last so it is the newest file of the copy.
stage_dbt_project() {
  local src=$1 dest=$2
  "$PY" - "$src" <<'EOF' || exit 1
import sys
from pathlib import Path

from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest

project = Path(sys.argv[1]).resolve()
try:
    require_fresh_manifest(project, project / "target" / "manifest.json")
except ManifestNotReady as error:
    sys.exit(f"error: {error}")
EOF
  mkdir -p "$dest"
  tar -C "$src" -c --exclude=./target --exclude=./logs --exclude=./dbt_packages --exclude=./.user.yml . \
    | tar -C "$dest" -x
  [ ! -d "$src/dbt_packages" ] || tar -C "$src" -ch dbt_packages | tar -C "$dest" -x
  mkdir -p "$dest/target"
  cp "$src/target/manifest.json" "$dest/target/manifest.json"
  # The source digest lets the DAGs accept the manifest wherever the sync changes file times.
  [ ! -f "$src/target/sources.sha256" ] || cp "$src/target/sources.sha256" "$dest/target/sources.sha256"
  touch "$dest/target/manifest.json"
}

# stage_airflow_bundle DEST: what MWAA and Cloud Composer run from their dags folder: the DAG
# files, the shared package include/ and dbt/ (project, manifest and dbt's lock). That folder is
# on sys.path and is the repository root the settings resolve relative paths against.
stage_airflow_bundle() {
  local dest=$1 projects project
  projects=$(dbt_project_dirs) || fail "cannot read the dbt projects (projects.*.project_dir) from the settings"
  rm -rf "$dest" && mkdir -p "$dest"
  cp -R dags/. "$dest/"
  find "$dest" -name __pycache__ -type d -prune -exec rm -rf {} +
  tar -c --exclude=__pycache__ include | tar -C "$dest" -x
  mkdir -p "$dest/dbt"
  cp dbt/requirements.lock.txt "$dest/dbt/requirements.lock.txt"
  while read -r project; do
    stage_dbt_project "$project" "$dest/$(deployed_project_path "$project")"
  done <<<"$projects"
  # Keep the DAG processor out of the package and the dbt project.
  printf '%s\n' include/ dbt/ >>"$dest/.airflowignore"
}

# write_overlay DEST_DIR ENV IMAGE_REF: the deployed copy of config/<ENV>.yaml with runtime.image
# set to the digest, so the DAG files and the image they run are deployed together.
write_overlay() {
  local dest=$1 env=$2 image=$3
  "$PY" - "$dest" "$env" "$image" <<'EOF'
import sys
from pathlib import Path

import yaml

from include.blueprint.settings import CONFIG_DIR

dest, env, image = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
source = CONFIG_DIR / f"{env}.yaml"
if not source.exists():
    sys.exit(f"error: BLUEPRINT_ENV={env} has no overlay {source}")
overlay = yaml.safe_load(source.read_text()) or {}
overlay.setdefault("runtime", {})["image"] = image
header = f"# Generated by the deploy from include/blueprint/config/{env}.yaml: runtime.image pinned by digest.\n"
(dest / f"{env}.yaml").write_text(header + yaml.safe_dump(overlay, sort_keys=False))
EOF
}

# The calling script's header comment, as its usage.
# parse_bucket_deploy_options "$@": --dry-run and --dags for the bucket-based deploys (MWAA,
# Composer); sets `kind` to full or dags.
# shellcheck disable=SC2034  # `kind` is read by the calling script
parse_bucket_deploy_options() {
  kind=full
  while [ $# -gt 0 ]; do
    case $1 in
      --dry-run) DRY_RUN=1 ;;
      --dags) kind=dags ;;
      -h | --help) usage 0 ;;
      *) echo "error: unknown option $1" >&2; usage ;;
    esac
    shift
  done
}

# pinned_image_for_overlay: the runtime image reference to write into the deployed overlay
# (empty with PIN_RUNTIME_IMAGE=false), checked to be a digest and to have an overlay to go in.
pinned_image_for_overlay() {
  pin_runtime_image || return 0
  local image
  image=$(runtime_image_ref)
  [ -n "$image" ] || fail "no dbt runtime image to pin: set DBT_RUNTIME_IMAGE=<registry>/<repository>@sha256:..., run ci/deploy-image.sh first, or set PIN_RUNTIME_IMAGE=false when the environment runs no container mode"
  check_digest_ref "$image"
  [ -n "${DEPLOY_BLUEPRINT_ENV-prod}" ] || fail "pinning the runtime image needs an overlay to write it to: set DEPLOY_BLUEPRINT_ENV"
  echo "$image"
}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2; exit "${1:-2}"; }
