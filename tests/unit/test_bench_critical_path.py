"""tools/bench/critical_path.py: the longest chain of a project's models, and the DAGs it declares
for `tools.bench.scheduler --critical-path`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import load_settings
from tools.bench import critical_path


def _node(name: str, kind: str = "model", parents: tuple[str, ...] = ()) -> tuple[str, dict]:
    return f"{kind}.p.{name}", {"name": name, "resource_type": kind, "depends_on": {"nodes": list(parents)}}


def test_the_longest_chain_runs_from_a_root_to_the_deepest_node_through_built_nodes_only() -> None:
    manifest = {"nodes": dict([
        _node("raw", "seed"),
        _node("a", parents=("seed.p.raw",)),
        _node("b", parents=("seed.p.raw",)),
        _node("c", parents=("model.p.a", "model.p.b", "source.p.s.t")),  # a source is no task
        _node("short", parents=("seed.p.raw",)),
        _node("d", parents=("model.p.c", "model.p.short")),  # short is not on the chain
        _node("not_null_d_id", "test", parents=("model.p.d",)),  # runs in d's task: no level of its own
    ])}  # fmt: skip
    # Of the equal paths through a and b, the one through the greater unique id.
    assert critical_path.longest_chain(manifest) == ["raw", "b", "c", "d"]


def test_a_test_reading_several_models_is_a_level_and_brings_its_other_parents() -> None:
    manifest = {"nodes": dict([
        _node("raw", "seed"),
        _node("a", parents=("seed.p.raw",)),
        _node("b", parents=("model.p.a",)),
        _node("side", parents=("seed.p.raw",)),
        _node("relationships_b_side", "test", parents=("model.p.b", "model.p.side")),
    ])}  # fmt: skip
    assert critical_path.longest_chain(manifest) == ["raw", "a", "b", "side"]


def test_a_manifest_without_built_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="no model, seed or snapshot"):
        critical_path.longest_chain({"nodes": dict([_node("t", "test")])})


def _depth(dag) -> int:
    levels: dict[str, int] = {}
    for task in dag.topological_sort():
        levels[task.task_id] = 1 + max((levels[up] for up in task.upstream_task_ids), default=0)
    return max(levels.values())


def test_the_declared_dags_are_as_deep_as_the_whole_dag_and_the_single_task_builds_everything(
    jaffle_project: Path,
) -> None:
    manifest_path = jaffle_project / "target" / "manifest.json"
    chain = critical_path.longest_chain(json.loads(manifest_path.read_text()))
    whole = declared_dags("local", load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]"}))
    override = critical_path.settings_override(manifest_path)
    config = load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]", **override})
    dags = declared_dags("local", config)
    per_model, single = dags["jaffle_shop_local"], dags["jaffle_shop_local_single_task"]
    # jaffle_shop's deepest task is a relationships test reading two marts, after both of them.
    assert _depth(per_model) == _depth(whole["jaffle_shop_local"]) == 4
    assert len(per_model.tasks) == len(chain) + 1, [task.task_id for task in per_model.tasks]
    assert len(per_model.tasks) < len(whole["jaffle_shop_local"].tasks)
    assert [task.task_id for task in single.tasks] == ["dbt_build"]
    assert not single.tasks[0].select  # the single task builds everything
