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
        _node("d", parents=("model.p.c", "seed.p.raw")),
        _node("short", parents=("seed.p.raw",)),
        _node("not_null_d_id", "test", parents=("model.p.d",)),  # deeper, but a test is not built
    ])}  # fmt: skip
    # Of the equal paths through a and b, the one through the greater unique id.
    assert critical_path.longest_chain(manifest) == ["raw", "b", "c", "d"]


def test_a_manifest_without_built_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="no model, seed or snapshot"):
        critical_path.longest_chain({"nodes": dict([_node("t", "test")])})


def test_the_declared_dags_are_the_chain_per_model_and_the_whole_project_in_one_task(jaffle_project: Path) -> None:
    manifest = json.loads((jaffle_project / "target" / "manifest.json").read_text())
    chain = critical_path.longest_chain(manifest)
    override = critical_path.settings_override(jaffle_project / "target" / "manifest.json")
    config = load_settings({**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]", **override})
    dags = declared_dags("local", config)
    per_model, single = dags["jaffle_shop_local"], dags["jaffle_shop_local_single_task"]
    assert len(chain) >= 3  # seed, staging, mart at least
    assert len(per_model.tasks) == len(chain)  # one task per chain node, its tests inside it
    assert all(any(name in task.task_id for name in chain) for task in per_model.tasks)
    assert [len(task.upstream_task_ids) for task in per_model.topological_sort()] == [0] + [1] * (len(chain) - 1)
    assert [task.task_id for task in single.tasks] == ["dbt_build"]
    assert not single.tasks[0].select  # the single task builds everything
