# Every target runs from a fresh clone: it builds what it needs first (venvs, data, manifest).
.DEFAULT_GOAL := help
SHELL := /bin/bash
AIRFLOW_PY := .venvs/airflow/bin/python
export PYTHONPATH := $(CURDIR)
SCALE ?= 1
# `make test`'s pytest-xdist workers (0: one process). The container tests share one worker.
TEST_WORKERS ?= 2

.PHONY: help venvs data manifest adopt run ui up down test test-fast lint ci preflight deploy-dry-run lock lock-check bench bench-scheduler bench-celery bench-aci image astro-image bench-image bench-stack clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-11s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venvs: ## Create .venvs/airflow and .venvs/dbt from the locks (reused while the locks are unchanged)
	@bash scripts/bootstrap.sh

data: venvs ## Generate jaffle_shop's raw data as dbt seeds (SCALE=1 small default; SCALE=100 is 100x)
	@$(AIRFLOW_PY) -m tools.generate_data --scale $(SCALE) --out dbt/jaffle_shop/seeds

manifest: venvs ## dbt deps + dbt parse + offline dbt docs of every registered project -> dbt/<name>/target/ (no database)
	@$(AIRFLOW_PY) -m tools.manifest

adopt: venvs ## Bring your dbt project in: PROJECT=path/to/dbt_project [NAME=name] -> dbt/<name>, registered, parsed
	@$(AIRFLOW_PY) -m tools.adopt $(PROJECT) $(if $(NAME),--name $(NAME))

run: venvs ## The main job: each project's local DAG (or DAGS=a,b) through Airflow + Cosmos on an embedded PostgreSQL
	@$(AIRFLOW_PY) -m tools.main_job --scale $(SCALE) $(if $(DAGS),--dags $(DAGS))

ui: venvs ## Browse the DAGs in the Airflow UI (airflow standalone) on http://127.0.0.1:8080 (UI_HOST= to open it)
	@$(AIRFLOW_PY) -m tools.ui

up: venvs ## The deploy image in a local Airflow stack, as `astro dev start` runs it (docker/compose.yaml) on http://127.0.0.1:8080
	@bash ci/stack.sh up

down: ## Stop the local Airflow stack (WIPE=1 also deletes its metadata database)
	@bash ci/stack.sh down

test: venvs ## All tests: locks, DAG integrity, unit, dbt and end-to-end (starts its own PostgreSQL)
	@bash scripts/lock.sh --check
	@$(AIRFLOW_PY) -m tools.manifest
	@rm -f .local/test-reports/cpu.jsonl
	@TEST_CPU_LOG=.local/test-reports/cpu.jsonl $(AIRFLOW_PY) -m pytest -n $(TEST_WORKERS) \
		--junitxml=.local/test-reports/junit.xml

test-fast: venvs ## The tests that need no database (DAG integrity and unit tests)
	@$(AIRFLOW_PY) -m tools.manifest
	@$(AIRFLOW_PY) -m pytest -m "not integration"

lint: venvs ## Every linter, check-only: ruff, sqlfluff, yamllint, hadolint, shellcheck, actionlint, zizmor, check-jsonschema
	@bash ci/lint.sh

ci: venvs ## The whole CI pipeline in order: lint, locks, manifest, tests, dbt image, container tests, deploy dry runs
	@bash ci/pipeline.sh

preflight: venvs ## Deploy checks: settings and secrets, fresh manifest, DAG integrity, image in the registry (DRY_RUN=1: no registry)
	@bash ci/preflight.sh

deploy-dry-run: venvs ## Build the image and every deploy bundle, print the cloud commands (nothing is pushed)
	@bash ci/pipeline.sh manifest image astro-image deploy-dry-run

lock: venvs ## Recompile the locks after editing requirements/*.in or dbt/requirements.in
	@bash scripts/lock.sh

lock-check: venvs ## Fail when a lock is out of date with its inputs
	@bash scripts/lock.sh --check

bench: venvs ## Benchmarks: DAG render time (manifest vs dbt ls) and run time (per-node vs single task)
	@$(AIRFLOW_PY) -m tools.bench.render
	@$(AIRFLOW_PY) -m tools.bench.run

bench-scheduler: venvs ## Run time under a real scheduler: shipped DAGs against lever DAGs (ARGS="--scale 100" or "--models 100")
	@$(AIRFLOW_PY) -m tools.bench.scheduler $(ARGS)

bench-celery: venvs ## The same four DAG runs at once on the LocalExecutor and on Celery with two workers (Redis; ARGS="--repeat 5")
	@$(AIRFLOW_PY) -m tools.bench.celery $(ARGS)

bench-aci: venvs ## The ACI DAGs against the local ACI emulator: each granularity at several cold starts (needs Docker)
	@$(AIRFLOW_PY) -m tools.bench.aci $(ARGS)

image: venvs ## Build the dbt runtime image (starts a Docker engine first where it can)
	@bash ci/build-image.sh

astro-image: venvs ## Build the deploy image (the root Dockerfile; on a stand-in for Astro Runtime where it cannot be pulled)
	@bash ci/build-astro-image.sh

bench-stack: venvs ## The deploy image: build cold, cached and after a change; sizes; local stack start to first DAG run
	@$(AIRFLOW_PY) -m tools.bench.stack $(ARGS)

bench-image: venvs ## Image size, container start, baked partial parse vs none
	@$(AIRFLOW_PY) -m tools.bench.image

clean: ## Stop the embedded PostgreSQL and delete .local/ and the dbt build output (keeps .venvs/)
	@$(AIRFLOW_PY) -m tools.postgres stop 2>/dev/null || true
	rm -rf .local dbt/jaffle_shop/target dbt/jaffle_shop/logs
