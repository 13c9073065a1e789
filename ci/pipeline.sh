#!/usr/bin/env bash
# The CI pipeline, in order; `make ci` runs all of it, and the GitHub workflow runs one stage per
# step (bash ci/pipeline.sh STAGE). Stops at the first failing stage and prints each stage's time.
#   bash ci/pipeline.sh [STAGE...]
# Stages:
#   lint            every linter, check-only (ci/lint.sh)
#   locks           the locks match their inputs (scripts/lock.sh --check)
#   manifest        dbt parse with no credentials; the manifest is kept as an artifact (ci/manifest.sh)
#   dags            DAG integrity tests (tests/dags)
#   tests           unit and integration tests (tests/unit, tests/integration; real PostgreSQL);
#                   TEST_SHARD=K/N runs the K-th of N shards of equal time (tests/schedule.py)
#   image           build the dbt runtime image (ci/build-image.sh)
#   container       smoke tests of that image (tests/container, but the stack's)
#   astro-image     build the deploy image: the root Dockerfile on Astro Runtime or its stand-in
#                   (ci/build-astro-image.sh)
#   stack           that image run as `astro dev start` runs it (tests/container/test_astro_stack.py)
#   deploy-dry-run  preflight and every deploy script in dry-run mode, on the images just built
# Artifacts (manifest.json, junit/*.xml, deploy dry-run output) go to CI_ARTIFACTS_DIR (.local/ci).
set -euo pipefail
cd "$(dirname "$0")/.."

STAGES=(lint locks manifest dags tests image container astro-image stack deploy-dry-run)
export CI_ARTIFACTS_DIR=${CI_ARTIFACTS_DIR:-.local/ci}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py=.venvs/airflow/bin/python
junit=$CI_ARTIFACTS_DIR/junit

pytest_suite() {
  local name=$1
  shift
  mkdir -p "$junit" || return 1
  "$py" -m pytest "$@" --junitxml="$junit/$name.xml" -o junit_suite_name="$name"
}

# The example settings the dry runs use: every required setting set, no secret real.
deploy_dry_run() {
  local out=$CI_ARTIFACTS_DIR/deploy
  rm -rf "$out" && mkdir -p "$out" || return 1
  export DRY_RUN=1 DEPLOY_OUT=$out
  export IMAGE_REGISTRY=${IMAGE_REGISTRY:-blueprintexample.azurecr.io}
  export ASTRO_DEPLOYMENT_ID=${ASTRO_DEPLOYMENT_ID:-clexampledeployment0000000} ASTRO_API_TOKEN=${ASTRO_API_TOKEN:-dry-run}
  export MWAA_ENVIRONMENT=${MWAA_ENVIRONMENT:-blueprint} MWAA_BUCKET=${MWAA_BUCKET:-blueprint-mwaa-example}
  export AWS_REGION=${AWS_REGION:-eu-west-1}
  export COMPOSER_ENVIRONMENT=${COMPOSER_ENVIRONMENT:-blueprint} COMPOSER_LOCATION=${COMPOSER_LOCATION:-europe-west1}
  export GCP_PROJECT=${GCP_PROJECT:-blueprint-example}
  # (set -e does not apply inside a function run as an `if` condition: every step says || return.)
  bash ci/deploy-image.sh | tee "$out/deploy-image.log" || return 1
  bash ci/preflight.sh --target astro | tee "$out/preflight.log" || return 1
  bash ci/deploy-astro.sh --image | tee "$out/deploy-astro-image.log" || return 1
  bash ci/deploy-astro.sh --dags | tee "$out/deploy-astro-dags.log" || return 1
  bash ci/deploy-mwaa.sh | tee "$out/deploy-mwaa.log" || return 1
  bash ci/deploy-composer.sh | tee "$out/deploy-composer.log"
}

run_stage() {
  case $1 in
    lint) bash ci/lint.sh ;;
    locks) bash scripts/lock.sh --check ;;
    manifest) bash ci/manifest.sh ;;
    dags) pytest_suite dags tests/dags ;;
    tests) pytest_suite tests tests/unit tests/integration -n "${TEST_WORKERS:-2}" ${TEST_SHARD:+--shard "$TEST_SHARD"} ;;
    image) bash ci/build-image.sh ;;
    container) pytest_suite container tests/container --ignore=tests/container/test_astro_stack.py ;;
    astro-image) bash ci/build-astro-image.sh ;;
    stack) pytest_suite stack tests/container/test_astro_stack.py ;;
    deploy-dry-run) deploy_dry_run ;;
    *) echo "error: unknown stage '$1'; stages: ${STAGES[*]}" >&2; return 2 ;;
  esac
}

[ $# -gt 0 ] || set -- "${STAGES[@]}"
for stage in "$@"; do
  [[ " ${STAGES[*]} " == *" $stage "* ]] || { echo "error: unknown stage '$stage'; stages: ${STAGES[*]}" >&2; exit 2; }
done
[ -x "$py" ] || bash scripts/bootstrap.sh

timings=()
finish() {
  local status=$?
  if [ "${#timings[@]}" -gt 0 ]; then
    echo "pipeline: stage times"
    printf '  %s\n' "${timings[@]}"
  fi
  exit "$status"
}
trap finish EXIT

for stage in "$@"; do
  echo "pipeline: == $stage =="
  start=$SECONDS
  if run_stage "$stage"; then
    timings+=("$(printf '%-15s %4d s  ok' "$stage" $((SECONDS - start)))")
  else
    timings+=("$(printf '%-15s %4d s  FAILED' "$stage" $((SECONDS - start)))")
    echo "pipeline: stage '$stage' failed; rerun it alone with: bash ci/pipeline.sh $stage" >&2
    exit 1
  fi
done
echo "pipeline: ${#timings[@]} stage(s) passed; artifacts in $CI_ARTIFACTS_DIR"
