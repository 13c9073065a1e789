"""`python -m tools.bench.run`: DAG run time, the per-model Cosmos DAG against one `dbt build` task.

Each run is `python -m tools.run_dag <dag_id>` (`dag.test()`) in a fresh process against one
throwaway PostgreSQL, the DAGs alternating so drifting machine load hits all of them alike. Both the
`dag.test()` time the child reports and the wall time of the whole process are recorded.

    python -m tools.bench.run [--repeat N] [--dags jaffle_shop_local,jaffle_shop_local_single_task]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

from include.blueprint.manifest import ManifestNotReady
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.airflow_db import migrate_metadata_db
from tools.bench import common
from tools.bench.common import BENCH_AIRFLOW_HOME, BENCH_DIR, LOG_DIR, BenchError, DagVariant
from tools.local_env import AIRFLOW_BIN, airflow_env
from tools.postgres import PostgresError

RESULT_FILE = BENCH_DIR / "run.json"

# Add a variant by adding one entry (the watcher mode needs a real scheduler: tools.bench.scheduler).
DAG_VARIANTS = (
    DagVariant("jaffle_shop_local", "one task per dbt node (Cosmos LOCAL, dbt from its venv)"),
    DagVariant("jaffle_shop_local_single_task", "one `dbt build` task (the baseline)"),
)
BASELINE = "jaffle_shop_local_single_task"


def select_variants(names: str | None, variants: tuple[DagVariant, ...] = DAG_VARIANTS) -> list[DagVariant]:
    return common.select_variants(names, variants)


def failure_reason(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "no JSON summary printed"
    if summary.get("state") in ("import_error", "missing"):
        return f"the DAG could not be loaded ({summary['state']})"
    failed = sorted(task for task, state in summary.get("tasks", {}).items() if state != "success")
    return f"state {summary.get('state')}; tasks not successful: {', '.join(failed) or 'none'}"


def run_once(variant: DagVariant, env: dict[str, str], repetition: int) -> dict[str, Any]:
    log_path = LOG_DIR / f"run-{variant.dag_id}-{repetition}.log"
    command = [str(AIRFLOW_BIN / "python"), "-m", variant.runner, variant.dag_id]
    summary, returncode, wall = common.run_json_child(command, {**env, **variant.env}, log_path)
    if returncode != 0 or summary is None or summary.get("state") != "success":
        raise BenchError(
            f"{variant.dag_id} run {repetition + 1} failed: {failure_reason(summary)}; "
            f"see {common.display_path(log_path)}"
        )
    print(f"run: {variant.dag_id:<32} #{repetition + 1} dag.test {summary['seconds']:6.1f} s, wall {wall:6.1f} s")
    return {"dag_test_seconds": summary["seconds"], "wall_seconds": wall, "tasks": len(summary["tasks"])}


def benchmark(variants: list[DagVariant], repeat: int, env: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {variant.dag_id: [] for variant in variants}
    for repetition in range(repeat):
        for variant in variants:
            runs[variant.dag_id].append(run_once(variant, env, repetition))
    return runs


def variant_result(variant: DagVariant, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "description": variant.description,
        "tasks": runs[0]["tasks"],
        "dag_test": common.summarize([run["dag_test_seconds"] for run in runs]).as_dict(),
        "wall": common.summarize([run["wall_seconds"] for run in runs]).as_dict(),
        "runs": runs,
    }


def ratios_to_baseline(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Each DAG's median over the baseline's median, for the dag.test() time and the wall time."""
    return common.ratios_to_baseline(results, BASELINE, ("dag_test", "wall"))


def print_report(results: dict[str, dict[str, Any]], ratios: dict[str, dict[str, float | None]]) -> None:
    rows = [
        [
            dag_id,
            str(result["tasks"]),
            str(result["dag_test"]["runs"]),
            common.format_min_median(common.Summary(**result["dag_test"])),
            common.format_min_median(common.Summary(**result["wall"])),
        ]
        for dag_id, result in results.items()
    ]
    print("\nDAG run time, `dag.test()` in a fresh process per run (wall = the whole process, start included)")
    print(common.format_table(["DAG", "tasks", "runs", "dag.test() min/median s", "wall min/median s"], rows))
    for dag_id, ratio in ratios.items():
        print(
            f"ratio {dag_id} / {BASELINE} (medians): dag.test() {common.format_ratio(ratio['dag_test'])}, "
            f"wall {common.format_ratio(ratio['wall'])}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per DAG (default 3)")
    parser.add_argument("--dags", help=f"comma-separated DAG ids (default: {','.join(v.dag_id for v in DAG_VARIANTS)})")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    return args


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    variants = select_variants(args.dags)
    settings = load_settings()
    common.prepare_jaffle_shop()
    with common.throwaway_postgres() as server:
        env = airflow_env(BENCH_AIRFLOW_HOME, settings, server.settings())
        migrate_metadata_db(env)
        runs = benchmark(variants, args.repeat, env)
    results = {variant.dag_id: variant_result(variant, runs[variant.dag_id]) for variant in variants}
    return {"repeat": args.repeat, "dags": results, "ratios": ratios_to_baseline(results)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        report = run_benchmark(args)
    except (
        BenchError,
        PostgresError,
        ManifestNotReady,
        BlueprintConfigError,
        RuntimeError,
        subprocess.SubprocessError,
    ) as error:
        print(f"error: {common.one_line(error)}", file=sys.stderr)
        return 1
    print_report(report["dags"], report["ratios"])
    common.finish_report(report, started, RESULT_FILE, "run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
