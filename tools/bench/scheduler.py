"""`python -m tools.bench.scheduler`: DAG run time under a real scheduler, per-node DAGs against one task.

One LocalAirflow (API server, scheduler with the LocalExecutor, triggerer, DAG processor; metadata
in a throwaway PostgreSQL) on .local/bench/scheduler serves the whole benchmark. Each DAG is
triggered once uncounted (#0, which pays first-run costs) and then N times, the DAGs alternating; a
run's time is Airflow's own dag_run start to end. After each run the marts are fingerprinted
(every run of every DAG must leave the same marts). For each
DAG's median run it prints where the time went: per task the queued and start times, the duration
and, for tasks that ran dbt, dbt's phases read from the task log. Retried tasks are reported.

The DAGs are the shipped ones (dags/) and, from tools/bench/lever_dags.py, the same DAGs with one
lever turned back each, so every lever's worth is measured side by side in the same run.

    python -m tools.bench.scheduler [--repeat N] [--dags a,b] [--scale N | --models N]
                                    [--critical-path] [--dags-folder DIR] [--env K=V ...] [--idle-seconds S]

`--scale` builds jaffle_shop from N times the default data; `--models` builds a synthetic project
of N models instead (tools.synthetic_project). `--critical-path` adds the per-model DAG on the
project's longest chain of tasks alone and its floor (tools/bench/critical_path.py): what a worker
pool wide enough for the widest level would wait for. `--dags-folder` and `--env` are for experiments: a
scratch dags folder with variant DAGs (any DAG id there may be named in --dags) and Airflow,
Cosmos or blueprint settings for every service. What the services cost is reported too
(tools/bench/service_cost.py): CPU seconds per minute of each one and the metadata database's load,
during the runs and, with `--idle-seconds`, that long with no run afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from subprocess import SubprocessError
from typing import Any

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools import synthetic_project
from tools.bench import common, critical_path, service_cost
from tools.bench.common import BENCH_DIR, BenchError, DagVariant
from tools.bench.task_breakdown import breakdown, dbt_timing, first_errors, format_breakdown
from tools.generate_data import expected_marts
from tools.local_env import DAGS_DIR, airflow_env
from tools.postgres import ConnectionSettings, PostgresError

HOME = BENCH_DIR / "scheduler"
RESULT_FILE = BENCH_DIR / "scheduler.json"
BASELINE = "jaffle_shop_local_single_task"
VARIANTS = (
    DagVariant("jaffle_shop_local", "shipped: one task per model with its tests, warm dbt"),
    DagVariant("jaffle_shop_watcher", "shipped: one dbt build, a task per node polling its result each second"),
    DagVariant(BASELINE, "shipped: one `dbt build` task, warm dbt (the baseline)"),
    DagVariant("lever_local_cosmos_defaults", "Cosmos defaults: one task per node, dbt started plainly"),
    DagVariant("lever_local_node_warm", "one task per node, warm dbt"),
    DagVariant("lever_local_layer", "one task per layer (seeds, staging, marts), warm dbt"),
    DagVariant("lever_single_task_plain_dbt", "one `dbt build` task, dbt started plainly"),
    DagVariant(
        "lever_watcher_cosmos_defaults", "watcher as Cosmos ships it: deferred tasks poll every 10 s, plain dbt"
    ),
    DagVariant(
        "lever_local_no_warm_up", "shipped local DAG, its dbt server not warmed up (dbt's first-use work per task)"
    ),
    DagVariant("lever_local_no_manifest_cache", "shipped local DAG, its dbt server keeping no parsed manifest"),
    DagVariant("lever_single_task_no_manifest_cache", "shipped single task, its dbt server keeping no parsed manifest"),
    DagVariant(
        "lever_local_no_preload", "shipped local DAG, its tasks importing Cosmos themselves (no preload in the worker)"
    ),
    DagVariant("floor_local", "floor: jaffle_shop_local's task graph, every task doing nothing"),
    DagVariant("floor_watcher", "floor: jaffle_shop_watcher's task graph, every task doing nothing"),
    DagVariant("floor_single_task", "floor: one task doing nothing"),
)
SHIPPED_DAG_FILES = ("dbt_local.py", "dbt_watcher.py")  # jaffle_shop_local(_single_task), jaffle_shop_watcher
# The targets, on medians: a shipped DAG's run time at most this factor times the single task's
# plus its floor's (the same task graph doing nothing: what Airflow's scheduling of it costs).
FLOOR_TARGETS = {
    "jaffle_shop_local": ("floor_local", 1.2),
    "jaffle_shop_watcher": ("floor_watcher", 1.1),
    critical_path.DAG_ID: ("floor_critical_path", 1.2),
}
CRITICAL_PATH_VARIANTS = (
    DagVariant(critical_path.DAG_ID, "jaffle_shop_local on the longest chain of tasks alone (a wide pool's run)"),
    DagVariant("floor_critical_path", f"floor: {critical_path.DAG_ID}'s task graph, every task doing nothing"),
)
CRITICAL_PATH_DAGS = ("jaffle_shop_local_single_task", "jaffle_shop_local", "floor_local", critical_path.DAG_ID,
                      "floor_critical_path")  # fmt: skip
TI_COLUMNS = ("task_id", "state", "operator", "try_number", "scheduled_dttm", "queued_dttm", "start_date", "end_date")
MART_FINGERPRINT = "select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {}.{} t"


def floor_ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each shipped DAG with a target: its median over (single task + its floor), and the target."""
    ratios = {}
    for dag_id, (floor, factor) in FLOOR_TARGETS.items():
        if {dag_id, floor, BASELINE} <= results.keys():
            budget = results[BASELINE]["run"]["median"] + results[floor]["run"]["median"]
            ratios[dag_id] = {"floor": floor, "budget": round(budget, 3), "target": factor}
            ratios[dag_id]["ratio"] = round(results[dag_id]["run"]["median"] / budget, 3)
    return ratios


def service_env(server_settings: ConnectionSettings, dags_folder: Path | None, overrides: list[str]) -> dict[str, str]:
    """Every service's environment: dev modes (local, virtualenv, watcher), no schedule, overrides last."""
    env = airflow_env(HOME, load_settings({"BLUEPRINT_ENV": "dev"}), server_settings)
    # No schedule: unpausing a @daily DAG would start a run of its own next to the triggered ones.
    env.update({"BLUEPRINT_ENV": "dev", "BLUEPRINT__DAGS__SCHEDULE": "null"})
    if dags_folder:
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder.resolve())
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--env expects KEY=VALUE, got {item!r}")
        env[key] = value
    return env


def marts(database: ConnectionSettings, schema: str) -> dict[str, list[Any]]:
    """Rows and a content hash of every relation dbt built: equal across DAGs means the same result."""
    relations = database.query(f"select table_name from information_schema.tables where table_schema = '{schema}'")
    return {name: list(database.query(MART_FINGERPRINT.format(schema, name))[0]) for (name,) in sorted(relations)}


def task_rows(airflow: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """Each task instance of a run, its timestamps in seconds since the run started."""
    since = ", ".join(f"extract(epoch from ti.{column} - r.start_date)" for column in TI_COLUMNS[4:])
    rows = airflow._query(  # LocalAirflow's own metadata connection
        f"select ti.task_id, ti.state, ti.operator, ti.try_number, {since} from task_instance ti "
        "join dag_run r using (dag_id, run_id) where ti.dag_id = %s and ti.run_id = %s order by ti.start_date",
        dag_id, run_id,
    )  # fmt: skip
    return [
        {key: round(float(value), 3) if key in TI_COLUMNS[4:] and value is not None else value
         for key, value in zip(TI_COLUMNS, row, strict=True)}
        for row in rows
    ]  # fmt: skip


def run_once(airflow: Any, variant: DagVariant, database: ConnectionSettings, schema: str, rep: int) -> dict[str, Any]:
    load = os.getloadavg()
    result = airflow.run(variant.dag_id)
    tasks = task_rows(airflow, variant.dag_id, result.run_id)
    for task in tasks:  # Airflow's default log_filename_template
        folder = HOME / "logs" / f"dag_id={variant.dag_id}" / f"run_id={result.run_id}" / f"task_id={task['task_id']}"
        log = folder / f"attempt={task['try_number']}.log"
        task.update(dbt_timing(log.read_text() if log.exists() else ""))
        if task["try_number"] > 1:  # keep why the first attempt failed: the next benchmark wipes the logs
            task["first_attempt_errors"] = first_errors(folder / "attempt=1.log")
    if result.state != "success":
        failed = sorted(task for task, state in result.tasks.items() if state != "success")
        raise BenchError(f"{variant.dag_id} run {rep + 1} {result.state}; not successful: {', '.join(failed)}")
    built = marts(database, schema)
    retried = sorted(task["task_id"] for task in tasks if task["try_number"] > 1)
    note = f", RETRIED: {', '.join(retried)}" if retried else ""
    print(f"scheduler: {variant.dag_id:<36} #{rep + 1} {result.seconds:6.1f} s (load {load[0]:.2f}){note}", flush=True)
    sample = {"run_id": result.run_id, "seconds": result.seconds, "load": load, "marts": built, "retried": retried}
    return {**sample, "tasks": tasks}


def benchmark(
    airflow: Any,
    variants: list[DagVariant],
    repeat: int,
    database: ConnectionSettings,
    schema: str,
    cost: dict[str, Any] | None = None,
    idle_seconds: float = 0,
    warm_up: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """Every variant's runs; into `cost`, what the services cost during them and `idle_seconds` after."""
    runs: dict[str, list[dict[str, Any]]] = {variant.dag_id: [] for variant in variants}
    # Parallel seed tasks race on `create schema if not exists` when the schema is missing (Postgres
    # raises a duplicate key error): runs start from the steady state, the schema and the last marts.
    database.query(f"create schema if not exists {schema}")
    for variant in variants:
        airflow.wait_for_dag(variant.dag_id)
    # Run #0 of each DAG is not counted: it pays what only a first run does (the worker's warm dbt
    # server starting, dbt's full parse where the saved one came from `make manifest`'s profile).
    for variant in variants if warm_up else ():
        run_once(airflow, variant, database, schema, -1)
    before = service_cost.sample(airflow) if cost is not None else None
    for rep in range(repeat):
        for variant in variants:
            runs[variant.dag_id].append(run_once(airflow, variant, database, schema, rep))
    if cost is not None and before is not None:
        cost["runs"] = service_cost.delta(before, service_cost.sample(airflow), repeat * len(variants))
        cost["idle"] = service_cost.idle_cost(airflow, idle_seconds)
    return runs


def summarize(variants: list[DagVariant], runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    results = {}
    for variant in variants:
        samples = runs[variant.dag_id]
        median_run = common.median_sample(samples, "seconds")
        results[variant.dag_id] = {
            "description": variant.description,
            "tasks": len(samples[0]["tasks"]),
            "run": common.summarize([sample["seconds"] for sample in samples]).as_dict(),
            "median_run_breakdown": breakdown(median_run["tasks"], median_run["seconds"]),
            "runs": samples,
        }
    return results


def same_marts(results: dict[str, dict[str, Any]], expected: dict[str, Any] | None) -> bool:
    """Every run of every DAG left the same relations; for jaffle_shop, with the generated row counts.
    The floors build nothing: alone (a fresh database) they leave none, so they are not compared."""
    built = [
        sample["marts"] for dag_id, result in results.items() if dag_id not in ALL_FLOORS for sample in result["runs"]
    ]
    rows = {"customers": expected["customers_rows"], "orders": expected["orders_rows"]} if expected else {}
    return all(m == built[0] and all(m[mart][0] == n for mart, n in rows.items()) for m in built)


def print_report(report: dict[str, Any]) -> None:
    results, ratios, floors = report["dags"], report["ratios"], report["floor_ratios"]
    rows = []
    for dag_id, result in results.items():
        ratio, against = ratios.get(dag_id, {}).get("run"), floors.get(dag_id)
        verdict = ""
        if against:
            met = common.verdict(against["ratio"] <= against["target"], "MET")
            verdict = f"{against['ratio']:.2f}x of single+{against['floor']} (<= {against['target']}x {met})"
        loads = [sample["load"][0] for sample in result["runs"]]
        row = [dag_id, str(result["tasks"]), str(result["run"]["runs"])]
        row += [common.format_min_median(common.Summary(**result["run"])), common.format_ratio(ratio), verdict]
        rows.append([*row, f"{min(loads):.1f}-{max(loads):.1f}"])
    print("\nDAG run time under a real scheduler (LocalExecutor + triggerer), Airflow's dag_run start to end")
    headers = ["DAG", "tasks", "runs", "min/median s", f"/ {BASELINE}", "target", "load 1m"]
    print(common.format_table(headers, rows))
    for dag_id, result in results.items():
        print(f"\n{dag_id}, median run ({result['run']['median']:.1f} s), seconds since the run started:")
        print(format_breakdown(result["median_run_breakdown"]))
    print("\nWhat the services cost (CPU seconds per minute of each process; metadata database load):")
    print(service_cost.format_cost(report.get("cost") or {}))
    print(f"\nmarts equal across every run and as generated: {common.verdict(report['same_marts'])}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per DAG (default 3)")
    parser.add_argument("--no-warm-up", action="store_true", help="count each DAG's first run too")
    parser.add_argument("--dags", help=f"comma-separated DAG ids (default: {','.join(v.dag_id for v in VARIANTS)})")
    parser.add_argument("--dags-folder", type=Path, help="a scratch dags folder (experiments)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="service setting")
    parser.add_argument("--idle-seconds", type=float, default=0, help="then measure the idle cost this long")
    parser.add_argument("--output", type=Path, default=RESULT_FILE, help="the JSON report")
    parser.add_argument("--scale", type=int, default=1, help="jaffle_shop data scale (tools.generate_data)")
    parser.add_argument("--models", type=int, help="build a synthetic project of this many models instead")
    parser.add_argument(
        "--critical-path", action="store_true",
        help=f"add {critical_path.DAG_ID}: the per-model DAG on the project's longest chain of tasks alone (what "
        f"a wide worker pool waits for), and its floor; default DAGs {','.join(CRITICAL_PATH_DAGS)}",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.critical_path and (args.dags_folder or any(item.partition("=")[0].endswith("__DAGS") for item in args.env)):
        parser.error("--critical-path declares the project's DAGs itself: no --dags-folder, no --env ...__DAGS=")
    if args.critical_path and args.dags and BASELINE not in args.dags.split(","):
        parser.error(f"--critical-path needs {BASELINE} in --dags: it builds the tables the chain reads")
    return args


def prepare_project(scale: int, models: int | None) -> tuple[list[str], dict[str, Any] | None]:
    """The project the DAGs build, as settings for the services, and jaffle_shop's expected marts."""
    if models:
        project = BENCH_DIR / f"synthetic-{models}"
        synthetic_project.write_project(project, models)  # keeps unchanged files: the manifest stays fresh
        common.ensure_fresh_manifest(project)
        return [
            f"BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR={project}",
            "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROFILE=synthetic",
        ], None
    common.prepare_jaffle_shop(scale)
    return [], expected_marts(scale=scale)


# floor DAG id -> (mode, the shipped DAG whose task graph it copies)
FLOORS = {
    "floor_local": ("local", "jaffle_shop_local"),
    "floor_watcher": ("watcher", "jaffle_shop_watcher"),
    "floor_single_task": ("local", "jaffle_shop_local_single_task"),
}
CRITICAL_PATH_FLOORS = {"floor_critical_path": ("local", critical_path.DAG_ID)}
ALL_FLOORS = {**FLOORS, **CRITICAL_PATH_FLOORS}


def floor_graphs(env: dict[str, str], floors: dict[str, tuple[str, str]] = FLOORS) -> dict[str, dict[str, list[str]]]:
    """Each floor's task graph (task id -> upstream ids), from the shipped DAGs the services build."""
    from include.blueprint.pipelines import declared_dags

    config = load_settings({**env, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, watcher]"})
    shipped = {mode: declared_dags(mode, config) for mode in {mode for mode, _ in floors.values()}}
    return {
        floor: {task.task_id: sorted(task.upstream_task_ids) for task in shipped[mode][dag_id].tasks}
        for floor, (mode, dag_id) in floors.items()
    }


def bench_dags_folder(env: dict[str, str], floors: dict[str, tuple[str, str]] = FLOORS) -> Path:
    """The shipped DAG files, the lever DAGs and the floors, in a folder of the benchmark's own."""
    folder = HOME / "dags"
    folder.mkdir(parents=True)
    for name in SHIPPED_DAG_FILES:
        shutil.copy(DAGS_DIR / name, folder / name)
    shutil.copy(Path(__file__).with_name("lever_dags.py"), folder / "jaffle_shop_levers.py")
    shutil.copy(Path(__file__).with_name("floor_dags.py"), folder / "jaffle_shop_floors.py")
    shutil.copy(Path(__file__).with_name("no_preload_dags.py"), folder / "jaffle_shop_no_preload.py")
    (folder / "floor_graphs.json").write_text(json.dumps(floor_graphs(env, floors), indent=1))
    return folder


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from tools.airflow_services import LocalAirflow

    other = f"from {args.dags_folder}" if args.dags_folder else None
    if args.critical_path:
        variants = common.select_variants(args.dags or ",".join(CRITICAL_PATH_DAGS), VARIANTS + CRITICAL_PATH_VARIANTS)
        variants.sort(key=lambda variant: variant.dag_id != BASELINE)  # the chain reads what the whole build makes
    else:
        variants = common.select_variants(args.dags, VARIANTS, other)
    project_settings, expected = prepare_project(args.scale, args.models)
    shutil.rmtree(HOME, ignore_errors=True)  # fresh logs, and the metadata database is new
    cost: dict[str, Any] = {}
    with common.throwaway_postgres() as server:
        env = service_env(server.settings(), args.dags_folder, [*project_settings, *args.env])
        if args.critical_path:
            env.update(critical_path.settings_override(load_settings(env).project("jaffle_shop").manifest_path))
        if not args.dags_folder:
            floors = ALL_FLOORS if args.critical_path else FLOORS
            env["AIRFLOW__CORE__DAGS_FOLDER"] = str(bench_dags_folder(env, floors).resolve())
        schema = load_settings(env).project("jaffle_shop").target_schema
        airflow = LocalAirflow(HOME, env, server.database("airflow_bench"))
        try:
            airflow.start()
            print(f"scheduler: Airflow up on port {airflow.port} (logs: {common.display_path(HOME)})", flush=True)
            runs = benchmark(
                airflow, variants, args.repeat, server.settings(), schema, cost, args.idle_seconds, not args.no_warm_up
            )
        finally:
            airflow.stop()
    results = summarize(variants, runs)
    return {
        "repeat": args.repeat,
        "warm_up_run": not args.no_warm_up,
        "settings": {
            "dags_folder": str(args.dags_folder or ""),
            "env": args.env,
            "scale": args.scale,
            "models": args.models,
            "critical_path": args.critical_path,
            "idle_seconds": args.idle_seconds,
        },
        "dags": results,
        "ratios": common.ratios_to_baseline(results, BASELINE, ("run",)),
        "floor_ratios": floor_ratios(results),
        "same_marts": same_marts(results, expected),
        "cost": cost,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A stopped benchmark must still stop its Airflow services and PostgreSQL (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        report = run_benchmark(args)
    except (PostgresError, ManifestNotReady, BlueprintConfigError, RuntimeError, OSError, SubprocessError) as error:
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    print_report(report)
    common.finish_report(report, started, args.output, "scheduler")
    return 0 if report["same_marts"] else 1


if __name__ == "__main__":
    sys.exit(main())
