"""Runtime names satisfy every runtime's rules and stay unique, for real and adversarial dbt nodes."""

from __future__ import annotations

import json
from itertools import product

import pytest

from include.blueprint.names import MAX_LENGTH, NAME_RULE, runtime_name, slug
from tests.conftest import JAFFLE_PROJECT

ADVERSARIAL_TASK_IDS = [
    "stg_customers.run",
    "STG_Customers.RUN",
    "a" * 300 + ".run",
    "model.with.many.dots.and_underscores.test",
    "modèle_données_ünïcode.run",
    "модель.run",
    "模型.run",
    "🙂.run",
    "123_starts_with_digits.run",
    "___",
    "-leading-and-trailing-",
    "",
]


def _assert_valid(name: str) -> None:
    assert len(name) <= MAX_LENGTH, name
    assert NAME_RULE.match(name), name


@pytest.mark.parametrize("task_id", ADVERSARIAL_TASK_IDS)
def test_adversarial_task_ids_give_valid_names(task_id: str) -> None:
    _assert_valid(runtime_name("jaffle_shop_azure_container_instance", task_id, "manual__2026-11-23T10:00:00+00:00"))


def test_every_node_of_the_manifest_gets_a_valid_unique_name(jaffle_project) -> None:
    manifest = json.loads((JAFFLE_PROJECT / "target" / "manifest.json").read_text())
    task_ids = [f"{node['name']}.{suffix}" for node in manifest["nodes"].values() for suffix in ("run", "test")]
    dag_ids = ["jaffle_shop_docker", "jaffle_shop_azure_container_instance", "x" * 200]
    names = [runtime_name(dag_id, task_id, "scheduled__2026-01-01") for dag_id, task_id in product(dag_ids, task_ids)]
    for name in names:
        _assert_valid(name)
    assert len(set(names)) == len(names)


def test_names_that_slug_alike_stay_distinct() -> None:
    lookalikes = ["a_b.run", "a.b.run", "A-B.run", "a__b.run", "a b.run"]
    assert len({slug(task_id) for task_id in lookalikes}) == 1
    assert len({runtime_name("dag", task_id) for task_id in lookalikes}) == len(lookalikes)


def test_each_run_map_index_and_try_gets_its_own_name() -> None:
    variants = [
        runtime_name("dag", "stg_orders.run", run_id, map_index, try_number)
        for run_id, map_index, try_number in product(["manual__1", "manual__2"], [-1, 0, 1], [1, 2])
    ]
    assert len(set(variants)) == len(variants)


def test_the_same_task_instance_always_gets_the_same_name() -> None:
    # Deleting a container group after a killed task needs its name to be reproducible.
    assert runtime_name("dag", "t.run", "r", -1, 3) == runtime_name("dag", "t.run", "r", -1, 3)


def test_long_names_keep_a_readable_start() -> None:
    name = runtime_name("jaffle_shop", "fct_very_long_model_name_" * 10 + ".run", "r")
    assert name.startswith("dbt-jaffle-shop-fct-very-long-model-name")
    assert len(name) == MAX_LENGTH


def test_the_prefix_is_configurable_and_the_limit_can_be_lower() -> None:
    name = runtime_name("dag", "task.run", prefix="etl", max_length=30)
    assert name.startswith("etl-dag-task-run-")
    _assert_valid(name)
    assert len(name) <= 30
