"""The benchmarks' pure helpers: statistics, ratios, the printed table and child-output parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.blueprint.settings import load_settings
from tests.conftest import REPO_ROOT
from tools.bench import common, scheduler, task_breakdown
from tools.bench.common import BenchError, Summary
from tools.bench.run import BASELINE, DagVariant, failure_reason, ratios_to_baseline, select_variants


def test_summarize_takes_min_and_median_of_odd_and_even_counts() -> None:
    assert common.summarize([10.0, 1.0, 2.0]) == Summary(runs=3, min=1.0, median=2.0)
    assert common.summarize([10.0, 1.0, 2.0, 3.0]) == Summary(runs=4, min=1.0, median=2.5)


def test_summarize_refuses_no_samples() -> None:
    with pytest.raises(ValueError, match="no samples"):
        common.summarize([])


def test_speedup_divides_slow_by_fast_and_guards_zero() -> None:
    assert common.speedup(10.0, 0.5) == pytest.approx(20.0)
    assert common.speedup(10.0, 0.0) is None
    assert common.format_ratio(common.speedup(3.0, 2.0)) == "1.5x"
    assert common.format_ratio(None) == "-"


def test_format_seconds_and_min_median() -> None:
    assert common.format_seconds(0.12345) == "0.123"
    assert common.format_seconds(42.066) == "42.07"
    assert common.format_seconds(None) == "-"
    assert common.format_min_median(Summary(runs=2, min=0.5, median=1.25)) == "0.500 / 1.25"


def test_format_table_aligns_columns() -> None:
    table = common.format_table(["project", "s"], [["a", "1.000"], ["longer", "12.0"]])
    assert table.splitlines() == [
        "project |     s",
        "--------+------",
        "a       | 1.000",
        "longer  |  12.0",
    ]


def test_last_json_line_skips_logs_and_takes_the_last_object() -> None:
    output = '{"state": "old"}\n2026-01-01 [info] log line {not json}\n{"state": "success"}\n[1, 2]\n'
    assert common.last_json_line(output) == {"state": "success"}
    assert common.last_json_line("only logs\n") is None


def test_one_line_keeps_the_first_non_empty_line() -> None:
    assert common.one_line("\n`airflow db migrate` failed:\ntraceback...") == "`airflow db migrate` failed:"


def test_compiled_share_counts_modules_with_a_pyc(tmp_path: Path) -> None:
    (tmp_path / "__pycache__").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text("")
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"")
    assert common.compiled_share(tmp_path) == (3, 1)


def test_describe_bytecode_says_no_when_a_package_is_not_fully_compiled() -> None:
    state = {"PYTHONDONTWRITEBYTECODE": "1", "packages": {"x": {"modules": 2, "compiled": 1}}}
    assert common.describe_bytecode(state).startswith("venvs byte-compiled: NO")
    state["packages"]["x"] = {"modules": 1000, "compiled": 990}
    assert common.describe_bytecode(state).startswith("venvs byte-compiled: yes")
    state["packages"]["x"] = {"modules": 0, "compiled": 0}
    assert common.describe_bytecode(state).startswith("venvs byte-compiled: NO")


def test_select_variants_keeps_the_order_asked_for_and_names_unknown_dags() -> None:
    variants = (DagVariant("a", "first"), DagVariant("b", "second"))
    assert [v.dag_id for v in select_variants("b,a", variants)] == ["b", "a"]
    assert select_variants(None, variants) == list(variants)
    with pytest.raises(BenchError, match="unknown DAG\\(s\\) c; known: a, b"):
        select_variants("a,c", variants)


def test_failure_reason_names_the_tasks_that_did_not_succeed() -> None:
    summary = {"state": "failed", "tasks": {"x.run": "success", "y.run": "failed", "z.run": "upstream_failed"}}
    assert failure_reason(summary) == "state failed; tasks not successful: y.run, z.run"
    assert failure_reason(None) == "no JSON summary printed"


def test_ratios_to_baseline_divide_medians() -> None:
    results = {
        "per_model": {"dag_test": {"median": 30.0}, "wall": {"median": 40.0}},
        BASELINE: {"dag_test": {"median": 10.0}, "wall": {"median": 16.0}},
    }
    assert ratios_to_baseline(results) == {"per_model": {"dag_test": 3.0, "wall": 2.5}}
    assert ratios_to_baseline({"per_model": results["per_model"]}) == {}


def test_count_nodes_counts_renderable_resource_types(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    types = ["model", "model", "seed", "test", "snapshot", "analysis", "operation"]
    manifest.write_text(json.dumps({"nodes": {f"n{i}": {"resource_type": kind} for i, kind in enumerate(types)}}))
    assert common.count_nodes(manifest) == 5


def test_medians_by_key_uses_the_samples_that_have_each_key() -> None:
    samples = [{"load": 1.0, "build": 5.0}, {"load": 3.0}, {"load": 10.0, "build": 7.0}]
    assert common.medians_by_key(samples) == {"build": 6.0, "load": 3.0}


def test_cosmos_phases_reads_the_first_construction_only() -> None:
    log = (
        "[info] Cosmos performance (None) - [vm|1]: It took 0.82s to parse the dbt project for DAG using LoadMode.X\n"
        "[info] Cosmos performance (None) - [vm|1]: It took 0.0106s to build the Airflow DAG.\n"
        "[info] Cosmos performance (None) - [vm|1]: It took 0.007s to parse the dbt project for DAG using LoadMode.X\n"
    )
    assert common.cosmos_phases(log) == {"load": 0.82, "build": 0.0106}
    assert common.cosmos_phases("no timing here") == {}


def test_verdict_words() -> None:
    assert [common.verdict(True), common.verdict(False)] == ["OK", "FAIL"]
    assert [common.verdict(True, "MET"), common.verdict(False, "MET")] == ["MET", "NOT MET"]


def test_top_level_keeps_only_the_first_name() -> None:
    assert common.top_level({"google.cloud.storage", "google", "fastapi.routing", "os"}) == {"google", "fastapi", "os"}


def test_select_variants_in_common_takes_any_variant_list() -> None:
    variants = [DagVariant("x", "only")]
    assert common.select_variants("x", variants) == variants
    with pytest.raises(BenchError, match="unknown DAG"):
        common.select_variants(" , ", variants)
    assert common.select_variants("y,x", variants, other="scratch") == [DagVariant("y", "scratch"), variants[0]]


def test_generic_ratios_to_baseline_take_the_measures_asked_for() -> None:
    results = {"a": {"run": {"median": 9.0}}, "base": {"run": {"median": 3.0}}}
    assert common.ratios_to_baseline(results, "base", ("run",)) == {"a": {"run": 3.0}}


def test_median_sample_picks_the_middle_run_or_the_lower_middle_one() -> None:
    samples = [{"seconds": 30.0, "id": "a"}, {"seconds": 10.0, "id": "b"}, {"seconds": 20.0, "id": "c"}]
    assert common.median_sample(samples, "seconds")["id"] == "c"
    assert common.median_sample(samples[:2], "seconds")["id"] == "b"


def _log(*events: tuple[str, str]) -> str:
    lines = ["not json", json.dumps({"event": "no timestamp"})]
    lines += [json.dumps({"timestamp": f"2026-01-01T00:00:{second}Z", "event": event}) for second, event in events]
    return "\n".join(lines)


def test_dbt_timing_splits_a_task_log_into_dbt_phases() -> None:
    log = _log(
        ("00.000", "::group::Pre Execute"),
        ("00.500", "Running command: [dbt, run]"),
        ("02.500", "\u001b[0m00:00:02  Running with dbt=1.11.16"),
        ("02.700", "Unable to do partial parsing because profile has changed"),
        ("04.000", "00:00:04  Found 5 models, 3 seeds"),
        ("04.300", "Finished running 1 view model in 0.3 seconds"),
        ("05.000", "Command exited with return code 0"),
        ("06.000", "::endgroup::"),
    )
    assert task_breakdown.dbt_timing(log) == {
        "before_dbt": 0.5, "dbt_startup": 2.0, "dbt_parse": 1.5, "dbt_nodes": 0.3,
        "dbt_exit": 0.7, "after_dbt": 1.0, "dbt_total": 4.5, "full_parse": True,
    }  # fmt: skip


def test_dbt_timing_is_empty_for_a_task_that_ran_no_dbt() -> None:
    assert task_breakdown.dbt_timing(_log(("00.000", "Found 5 models"), ("01.000", "poke"))) == {}
    assert task_breakdown.dbt_timing("") == {}


def test_busy_seconds_is_the_length_of_the_union_of_intervals() -> None:
    assert common.busy_seconds([(0, 2), (1, 3), (5, 6), (5.5, 5.7)]) == pytest.approx(4.0)
    assert common.busy_seconds([]) == 0


def test_breakdown_leaves_out_the_queue_latency_of_deferred_tasks_and_sums_phases() -> None:
    tasks = [
        {"task_id": "a", "queued_dttm": 0.0, "start_date": 0.5, "end_date": 4.5, "dbt_total": 3.0},
        # a deferred task is queued again when its trigger fires, after it first started
        {"task_id": "b", "queued_dttm": 9.0, "start_date": 1.0, "end_date": 10.0},
    ]
    result = task_breakdown.breakdown(tasks, seconds=12.0)
    assert [row.get("queued_to_start") for row in result["tasks"]] == [0.5, None]
    assert result["totals"] == {
        "run": 12.0, "no_task_running": 2.5, "dbt_full_parses": 0,
        "sum_queued_to_start": 0.5, "sum_duration": 13.0, "sum_dbt_total": 3.0,
    }  # fmt: skip
    assert "no task running for 2.5 s of 12.0 s" in task_breakdown.format_breakdown(result)


def test_targets_are_measured_against_the_single_task_plus_the_dags_floor() -> None:
    def result(median: float) -> dict:
        return {"run": {"median": median}}

    results = {
        scheduler.BASELINE: result(5.0), "floor_local": result(4.0), "jaffle_shop_local": result(11.7),
        "floor_watcher": result(6.0), "jaffle_shop_watcher": result(12.0),
    }  # fmt: skip
    ratios = scheduler.floor_ratios(results)
    assert ratios["jaffle_shop_local"] == {"floor": "floor_local", "budget": 9.0, "target": 1.2, "ratio": 1.3}
    assert ratios["jaffle_shop_watcher"] == {"floor": "floor_watcher", "budget": 11.0, "target": 1.1, "ratio": 1.091}
    del results["floor_watcher"]
    assert set(scheduler.floor_ratios(results)) == {"jaffle_shop_local"}


def test_same_marts_needs_equal_fingerprints_and_the_generated_row_counts() -> None:
    run = {"customers": [100, "h1"], "orders": [99, "h2"]}
    expected = {"customers_rows": 100, "orders_rows": 99}
    results = {"a": {"runs": [{"marts": run}]}, "b": {"runs": [{"marts": dict(run)}]}}
    assert scheduler.same_marts(results, expected)
    results["b"]["runs"].append({"marts": {**run, "orders": [99, "other"]}})
    assert not scheduler.same_marts(results, expected)
    assert not scheduler.same_marts({"a": {"runs": [{"marts": run}]}}, {**expected, "orders_rows": 98})
    results["floor_local"] = {"runs": [{"marts": {}}]}  # floors build nothing (alone, a fresh database)
    assert scheduler.same_marts({"a": {"runs": [{"marts": run}]}, "floor_local": results["floor_local"]}, expected)
    assert scheduler.same_marts({"floor_local": results["floor_local"]}, expected)


def test_service_env_applies_overrides_last_and_rejects_malformed_ones(tmp_path: Path) -> None:
    from tools.postgres import ConnectionSettings

    database = ConnectionSettings("127.0.0.1", 5432, "u", "p", "d")
    env = scheduler.service_env(database, tmp_path, ["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=0.2"])
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(tmp_path.resolve())
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] == "0.2"
    assert env["BLUEPRINT_ENV"] == "dev"
    assert env["BLUEPRINT__DAGS__SCHEDULE"] == "null"
    with pytest.raises(BenchError, match="KEY=VALUE"):
        scheduler.service_env(database, None, ["NO_EQUALS_SIGN"])


def test_lever_dags_differ_from_the_shipped_ones_by_their_lever_only(jaffle_project: Path) -> None:
    import runpy

    from include.blueprint.cosmos_configs import WARM_DBT
    from include.blueprint.pipelines import declared_dags

    levers = runpy.run_path(str(REPO_ROOT / "tools" / "bench" / "lever_dags.py"))
    no_preload = runpy.run_path(str(REPO_ROOT / "tools" / "bench" / "no_preload_dags.py"))["lever_local_no_preload"]
    lever_variants = {v.dag_id for v in scheduler.VARIANTS if v.dag_id.startswith("lever_")}
    assert {*levers["LEVERS"], no_preload.dag_id} == lever_variants
    shipped = declared_dags("local", load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]"}))
    assert sorted(no_preload.task_dict) == sorted(shipped["jaffle_shop_local"].task_dict)
    cosmos_defaults = levers["lever_local_cosmos_defaults"]
    assert len(cosmos_defaults.tasks) == 16  # per node
    assert all(task.dbt_executable_path.endswith(".venvs/dbt/bin/dbt") for task in cosmos_defaults.tasks)
    assert levers["lever_local_node_warm"].tasks[0].dbt_executable_path == str(WARM_DBT)
    consumers = [t for t in levers["lever_watcher_cosmos_defaults"].tasks if t.task_id != "dbt_producer_watcher"]
    assert {(t.deferrable, t.poke_interval) for t in consumers} == {(True, 10)}
    assert [t.task_id for t in levers["lever_local_layer"].tasks] == [
        "dbt_build_seeds", "dbt_build_staging", "dbt_build_marts"
    ]  # fmt: skip
    assert {task.env["WARM_DBT_WARM_UP"] for task in levers["lever_local_no_warm_up"].tasks} == {"0"}
    for dag_id in ("lever_local_no_manifest_cache", "lever_single_task_no_manifest_cache"):
        assert {task.env["WARM_DBT_MANIFEST_CACHE"] for task in levers[dag_id].tasks} == {"0"}
    assert set(scheduler.FLOORS) == {v.dag_id for v in scheduler.VARIANTS if v.dag_id.startswith("floor_")}


def test_floor_dags_copy_the_shipped_task_graph_with_tasks_that_do_nothing(
    jaffle_project: Path, tmp_path: Path
) -> None:
    import runpy
    import shutil
    import subprocess
    import sys

    from airflow.providers.standard.operators.python import PythonOperator

    from include.blueprint.pipelines import declared_dags

    graphs = scheduler.floor_graphs(dict(os.environ))
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(REPO_ROOT / "tools" / "bench" / "floor_dags.py", folder / "floors.py")
    (folder / "floor_graphs.json").write_text(json.dumps(graphs))
    probe = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith(('cosmos.operators', 'cosmos.converter', 'include'))))"
    )
    imported = subprocess.run([sys.executable, "-c", probe, str(folder / "floors.py")], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr[-2000:]
    assert imported.stdout.strip() == "[]", "a floor DAG file must parse as plain Airflow"
    floors = runpy.run_path(str(folder / "floors.py"))
    config = load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local, watcher]"})
    for floor_id, (mode, shipped_id) in scheduler.FLOORS.items():
        shipped, floor = declared_dags(mode, config)[shipped_id], floors[floor_id]
        assert {task.task_id: task.upstream_task_ids for task in floor.tasks} == {
            task.task_id: task.upstream_task_ids for task in shipped.tasks
        }, floor_id
        assert all(type(task) is PythonOperator and task.python_callable() is None for task in floor.tasks)


def test_aci_dags_have_one_dag_per_granularity_with_the_planned_tasks(
    jaffle_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    from tools.bench import aci

    for key, value in aci.OVERRIDES.items():
        monkeypatch.setenv(key, value)
    dags = runpy.run_path(str(REPO_ROOT / "tools" / "bench" / "aci_dags.py"))
    task_counts = {name: len(dags[name].tasks) for name in ("aci_node", "aci_model", "aci_layer", "aci_project")}
    assert task_counts == {"aci_node": 16, "aci_model": 11, "aci_layer": 3, "aci_project": 1}
    assert [task.task_id for task in dags[aci.SCHEDULER_BASELINE].tasks] == ["dbt_build"]
    operators = {type(task).__name__ for name in task_counts for task in dags[name].tasks}
    assert operators == {"DbtBuildAzureContainerInstanceOperator", "DbtRunAzureContainerInstanceOperator",
                         "DbtSeedAzureContainerInstanceOperator", "DbtTestAzureContainerInstanceOperator"}  # fmt: skip


def test_aci_bench_refuses_dags_under_the_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.bench import aci

    with pytest.raises(SystemExit):
        aci.parse_args(["--scheduler", "--dags", "jaffle_shop_azure_container_instance"])
    assert "--dags is for dag.test() runs" in capsys.readouterr().err
    assert aci.parse_args([]).dags == aci.DEFAULT_DAGS


def test_service_cost_delta_is_per_minute_and_per_run() -> None:
    from tools.bench.service_cost import DB_COUNTERS, CostSample, delta, format_cost

    counters = dict.fromkeys(DB_COUNTERS, 0)
    before = CostSample(100.0, {"scheduler": 1.0, "scheduler+executor": 2.0}, counters)
    after = CostSample(130.0, {"scheduler": 2.5, "scheduler+executor": 8.0}, {**counters, "xact_commit": 600})
    cost = delta(before, after, runs=3)
    assert cost["minutes"] == 0.5
    assert cost["cpu_seconds_per_minute"] == {"scheduler": 3.0, "scheduler+executor": 12.0}
    assert cost["cpu_seconds_per_run"] == {"scheduler": 0.5, "scheduler+executor": 2.0}
    assert cost["db_per_minute"]["xact_commit"] == 1200
    assert cost["db_per_run"]["xact_commit"] == 200
    assert "db_per_run" not in delta(before, after)  # idle: no runs
    table = format_cost({"runs": cost, "idle": None}).splitlines()
    assert len(table) == 3  # headers, rule, the runs row (no idle row)
    assert table[2].split("|")[2].strip() == "3.00"  # the scheduler's CPU seconds per minute


def test_process_cpu_counts_a_process_and_optionally_its_children() -> None:
    from tools.bench.service_cost import process_cpu

    assert process_cpu(os.getpid()) > 0
    assert process_cpu(os.getpid(), with_children=True) >= process_cpu(os.getpid())
    assert process_cpu(2**22 + 12345) == 0.0  # no such process


def test_the_suite_report_sums_per_suite_and_takes_the_whole_run_from_the_spans() -> None:
    from tools.bench import test_suite

    def record(test: str, worker: str, start: float, end: float, cpu_start: float, cpu_end: float) -> dict:
        return {"test": test, "worker": worker, "wall": end - start, "cpu": cpu_end - cpu_start,
                "span": [start, end], "cpu_span": [cpu_start, cpu_end], "load": 1.0}  # fmt: skip

    records = [  # two workers, overlapping: the per-test sums count 0-60 s twice
        record("tests/unit/test_a.py::test_one", "gw0", 0, 60, 0, 90),
        record("tests/integration/test_b.py::test_two", "gw1", 0, 120, 0, 150),
    ]
    run = test_suite.whole_run(records)
    assert (run.wall, run.cpu) == (120, 150)
    report = test_suite.report(records, files=1, cores=2)
    assert "| unit | 1 | 1.0 | 1.5 | 1.50 |" in report
    assert "| integration | 1 | 2.0 | 2.5 | 1.25 |" in report
    assert "| tests/integration/test_b.py | 1 | 2.0 | 2.5 | 1.25 |" in report
    assert "test_a.py |" not in report  # only the longest file
    assert "2.0 min on 2 worker(s), the machine busy for 2.5 CPU min (1.25 of its 2 cores)" in report
    assert "spread over 2 cores, takes 1.2 min" in report
