"""The benchmarks' pure helpers: statistics, ratios, the printed table and child-output parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench import common
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
