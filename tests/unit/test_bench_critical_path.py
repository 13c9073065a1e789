"""tools/bench/critical_path.py: the longest chain of a project's tasks, and the DAG it declares
for `tools.bench.scheduler --critical-path` next to the shipped ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import load_settings
from tools.bench import critical_path, scheduler


def _node(name: str, kind: str = "model", parents: tuple[str, ...] = (), **config: str) -> tuple[str, dict]:
    node = {"name": name, "resource_type": kind, "fqn": ["p", name], "depends_on": {"nodes": list(parents)}}
    return f"{kind}.p.{name}", {**node, "config": config}


def _chain(*nodes: tuple[str, dict]) -> list[str]:
    return [selector.removeprefix("fqn:p.") for selector in critical_path.longest_chain({"nodes": dict(nodes)})]


def test_the_longest_chain_runs_from_a_root_to_the_deepest_task_and_selects_by_fqn() -> None:
    chain = _chain(
        _node("raw", "seed"),
        _node("a", parents=("seed.p.raw",)),
        _node("b", parents=("seed.p.raw",)),
        _node("c", parents=("model.p.a", "model.p.b")),
        _node("short", parents=("seed.p.raw",)),
        _node("d", parents=("model.p.c", "model.p.short")),  # short is not on the chain
        _node("not_null_d_id", "test", parents=("model.p.d",)),  # runs in d's task: no level of its own
    )
    assert chain == ["raw", "b", "c", "d"]  # of the equal chains through a and b, the greater id
    selectors = critical_path.longest_chain({"nodes": dict([_node("raw", "seed")])})
    assert selectors == ["fqn:p.raw"]  # a bare name would also match a folder or a package of that name


def test_a_test_reading_several_nodes_is_a_level_and_brings_its_other_parents() -> None:
    side = _node("side", parents=("seed.p.raw",))
    chain = [_node("raw", "seed"), _node("a", parents=("seed.p.raw",)), _node("b", parents=("model.p.a",))]
    assert _chain(*chain, side, _node("relationships_b_side", "test", parents=("model.p.b", "model.p.side"))) == [
        "raw", "a", "b", "side"
    ]  # fmt: skip
    # A model against a source: Cosmos runs it as a task of its own too; the source is no task.
    deeper = [_node("x", parents=("seed.p.raw",)), _node("y", parents=("model.p.x",))]
    two_sided = _node("b_matches_source", "test", parents=("model.p.b", "source.p.s.t"))
    assert _chain(*chain, *deeper, two_sided) == ["raw", "a", "b"]  # b's test is level 4, y only level 3
    assert _chain(*chain, *deeper) == ["raw", "x", "y"]  # without it, y wins the tie with b


def test_an_ephemeral_model_adds_no_level() -> None:
    ephemerals = [
        _node("e1", parents=("seed.p.raw",), materialized="ephemeral"),
        _node("e2", parents=("model.p.e1",), materialized="ephemeral"),
        _node("x", parents=("model.p.e2",)),
    ]
    tables = [_node("a", parents=("seed.p.raw",)), _node("b", parents=("model.p.a",))]
    assert _chain(_node("raw", "seed"), *ephemerals, *tables) == ["raw", "a", "b"]


def test_a_manifest_without_built_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="no model, seed or snapshot"):
        critical_path.longest_chain({"nodes": dict([_node("t", "test")])})


def _depth(dag) -> int:
    levels: dict[str, int] = {}
    for task in dag.topological_sort():
        levels[task.task_id] = 1 + max((levels[up] for up in task.upstream_task_ids), default=0)
    return max(levels.values())


def test_the_chain_dag_is_as_deep_as_the_whole_one_and_the_shipped_dags_are_unchanged(jaffle_project: Path) -> None:
    override = critical_path.settings_override(jaffle_project / "target" / "manifest.json")
    local_only = {**os.environ, "BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]"}
    shipped = declared_dags("local", load_settings(local_only))
    dags = declared_dags("local", load_settings({**local_only, **override}))
    chain, whole = dags[critical_path.DAG_ID], dags["jaffle_shop_local"]
    for dag_id, dag in shipped.items():
        assert {t.task_id: t.upstream_task_ids for t in dags[dag_id].tasks} == {
            t.task_id: t.upstream_task_ids for t in dag.tasks
        }, dag_id
    # jaffle_shop's deepest task is a relationships test reading two marts, after both of them.
    assert _depth(chain) == _depth(whole) == 4
    assert len(chain.tasks) == 5 < len(whole.tasks), [task.task_id for task in chain.tasks]
    floors = scheduler.floor_graphs({**os.environ, **override}, scheduler.CRITICAL_PATH_FLOORS)
    assert floors["floor_critical_path"] == {t.task_id: sorted(t.upstream_task_ids) for t in chain.tasks}


def test_the_benchmark_runs_the_chain_next_to_the_whole_dag_and_refuses_what_would_break_it() -> None:
    floors = {v.dag_id for v in scheduler.CRITICAL_PATH_VARIANTS if v.dag_id.startswith("floor_")}
    assert floors == set(scheduler.CRITICAL_PATH_FLOORS)
    assert {"jaffle_shop_local", scheduler.BASELINE, critical_path.DAG_ID} <= set(scheduler.CRITICAL_PATH_DAGS)
    for argv in (
        ["--critical-path", "--dags", f"jaffle_shop_local,{critical_path.DAG_ID}"],  # nothing builds its inputs
        ["--critical-path", "--env", "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS=[]"],  # would be overridden unseen
    ):
        with pytest.raises(SystemExit):
            scheduler.parse_args(argv)
    assert scheduler.parse_args(["--critical-path"]).critical_path
