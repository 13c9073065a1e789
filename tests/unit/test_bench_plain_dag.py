"""tools/bench/plain_dag.py: the plain-Airflow floor of the render benchmark plans Cosmos's
per-model graph from a manifest (tests/dags/test_render_unchanged.py compares it with the real DAG)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bench import plain_dag


def node(kind: str, name: str, parents: list[str], materialized: str = "table") -> tuple[str, dict]:
    return f"{kind}.p.{name}", {
        "resource_type": kind,
        "name": name,
        "fqn": ["p", name],
        "depends_on": {"nodes": parents},
        "config": {"materialized": materialized},
    }


MANIFEST = {
    "nodes": dict(
        [
            node("seed", "raw", []),
            node("model", "stg", ["seed.p.raw"]),
            node("model", "eph", ["model.p.stg"], materialized="ephemeral"),
            node("model", "mart", ["model.p.stg", "source.p.s.t"]),
            node("test", "unique_stg_id", ["model.p.stg"]),
            node("test", "rel_mart_stg", ["model.p.mart", "model.p.stg"]),
        ]
    )
}


def test_plan_has_a_build_per_model_and_seed_and_a_task_per_shared_test():
    tasks = {task.task_id: task for task in plain_dag.plan(MANIFEST)}
    assert {task_id: task.upstream for task_id, task in tasks.items()} == {
        "raw_seed_build": (),
        "stg_model_build": ("raw_seed_build",),
        "mart_model_build": ("stg_model_build",),
        "rel_mart_stg_test": ("mart_model_build", "stg_model_build"),
    }
    assert tasks["stg_model_build"].exclude == ("rel_mart_stg",)
    assert tasks["stg_model_build"].select == "fqn:p.stg"
    assert (tasks["rel_mart_stg_test"].command, tasks["rel_mart_stg_test"].select) == ("test", "rel_mart_stg")


def test_the_bash_command_carries_selection_project_and_trigger_params():
    task = next(task for task in plain_dag.plan(MANIFEST) if task.task_id == "stg_model_build")
    command = plain_dag.dbt_command(task, "/venv/bin/dbt", Path("/p"))
    assert command.startswith("/venv/bin/dbt build --select fqn:p.stg --exclude rel_mart_stg --project-dir /p")
    assert "params.dbt_vars" in command
    assert "params.full_refresh" in command


@pytest.mark.parametrize("operator", plain_dag.OPERATORS)
def test_build_makes_that_graph_with_the_operator(tmp_path: Path, operator: str):
    import datetime as dt

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(MANIFEST))
    arguments = {"dag_id": "plain", "schedule": None, "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    dag = plain_dag.build(arguments, tmp_path, manifest, operator, dbt="dbt")
    assert {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks} == {
        "raw_seed_build": [],
        "stg_model_build": ["raw_seed_build"],
        "mart_model_build": ["stg_model_build"],
        "rel_mart_stg_test": ["mart_model_build", "stg_model_build"],
    }
    expected = "EmptyOperator" if operator == "empty" else "BashOperator"
    assert {type(task).__name__ for task in dag.tasks} == {expected}


def test_an_unknown_operator_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown plain operator 'python'; known: empty, bash"):
        plain_dag.build({"dag_id": "plain"}, tmp_path, tmp_path / "manifest.json", "python")


def test_a_compared_variant_gets_wall_and_cpu_ratios_and_a_graph_check():
    from tools.bench import common, render

    def run(seconds: float, cpu: float, upstreams: dict) -> dict:
        return {"seconds": seconds, "cpu_seconds": cpu, "upstreams": upstreams}

    graph = {"a": [], "b": ["a"]}
    ours = [run(0.6, 0.5, graph), run(0.8, 0.6, graph), run(1.0, 0.7, graph)]
    plain = [run(0.3, 0.2, graph), run(0.4, 0.3, graph), run(0.9, 0.4, graph)]
    result = render.compared_result(ours, plain, common.summarize([0.6, 0.8, 1.0]))
    assert result["ratio"] == pytest.approx(2.0)
    assert result["cpu_ratio"] == pytest.approx(2.0)
    assert result["same_graph"]
    plain[1] = run(0.4, 0.3, {"a": [], "b": []})
    assert not render.compared_result(ours, plain, common.summarize([0.6, 0.8, 1.0]))["same_graph"]
