"""`python -m tools.bench.celery`: the same DAG runs on the LocalExecutor and on Celery with two workers.

Four DAGs of jaffle_shop, one per granularity (node, model, layer, project), each registered as a
project of its own so that each builds into its own schema (tools.celery_workers.project_per_dag):
the four runs can then run at once without racing on relations. For each executor a LocalAirflow
(metadata in a throwaway PostgreSQL) is started, and each round triggers the four DAGs at once and
waits for them; a DAG's time is Airflow's own dag_run start to end, a round's is the first start
to the last end. Both executors get the same number of task slots (`--slots`, default 4): the
LocalExecutor's [core] parallelism, or two Celery workers with half the slots each, on one Redis.
Every run's marts must match the generated data's, or the benchmark fails.

    python -m tools.bench.celery [--repeat N] [--slots N]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from pathlib import Path
from subprocess import SubprocessError
from typing import Any

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.bench import common
from tools.bench.common import BENCH_DIR
from tools.bench.scheduler import marts
from tools.celery_workers import CeleryWorkers, project_per_dag
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, PostgresError

HOME = BENCH_DIR / "celery"
RESULT_FILE = BENCH_DIR / "celery.json"
GRANULARITIES = ("node", "model", "layer", "project")
DAG_IDS = tuple(f"celery_{granularity}_local" for granularity in GRANULARITIES)
EXECUTORS = ("LocalExecutor", "Celery, 2 workers")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the four DAGs per executor (default 3)")
    parser.add_argument("--slots", type=int, default=4, help="task slots of each executor (default 4, even)")
    parser.add_argument("--output", type=Path, default=RESULT_FILE, help="the JSON report")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.slots < 2 or args.slots % 2:
        parser.error("--repeat must be >= 1 and --slots an even number >= 2")
    return args


def run_round(airflow: Any, database: ConnectionSettings) -> dict[str, float]:
    """The four DAGs triggered at once; each one's run time and the round's wall time."""
    run_ids = {dag_id: airflow.trigger(dag_id) for dag_id in DAG_IDS}
    results = {dag_id: airflow.wait(dag_id, run_id) for dag_id, run_id in run_ids.items()}
    failed = [f"{dag_id}: {result.state}" for dag_id, result in results.items() if result.state != "success"]
    if failed:
        reports = "\n".join(airflow.failure_report(d, run_ids[d]) for d in DAG_IDS if results[d].state != "success")
        raise RuntimeError(f"runs failed ({', '.join(failed)})\n{reports}")
    reference = marts(database, "celery_project")  # the single task's
    wrong = [dag_id for dag_id in DAG_IDS if marts(database, dag_id.removesuffix("_local")) != reference]
    if wrong:
        raise RuntimeError(f"{', '.join(wrong)} built other marts than celery_project_local")
    spans = [airflow.run_spans(dag_id)[run_ids[dag_id]] for dag_id in DAG_IDS]
    return {
        **{dag_id: result.seconds for dag_id, result in results.items()},
        "all four": max(end for _, end in spans) - min(start for start, _ in spans),
    }


def bench_executor(executor: str, args: argparse.Namespace, server: Any, project_dir: Path) -> list[dict[str, float]]:
    from tools.airflow_services import LocalAirflow
    from tools.redis_server import LocalRedis

    home = HOME / executor.split(",")[0].lower()
    database = server.settings()
    env = airflow_env(home, load_settings(), database)
    env.update({**project_per_dag(project_dir, GRANULARITIES), "BLUEPRINT__DAGS__SCHEDULE": "null"})
    env["AIRFLOW__CORE__PARALLELISM"] = str(args.slots)
    metadata = server.database(f"airflow_bench_{home.name}")
    celery = executor != "LocalExecutor"
    with LocalRedis(home / "redis") if celery else contextlib.nullcontext() as redis:
        workers = CeleryWorkers(redis.url, concurrency=args.slots // 2) if redis else None
        with LocalAirflow(home, env, metadata, workers) as airflow:
            print(f"celery: {executor} up (logs: {common.display_path(home)})", flush=True)
            for dag_id in DAG_IDS:
                airflow.wait_for_dag(dag_id)
            rounds = []
            for number in range(args.repeat):
                rounds.append(run_round(airflow, database))
                print(f"celery: {executor} round {number + 1}: all four in {rounds[-1]['all four']:.1f} s", flush=True)
            return rounds


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import shutil

    project_dir = common.prepare_jaffle_shop(1)
    shutil.rmtree(HOME, ignore_errors=True)  # fresh logs; the metadata databases are new
    results: dict[str, dict[str, dict[str, float | int]]] = {}
    with common.throwaway_postgres() as server:
        for executor in EXECUTORS:
            rounds = bench_executor(executor, args, server, project_dir)
            results[executor] = {
                key: common.summarize([round_[key] for round_ in rounds]).as_dict() for key in (*DAG_IDS, "all four")
            }
    return {"repeat": args.repeat, "slots": args.slots, "results": results}


def print_report(report: dict[str, Any]) -> None:
    rows = [
        [key, *(common.format_min_median(common.Summary(**report["results"][e][key])) for e in EXECUTORS)]
        for key in (*DAG_IDS, "all four")
    ]
    print(f"\nfour DAG runs at once, {report['slots']} task slots each, min / median of {report['repeat']} (s):")
    print(common.format_table(["DAG run", *EXECUTORS], rows))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # A stopped benchmark must still stop its Airflow services, Redis and PostgreSQL (finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        report = run_benchmark(args)
    except (PostgresError, ManifestNotReady, BlueprintConfigError, RuntimeError, OSError, SubprocessError) as error:
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    print_report(report)
    common.finish_report(report, started, args.output, "celery")
    return 0


if __name__ == "__main__":
    sys.exit(main())
