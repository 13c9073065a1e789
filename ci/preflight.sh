#!/usr/bin/env bash
# The checks a deploy must pass first. Runs them all, prints one line per check, and exits 1
# when any failed, each failure with its fix.
#   bash ci/preflight.sh [--target astro|mwaa|composer] [--dry-run]
# It fails when:
#   - a deploy setting or secret the target needs is missing (all missing ones in one line);
#   - the dbt manifest is missing or older than a dbt source (ci/manifest.sh refreshes it);
#   - the DAG integrity tests fail (PREFLIGHT_TESTS, default tests/dags);
#   - the dbt runtime image for this commit is not in the registry, or DBT_RUNTIME_IMAGE is
#     another image than the one pushed for this commit;
#   - the deployed settings (DEPLOY_BLUEPRINT_ENV overlay, default prod, plus the image pin) are invalid;
#   - requirements.txt lacks the provider package of a mode that overlay enables.
# Settings: DEPLOY_TARGET (default astro), PIN_RUNTIME_IMAGE (default true), IMAGE_REGISTRY,
# IMAGE_REPOSITORY, REGISTRY_LOGIN, DBT_RUNTIME_IMAGE, and the target's (see ci/deploy-<target>.sh).
# --dry-run (DRY_RUN=1): the registry look-up is printed instead of run; every other check runs.

set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=preflight
# shellcheck source=ci/lib.sh
. ci/lib.sh

target=${DEPLOY_TARGET:-astro}
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --target) target=${2:-}; shift ;;
    --target=*) target=${1#*=} ;;
    -h | --help) usage 0 ;;
    *) echo "error: unknown option $1" >&2; usage ;;
  esac
  shift
done
ensure_venvs

problems=()
ok() { printf 'preflight: ok      %s\n' "$*"; }
problem() { printf 'preflight: FAILED  %s\n' "$*"; problems+=("$*"); }

# 1. Settings and secrets, all missing ones at once.
specs=()
case $target in
  astro) specs+=("ASTRO_DEPLOYMENT_ID (Astro Deployment ID)" "ASTRO_API_TOKEN (secret: Deployment API token)") ;;
  mwaa) specs+=("MWAA_ENVIRONMENT (MWAA environment name)" "MWAA_BUCKET (the environment's S3 bucket)" "AWS_REGION (region)") ;;
  composer) specs+=("COMPOSER_ENVIRONMENT (Composer environment name)" "COMPOSER_LOCATION (its region)" "GCP_PROJECT (project ID)") ;;
  *) fail "--target must be astro, mwaa or composer (got '$target')" ;;
esac
if pin_runtime_image; then
  check_registry_login_kind
  mapfile -t registry < <(registry_settings)
  specs+=("${registry[@]}")
fi
missing=()
for spec in "${specs[@]}"; do
  name=${spec%% *}
  [ -n "${!name:-}" ] || missing+=("$spec")
done
if [ "${#missing[@]}" -eq 0 ]; then
  ok "deploy settings for $target"
else
  joined=$(printf '%s, ' "${missing[@]}")
  problem "missing deploy settings (${#missing[@]}): ${joined%, }. Set them as environment variables (in GitHub: environment variables, and secrets for secrets); see the README, section Deploys"
fi

# 2. Every registered project's manifest is fresh.
if output=$("$PY" - 2>&1 <<'EOF'
from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest
from include.blueprint.settings import load_settings

for project in load_settings().projects.values():
    try:
        require_fresh_manifest(project.project_dir, project.manifest_path)
    except ManifestNotReady as error:
        raise SystemExit(f"{error} (in CI: bash ci/manifest.sh)")
EOF
); then
  ok "dbt manifests are fresh"
else
  problem "$output"
fi

# 3. DAG integrity tests.
read -r -a tests <<<"${PREFLIGHT_TESTS:-tests/dags}"
if output=$("$PY" -m pytest "${tests[@]}" -q -p no:cacheprovider 2>&1); then
  ok "DAG integrity tests ($(tail -n 1 <<<"$output" | sed 's/^=* *//; s/ *=*$//'))"
else
  printf '%s\n' "$output" | tail -n 40 | sed 's/^/    /'
  problem "DAG integrity tests failed ($(tail -n 1 <<<"$output" | sed 's/^=* *//; s/ *=*$//')): fix them before deploying"
fi

# 4. The runtime image for this commit is in the registry, and is the one being deployed.
image=$(runtime_image_ref)
if ! pin_runtime_image; then
  ok "runtime image not pinned (PIN_RUNTIME_IMAGE=${PIN_RUNTIME_IMAGE})"
elif [ "${#missing[@]}" -gt 0 ]; then
  problem "runtime image not checked: the registry settings are missing"
else
  commit=$(deploy_commit)
  repo=$(image_repo)
  if [ -n "$image" ] && ! [[ $image =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]]; then
    problem "DBT_RUNTIME_IMAGE must be <registry>/<repository>@sha256:<64 hex> (got '$image')"
  elif [ "$DRY_RUN" = 1 ]; then
    if [ "$REGISTRY_LOGIN" = acr ]; then
      cloud az acr repository show --name "$(acr_name)" --image "$IMAGE_REPOSITORY:$commit" --query digest --output tsv
    else
      cloud docker buildx imagetools inspect "$repo:$commit" --format '{{.Manifest.Digest}}'
    fi
    ok "runtime image $repo:$commit (dry run: registry not asked)"
  else
    [ "$REGISTRY_LOGIN" = acr ] || registry_login >/dev/null
    digest=$(registry_digest "$repo" "$commit")
    if [ -z "$digest" ]; then
      problem "the dbt runtime image for commit $commit is not in the registry ($repo:$commit): run ci/deploy-image.sh (the deploy workflow's image job) first"
    elif [ -n "$image" ] && [ "$image" != "$repo@$digest" ]; then
      problem "DBT_RUNTIME_IMAGE is $image, but the image pushed for commit $commit is $repo@$digest: deploy the image built for this commit"
    else
      ok "runtime image $repo@$digest is in the registry (tag $commit)"
    fi
  fi
fi

# 5. The settings the deployment will load: its overlay plus the image pin, nothing from here.
deploy_env=${DEPLOY_BLUEPRINT_ENV-prod}
if output=$("$PY" - "$deploy_env" "${image:-}" 2>&1 <<'EOF'
import sys

from include.blueprint.settings import BlueprintConfigError, load_settings

env, image = sys.argv[1], sys.argv[2]
environ = {"BLUEPRINT_ENV": env} if env else {}
if image:
    environ["BLUEPRINT__RUNTIME__IMAGE"] = image
try:
    load_settings(environ)
except BlueprintConfigError as error:
    raise SystemExit(str(error).replace("\n", " "))
EOF
); then
  ok "deployed settings load (BLUEPRINT_ENV=${deploy_env:-<base only>}${image:+, runtime.image pinned})"
  settings_load=1
else
  problem "the deployed settings are invalid: $output"
  settings_load=0
fi

# 6. The image installs the provider of every mode the deployed overlay enables (when it loads).
if [ "$settings_load" = 0 ]; then
  :
elif output=$("$PY" -m tools.deploy_requirements --check "$deploy_env" requirements.txt 2>&1); then
  ok "requirements.txt installs the providers of the enabled modes"
else
  while IFS= read -r line; do [ -z "$line" ] || problem "$line"; done <<<"$output"
fi

if [ "${#problems[@]}" -gt 0 ]; then
  echo "preflight: ${#problems[@]} check(s) failed; nothing was deployed" >&2
  exit 1
fi
suffix=
[ "$DRY_RUN" = 1 ] && suffix=" (dry run)"
echo "preflight: all checks passed for $target$suffix"
