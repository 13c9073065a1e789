"""The render shortcuts change no DAG: every DAG of every mode (BLUEPRINT_ENV=all-modes) dumps
the same with BLUEPRINT_RENDER_SHORTCUTS=0 and =1, each built in a fresh process. The dump holds
task ids, operator classes, upstreams, outlets and every operator attribute (tools/dag_dump.py).
The 1,000-model case is in tests/integration/test_render_unchanged_at_scale.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include.blueprint.dag_specs import dag_specs
from include.blueprint.settings import load_settings
from tests.dags.test_dag_integrity import DECLARED, JAFFLE_SHOP_MODEL_TASKS
from tests.render_dumps import differences, dump, outlet_uris


def test_every_dag_of_every_mode_is_the_same_with_and_without_the_shortcuts(jaffle_project: Path, tmp_path: Path):
    # Different string hashing in each process: a DAG must not depend on it (include/blueprint/cosmos_order.py).
    env = {"BLUEPRINT_ENV": "all-modes"}
    before = dump(tmp_path / "before.json", False, "--dags-folder", "dags", env={**env, "PYTHONHASHSEED": "1"})
    after = dump(tmp_path / "after.json", True, "--dags-folder", "dags", env={**env, "PYTHONHASHSEED": "2"})
    # Not an empty comparison: every DAG declared for every mode, each with tasks.
    declared = {spec.dag_id for spec in dag_specs(load_settings({**os.environ, **env}))}
    assert declared, "no DAG declared for any mode"
    assert declared <= after.keys(), f"missing from the dump: {sorted(declared - after.keys())}"
    assert all(dumped["tasks"] for dumped in after.values()), "a DAG dumped without tasks"
    if "jaffle_shop_local" in after:  # the golden case, with its assets, where jaffle_shop is registered
        local = {task_id: set(task["upstream"]) for task_id, task in after["jaffle_shop_local"]["tasks"].items()}
        assert local == JAFFLE_SHOP_MODEL_TASKS, local
        assert "dbt://jaffle_shop/customers" in outlet_uris(after, "jaffle_shop_local")
    assert before == after, "the render shortcuts changed the DAGs:\n" + "\n".join(differences(before, after))


@pytest.mark.skipif("jaffle_shop_local" not in DECLARED, reason="the render benchmark measures jaffle_shop")
def test_the_benchmarks_plain_floor_plans_the_same_graph_as_our_dag(jaffle_project: Path):
    """tools/bench/plain_dag.py, the render benchmark's plain-Airflow floor, is a fair comparison
    only while it builds the graph our per-model DAG has."""
    from include.blueprint.modes import build_dbt_dag
    from tools.bench import plain_dag

    ours = build_dbt_dag("render_plain_check", "local")
    planned = plain_dag.plan(plain_dag.read_manifest(jaffle_project / "target" / "manifest.json"))
    assert {task.task_id: set(task.upstream) for task in planned} == {
        task.task_id: task.upstream_task_ids for task in ours.tasks
    }


def test_a_task_builds_only_its_own_dag_and_builds_it_unchanged(tmp_path: Path):
    """A task's process parses its DAG file with Airflow's parsing context set to its DAG: only that
    DAG of the file is built (include/blueprint/pipelines.py), exactly as the DAG processor builds it."""
    env = {"BLUEPRINT_ENV": "all-modes"}
    specs = dag_specs(load_settings({**os.environ, **env}))
    by_mode: dict[str, list[str]] = {}
    for spec in specs:
        by_mode.setdefault(spec.mode, []).append(spec.dag_id)
    mode, dag_ids = max(by_mode.items(), key=lambda item: len(item[1]))
    assert len(dag_ids) > 1, f"no mode declares two DAGs, so nothing shows that the others are skipped: {by_mode}"
    full = dump(tmp_path / "full.json", True, "--dags-folder", "dags", env=env)
    context = {**env, "_AIRFLOW_PARSING_CONTEXT_DAG_ID": dag_ids[0]}
    in_task = dump(tmp_path / "task.json", True, "--dags-folder", "dags", env=context)
    assert in_task[dag_ids[0]] == full[dag_ids[0]], "\n".join(differences(full[dag_ids[0]], in_task[dag_ids[0]]))
    assert not set(dag_ids[1:]) & in_task.keys(), f"the task's process built the other {mode} DAGs too"
    others = {dag_id for dag_id, specs_mode in ((s.dag_id, s.mode) for s in specs) if specs_mode != mode}
    assert others, f"every DAG is declared in {mode}: nothing shows that the other files are unaffected"
    assert others <= in_task.keys(), "the other DAG files must still build all their DAGs"
