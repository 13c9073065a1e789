"""DAG declarations: several DAGs per project as data, and the catalogue of refusals, each one line
naming the declaration and the way out. Built against jaffle_shop's real manifest; no database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from include.blueprint.assets import built_references
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import BlueprintConfigError, load_settings

STAGING = ["path:models/staging"]
MARTS = ["path:models/marts"]


def _dags(declarations: list[dict], mode: str = "local", **env: str) -> dict:
    environ = {"BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump(declarations, default_flow_style=True), **env}
    return declared_dags(mode, load_settings(environ))


def _problems(declarations: list[dict], **env: str) -> list[str]:
    with pytest.raises(BlueprintConfigError) as caught:
        _dags(declarations, **env)
    header, *lines = str(caught.value).splitlines()
    assert header.startswith("invalid DAG declarations"), header
    return [line.removeprefix("  - ") for line in lines]


def test_several_dags_per_project_each_with_its_selection_schedule_and_policy(registered_projects: dict) -> None:
    dags = _dags([
        {"id": "{project}_staging_hourly", "select": ["path:seeds", *STAGING], "schedule": "@hourly",
         "owner": "analytics", "tags": ["hourly"], "retries": 3},
        {"id": "{project}_marts", "select": MARTS,
         "schedule": {"assets": ["jaffle_shop.stg_orders", "jaffle_shop.stg_payments"]}},
    ])  # fmt: skip
    hourly, marts = dags["jaffle_shop_staging_hourly"], dags["jaffle_shop_marts"]
    assert built_references(hourly) == {
        "jaffle_shop.raw_customers", "jaffle_shop.raw_orders", "jaffle_shop.raw_payments",
        "jaffle_shop.stg_customers", "jaffle_shop.stg_orders", "jaffle_shop.stg_payments",
    }  # fmt: skip
    assert built_references(marts) == {"jaffle_shop.customers", "jaffle_shop.orders"}
    assert hourly.tags == {"hourly", "jaffle_shop"}
    assert {(task.owner, task.retries) for task in hourly.tasks} == {("analytics", 3)}
    assert {(task.owner, task.retries) for task in marts.tasks} == {("data-platform", 1)}
    assert str(hourly.timetable.expression) == "0 * * * *"
    assert sorted(asset.uri for asset in marts.timetable.asset_condition.objects) == [
        "dbt://jaffle_shop/stg_orders", "dbt://jaffle_shop/stg_payments",
    ]  # fmt: skip


def test_layer_granularity_on_a_selection_builds_only_the_selection(registered_projects: dict) -> None:
    dags = _dags([{"id": "{project}_marts_by_layer", "select": MARTS, "granularity": "layer"}])
    dag = dags["jaffle_shop_marts_by_layer"]
    assert dag.task_ids == ["dbt_build_marts"]
    assert dag.get_task("dbt_build_marts").select == ["fqn:jaffle_shop.marts.customers", "fqn:jaffle_shop.marts.orders"]
    assert built_references(dag) == {"jaffle_shop.customers", "jaffle_shop.orders"}


def test_a_test_reading_a_model_outside_the_selection_is_left_out_as_dbt_would(registered_projects: dict) -> None:
    [dag] = _dags([{"id": "{project}_part", "select": ["path:seeds", "stg_orders", "stg_customers"]}]).values()
    assert "relationships_stg_orders_customer_id__customer_id__ref_stg_customers__test" in dag.task_ids
    assert not [task_id for task_id in dag.task_ids if "stg_payments" in task_id]  # not selected, nor its test
    dag.check_cycle()


def test_a_single_task_on_a_selection_builds_the_selected_nodes_by_name(registered_projects: dict) -> None:
    [dag] = _dags([{"id": "{project}_marts_once", "select": MARTS, "granularity": "project"}]).values()
    [task] = dag.tasks
    assert (task.select, task.indirect_selection) == (
        ["fqn:jaffle_shop.marts.customers", "fqn:jaffle_shop.marts.orders"], "cautious",
    )  # fmt: skip
    assert built_references(dag) == {"jaffle_shop.customers", "jaffle_shop.orders"}


def test_the_asset_uris_name_the_project_and_model_not_the_warehouse(registered_projects: dict) -> None:
    [dag] = _dags([{}], BLUEPRINT__EXECUTION__GRANULARITY="project").values()
    [task] = dag.tasks
    uris = sorted(asset.uri for asset in task.outlets)
    assert "dbt://jaffle_shop/customers" in uris
    assert all(uri.startswith("dbt://jaffle_shop/") for uri in uris)


def test_the_trigger_form_offers_full_refresh_and_dbt_vars(registered_projects: dict) -> None:
    [dag] = _dags([{"select": MARTS}]).values()
    assert dag.params["full_refresh"] is False
    assert dag.params["dbt_vars"] == {}
    task = dag.get_task("customers_model_build")
    assert (task.full_refresh, task.vars) == ("{{ params.full_refresh }}", "{{ params.dbt_vars | tojson }}")


CATALOGUE = {
    "an asset schedule on its own model": (
        [{"select": MARTS, "schedule": {"assets": ["jaffle_shop.orders"]}}],
        r"schedule asset jaffle_shop\.orders is built by this DAG itself, which would then start itself",
    ),
    "source freshness without a source": (
        [{"source_freshness": True}],
        r"\(jaffle_shop_local\): source_freshness: the selection reads no dbt source; drop source_freshness",
    ),
    "no DAG in the enabled modes": (
        [{"mode": "docker"}],
        r"projects\.jaffle_shop: no DAG of this enabled project runs in the enabled modes \(local, watcher\)",
    ),
    "selects nothing": (
        [{"select": ["tag:no_such_tag"]}],
        r"projects\.jaffle_shop\.dags\[0\] \(jaffle_shop_local\): the selection builds no model, seed or snapshot",
    ),
    "two DAGs build one model": (
        [
            {"id": "{project}_a", "select": MARTS, "mode": "local"},
            {"id": "{project}_b", "select": ["customers"], "mode": "local"},
        ],
        r"jaffle_shop\.customers is built by jaffle_shop_a, jaffle_shop_b; select it in one DAG only, "
        r"or set allow_overlap: true",
    ),
    "asset schedule on a model no DAG builds": (
        [{"select": MARTS, "schedule": {"assets": ["jaffle_shop.stg_orders"]}}],
        r"\(jaffle_shop_local\): schedule asset jaffle_shop\.stg_orders is built by no DAG of this deployment",
    ),
    "asset on another project": (
        [{"schedule": {"assets": ["finance.revenue"]}}],
        r"schedule asset finance\.revenue is built by no DAG",
    ),
    "one id for several modes": (
        [{"id": "nightly"}],
        r"projects\.jaffle_shop\.dags\[0\]: id 'nightly' names one DAG for 2 modes; add \{mode\} or set mode",
    ),
    "the same id twice": (
        [{"id": "{project}_x_{mode}", "select": MARTS}, {"id": "{project}_x_{mode}", "select": STAGING}],
        r"projects\.jaffle_shop\.dags\[1\]: DAG id 'jaffle_shop_x_local' is also declared by "
        r"projects\.jaffle_shop\.dags\[0\]",
    ),
    "an unknown selector": (
        [{"selector": "nightly"}],
        r"\(jaffle_shop_local\): selector 'nightly' is not in jaffle_shop's selectors\.yml",
    ),
    "a granularity the mode cannot build": (
        [{"mode": "local", "granularity": "layer"}, {"mode": "watcher", "granularity": "layer", "id": "w"}],
        r"projects\.jaffle_shop\.dags\[1\]: granularity 'layer' is not possible in mode watcher; use node",
    ),
}


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_each_bad_declaration_is_refused_in_one_line(registered_projects: dict, case: str) -> None:
    declarations, pattern = CATALOGUE[case]
    problems = _problems(declarations, BLUEPRINT__EXECUTION__ENABLED_MODES="[local, watcher]")
    assert any(re.search(pattern, line) for line in problems), problems
    assert all("\n" not in line for line in problems)


def test_allow_overlap_lets_two_dags_build_one_model(registered_projects: dict) -> None:
    dags = _dags(
        [{"id": "{project}_a", "select": MARTS}, {"id": "{project}_b", "select": MARTS, "allow_overlap": True}]
    )
    assert set(dags) == {"jaffle_shop_a", "jaffle_shop_b"}


SETTINGS_CATALOGUE = {
    "select and selector at once": ({"select": MARTS, "selector": "x"}, "use either selector or select/exclude"),
    "an unknown id placeholder": ({"id": "{team}_{mode}"}, "unknown placeholder {team}"),
    "an asset written without its project": ({"schedule": {"assets": ["customers"]}}, "write each asset as"),
    "an unknown key": ({"selecter": "x"}, "selecter: unknown setting"),
    "an unknown mode": ({"mode": "fargate"}, "dags.0.mode: Input should be"),
}


@pytest.mark.parametrize("case", sorted(SETTINGS_CATALOGUE))
def test_each_malformed_declaration_is_refused_with_its_location(case: str) -> None:
    declaration, fragment = SETTINGS_CATALOGUE[case]
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings({"BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration])})
    lines = [line for line in str(caught.value).splitlines() if "projects.jaffle_shop.dags" in line]
    assert any(fragment in line for line in lines), str(caught.value)


def test_a_disabled_project_shows_no_dag(registered_projects: dict, tmp_path: Path) -> None:
    assert declared_dags("local", load_settings({"BLUEPRINT__PROJECTS__JAFFLE_SHOP__ENABLED": "false"})) == {}
