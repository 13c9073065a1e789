"""`python -m tools.bench.aci`: the ACI DAGs against the local ACI emulator, per task granularity
and per emulated cold start, each against the single-task `dbt build` ACI DAG.

Each run is `python -m tools.run_dag <dag_id>` (`dag.test()`, tasks one after another) in a fresh
process, against one throwaway PostgreSQL, the runtime image on the local Docker engine and an
emulator whose start-up delay stands in for ACI's cold start (real ACI: 30-60 s and more per group).
Variants alternate within a repetition so drifting machine load hits all of them alike. After every
run the emulator must hold no container group.

With `--scheduler` the DAGs run under a real scheduler instead (LocalAirflow: LocalExecutor, tasks
in parallel), each granularity a DAG of its own from tools/bench/aci_dags.py; a run's time is
Airflow's dag_run start to end. This is the setting the README's wall-time model predicts.

    python -m tools.bench.aci [--repeat 3] [--startup-delays 0,10] [--granularities node,model,layer,project]
        [--dags jaffle_shop_azure_container_instance,jaffle_shop_azure_container_instance_single_task] [--env K=V]
        [--scheduler]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.runtime import ALL_GRANULARITIES
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.aci_emulator import AciEmulator
from tools.airflow_db import migrate_metadata_db
from tools.bench import common
from tools.bench.common import BENCH_AIRFLOW_HOME, BENCH_DIR, BenchError, DagVariant
from tools.bench.run import run_once
from tools.generate_data import expected_marts
from tools.local_env import airflow_env
from tools.postgres import LocalPostgres, PostgresError

RESULT_FILE = BENCH_DIR / "aci.json"
IMAGE = "airflow-dbt-blueprint/dbt-runtime:local"
ACI_DAG = "jaffle_shop_azure_container_instance"
BASELINE = "jaffle_shop_azure_container_instance_single_task"
SCHEDULER_BASELINE = "aci_single_task"  # tools/bench/aci_dags.py
DEFAULT_DAGS = f"{ACI_DAG},{BASELINE}"
CONN_ID = "azure_container_instances"
OVERRIDES = {
    "BLUEPRINT__EXECUTION__ENABLED_MODES": "[azure_container_instance]",
    "BLUEPRINT__RUNTIME__IMAGE": IMAGE,
    "BLUEPRINT__AZURE_CONTAINER_INSTANCE__CI_CONN_ID": CONN_ID,
    "BLUEPRINT__AZURE_CONTAINER_INSTANCE__RESOURCE_GROUP": "rg-blueprint-bench",
    "BLUEPRINT__AZURE_CONTAINER_INSTANCE__REGION": "westeurope",
}


def variants_for(dag_ids: list[str], granularities: list[str], extra_env: dict[str, str]) -> list[DagVariant]:
    """One variant per DAG and granularity; a single-task DAG is one `dbt build` whatever the setting.
    Each variant's `env` is what it adds to the shared environment (granularity plus --env)."""
    variants = []
    for dag_id in dag_ids:
        if dag_id.endswith("_single_task"):
            variants.append(DagVariant(dag_id, "one `dbt build` task (the baseline)", env=dict(extra_env)))
            continue
        for granularity in granularities:
            env = {**extra_env, "BLUEPRINT__EXECUTION__GRANULARITY": granularity}
            variants.append(DagVariant(dag_id, f"granularity {granularity}", env=env))
    return variants


def key(variant: DagVariant) -> str:
    granularity = variant.env.get("BLUEPRINT__EXECUTION__GRANULARITY")
    return f"{variant.dag_id}[{granularity}]" if granularity else variant.dag_id


def run_variant(variant: DagVariant, env: dict[str, str], repetition: int, aci: AciEmulator) -> dict[str, Any]:
    run = run_once(variant, env, repetition)
    left = aci.groups()
    if left:
        raise BenchError(f"{key(variant)} left {len(left)} container group(s) in the emulator: {left[0]['name']}")
    run["container_groups"] = sum(1 for event in aci.history() if event["event"] == "put")
    return run


def benchmark_delay(
    delay: float, variants: list[DagVariant], repeat: int, base_env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    runs: dict[str, list[dict[str, Any]]] = {key(variant): [] for variant in variants}
    with AciEmulator(startup_delay=delay) as aci:
        env = {**base_env, **aci.client_env(), **aci.connection_env(CONN_ID)}
        print(f"bench: ACI emulator on {aci.url}, start-up delay {delay:g} s", flush=True)
        for repetition in range(repeat):
            for variant in variants:
                before = len([e for e in aci.history() if e["event"] == "put"])
                run = run_variant(variant, env, repetition, aci)
                run["container_groups"] -= before
                runs[key(variant)].append(run)
    return {
        name: {
            "description": variant.description,
            "tasks": samples[0]["tasks"],
            "container_groups": samples[0]["container_groups"],
            "dag_test": common.summarize([s["dag_test_seconds"] for s in samples]).as_dict(),
            "wall": common.summarize([s["wall_seconds"] for s in samples]).as_dict(),
            "runs": samples,
        }
        for variant in variants
        for name, samples in [(key(variant), runs[key(variant)])]
    }


def benchmark_delay_under_scheduler(
    delay: float, granularities: list[str], repeat: int, extra_env: dict[str, str], server: LocalPostgres
) -> dict[str, Any]:
    """Every granularity's DAG and the single-task DAG in one LocalAirflow, each run `repeat` times."""
    from tools.airflow_services import LocalAirflow
    from tools.bench import scheduler

    variants = [DagVariant(f"aci_{granularity}", f"granularity {granularity}") for granularity in granularities]
    variants.append(DagVariant(SCHEDULER_BASELINE, "one `dbt build` task (the baseline)"))
    shutil.rmtree(scheduler.HOME, ignore_errors=True)  # fresh logs and dags folder
    dags_folder = scheduler.HOME / "dags"
    dags_folder.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("aci_dags.py"), dags_folder / "aci_dags.py")
    with AciEmulator(startup_delay=delay) as aci:
        database = server.settings()
        env = {**scheduler.service_env(database, dags_folder, []), **OVERRIDES, "BLUEPRINT__DAGS__RETRIES": "0"}
        env.update({**aci.client_env(), **aci.connection_env(CONN_ID), **extra_env})
        schema = load_settings(env).project("jaffle_shop").target_schema
        airflow = LocalAirflow(scheduler.HOME, env, server.database(f"airflow_aci_{delay:g}".replace(".", "_")))
        print(f"bench: ACI emulator on {aci.url}, start-up delay {delay:g} s, under a real scheduler", flush=True)
        try:
            airflow.start()
            runs = scheduler.benchmark(airflow, variants, repeat, database, schema)
        finally:
            airflow.stop()
        if aci.groups():
            raise BenchError(f"{len(aci.groups())} container group(s) left in the emulator")
    results = scheduler.summarize(variants, runs)
    return {"dags": results, "ratios": common.ratios_to_baseline(results, SCHEDULER_BASELINE, ("run",)),
            "same_marts": scheduler.same_marts(results, expected_marts())}  # fmt: skip


def print_scheduler_report(delay: float, report: dict[str, Any]) -> None:
    rows = [
        [name, str(result["tasks"]), str(result["run"]["runs"]),
         common.format_min_median(common.Summary(**result["run"])),
         common.format_ratio(report["ratios"].get(name, {}).get("run"))]
        for name, result in report["dags"].items()
    ]  # fmt: skip
    print(f"\nACI emulator start-up delay {delay:g} s; real scheduler, Airflow's dag_run start to end")
    print(common.format_table(["DAG", "tasks", "runs", "min/median s", f"/ {SCHEDULER_BASELINE}"], rows))
    print(f"marts equal across every run and as generated: {common.verdict(report['same_marts'])}")


def print_report(delay: float, results: dict[str, dict[str, Any]], ratios: dict[str, dict[str, float | None]]) -> None:
    rows = [
        [
            name,
            str(result["tasks"]),
            str(result["wall"]["runs"]),
            common.format_min_median(common.Summary(**result["wall"])),
            common.format_min_median(common.Summary(**result["dag_test"])),
            common.format_ratio(ratios.get(name, {}).get("wall")) if name != BASELINE else "1.00x (baseline)",
        ]
        for name, result in results.items()
    ]
    print(f"\nACI emulator start-up delay {delay:g} s; `dag.test()` in a fresh process per run")
    headers = ["DAG[granularity]", "tasks", "runs", "wall min/median s", "dag.test() min/median s", "wall / baseline"]
    print(common.format_table(headers, rows))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per variant and delay (default 3)")
    parser.add_argument("--dags", help=f"comma-separated DAG ids, dag.test() only (default: {DEFAULT_DAGS})")
    parser.add_argument("--startup-delays", default="0,10", help="emulated cold starts in seconds (default 0,10)")
    parser.add_argument(
        "--granularities", default=",".join(ALL_GRANULARITIES),
        help="BLUEPRINT__EXECUTION__GRANULARITY values for the per-node DAG (default: all)",
    )  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra env for every run")
    parser.add_argument("--scheduler", action="store_true", help="run under a real scheduler instead of dag.test()")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1 (3 or more for a meaningful median)")
    if args.scheduler and args.dags:
        parser.error("--dags is for dag.test() runs; --scheduler always runs tools/bench/aci_dags.py's DAGs")
    args.dags = args.dags or DEFAULT_DAGS
    try:
        args.startup_delays = [float(value) for value in args.startup_delays.split(",") if value.strip()]
    except ValueError:
        parser.error("--startup-delays takes comma-separated seconds, e.g. 0,10")
    args.granularities = [value.strip() for value in args.granularities.split(",") if value.strip()]
    unknown = sorted(set(args.granularities) - set(ALL_GRANULARITIES))
    if unknown:
        parser.error(f"unknown granularity {', '.join(unknown)}; known: {', '.join(ALL_GRANULARITIES)}")
    if any("=" not in item for item in args.env):
        parser.error("--env takes KEY=VALUE")
    args.env = dict(item.split("=", 1) for item in args.env)
    return args


def run_under_dag_test(args: argparse.Namespace, server: LocalPostgres, report: dict[str, Any]) -> None:
    dag_ids = [name.strip() for name in args.dags.split(",") if name.strip()]
    variants = variants_for(dag_ids, args.granularities, args.env)
    env = {**airflow_env(BENCH_AIRFLOW_HOME, load_settings(OVERRIDES), server.settings()), **OVERRIDES}
    # A failed task is not retried after retry_delay (60 s): the run fails and the bench says so.
    env["BLUEPRINT__DAGS__RETRIES"] = "0"
    migrate_metadata_db(env)
    for delay in args.startup_delays:
        results = benchmark_delay(delay, variants, args.repeat, env)
        ratios = common.ratios_to_baseline(results, BASELINE, ("dag_test", "wall"))
        print_report(delay, results, ratios)
        report["delays"][f"{delay:g}"] = {"startup_delay": delay, "dags": results, "ratios": ratios}


def run_under_scheduler(args: argparse.Namespace, server: LocalPostgres, report: dict[str, Any]) -> None:
    for delay in args.startup_delays:
        result = benchmark_delay_under_scheduler(delay, args.granularities, args.repeat, args.env, server)
        print_scheduler_report(delay, result)
        report["delays"][f"{delay:g}"] = {"startup_delay": delay, **result}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        raise BenchError(f"the runtime image {IMAGE} is missing: build it with `bash ci/build-image.sh`")
    common.prepare_jaffle_shop()
    runner = "scheduler" if args.scheduler else "dag.test"
    report: dict[str, Any] = {"repeat": args.repeat, "image": IMAGE, "runner": runner, "delays": {}}
    with common.throwaway_postgres() as server:
        (run_under_scheduler if args.scheduler else run_under_dag_test)(args, server, report)
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        report = run_benchmark(args)
    except (BenchError, PostgresError, ManifestNotReady, BlueprintConfigError, RuntimeError,
            subprocess.SubprocessError) as error:  # fmt: skip
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    common.finish_report(report, started, RESULT_FILE, "ACI")
    return 0


if __name__ == "__main__":
    sys.exit(main())
