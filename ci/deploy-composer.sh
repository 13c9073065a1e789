#!/usr/bin/env bash
# Deploy to Google Cloud Composer (a documented variant of the Astro deploy): Composer runs what
# its bucket's dags/ folder holds, so this builds that folder and syncs it.
#   bash ci/deploy-composer.sh [--dags] [--dry-run]
#   (default)  the DAG folder, then the environment: PyPI packages from requirements.txt and the
#              variable BLUEPRINT_ENV (each `gcloud composer environments update` takes minutes)
#   --dags     the DAG folder only (no environment update)
# The folder gets the DAG files, include/ and dbt/ (project, fresh manifest, dbt's lock), like
# MWAA's; the runtime image is pinned by digest in the deployed copy of
# config/<DEPLOY_BLUEPRINT_ENV>.yaml, so DAGs, manifest and image change together in one sync.
# Settings (environment):
#   COMPOSER_ENVIRONMENT, COMPOSER_LOCATION (region), GCP_PROJECT (required)
#   COMPOSER_DAGS_PREFIX  gs://<bucket>/dags (default: read from the environment with gcloud)
#   DEPLOY_BLUEPRINT_ENV  the settings overlay the environment loads (default prod)
#   DBT_RUNTIME_IMAGE     as for ci/deploy-astro.sh (PIN_RUNTIME_IMAGE=false for worker modes only)
# Google credentials come from the caller (the deploy workflow: google-github-actions/auth with
# Workload Identity Federation).
# --dry-run (DRY_RUN=1): builds everything under $DEPLOY_OUT/composer and prints the gcloud commands.

set -euo pipefail
cd "$(dirname "$0")/.."
SCRIPT_NAME=deploy-composer
# shellcheck source=ci/lib.sh
. ci/lib.sh

parse_bucket_deploy_options "$@"

require_settings "COMPOSER_ENVIRONMENT (Composer environment name)" "COMPOSER_LOCATION (its region)" "GCP_PROJECT (project ID)"
ensure_venvs
commit=$(deploy_commit)
image=$(pinned_image_for_overlay)
deploy_env=${DEPLOY_BLUEPRINT_ENV-prod}
[ "$DRY_RUN" = 1 ] || command -v gcloud >/dev/null 2>&1 || fail "the gcloud CLI is not on PATH"

out=$DEPLOY_OUT/composer
stage_airflow_bundle "$out/dags"
[ -z "$image" ] || write_overlay "$out/dags/include/blueprint/config" "$deploy_env" "$image"
cp requirements.txt "$out/requirements.txt"
note "built $out: dags/ ($(find "$out/dags" -type f | wc -l | tr -d ' ') files), requirements.txt"

where=(--location "$COMPOSER_LOCATION" --project "$GCP_PROJECT")
prefix=${COMPOSER_DAGS_PREFIX:-}
if [ -z "$prefix" ]; then
  cloud gcloud composer environments describe "$COMPOSER_ENVIRONMENT" "${where[@]}" --format 'value(config.dagGcsPrefix)'
  if [ "$DRY_RUN" = 1 ]; then
    prefix="<dagGcsPrefix>"
  else
    prefix=$(gcloud composer environments describe "$COMPOSER_ENVIRONMENT" "${where[@]}" --format 'value(config.dagGcsPrefix)')
  fi
fi
[ "$DRY_RUN" = 1 ] || [[ $prefix == gs://* ]] || fail "the environment's DAG folder is not a gs:// prefix (got '$prefix'): set COMPOSER_DAGS_PREFIX"
cloud gcloud storage rsync "$out/dags" "$prefix" --recursive --delete-unmatched-destination-objects
if [ "$kind" = full ]; then
  cloud gcloud composer environments update "$COMPOSER_ENVIRONMENT" "${where[@]}" \
    --update-pypi-packages-from-file "$out/requirements.txt"
  [ -z "$deploy_env" ] || cloud gcloud composer environments update "$COMPOSER_ENVIRONMENT" "${where[@]}" \
    --update-env-variables "BLUEPRINT_ENV=$deploy_env"
fi
done_word=deployed
[ "$DRY_RUN" = 1 ] && done_word="dry run complete:"
note "$done_word $kind deploy of $commit to Cloud Composer environment $COMPOSER_ENVIRONMENT${image:+ (runtime image $image)}"
