"""The main job's report of one DAG run, for any dbt project: every model's state and row count.

States come from the task that finished each model (the one carrying its asset, see
include/blueprint/assets.py); row counts from the relations the manifest names, in the schema
the manifest was parsed for (the project's target_schema).
"""

from __future__ import annotations

import json
from pathlib import Path

from include.blueprint.assets import BUILT_TYPES, model_reference
from tools.postgres import ConnectionSettings

_COUNTED = ("table", "view", "incremental", "seed", "snapshot", "materialized_view")


def relations(manifest_path: Path, project: str) -> dict[str, tuple[str, str]]:
    """<project>.<model> -> (schema, relation) for every node that leaves a relation behind."""
    manifest = json.loads(manifest_path.read_text())
    root = manifest["metadata"]["project_name"]
    found = {}
    for node in manifest["nodes"].values():
        materialized = node.get("config", {}).get("materialized")
        if node["resource_type"] in BUILT_TYPES and (materialized in _COUNTED or node["resource_type"] != "model"):
            reference = model_reference(project, node["package_name"], node["name"], root)
            found[reference] = (node["schema"], node.get("alias") or node["name"])
    return found


def relation_rows(database: ConnectionSettings, manifest_path: Path, project: str) -> dict[str, int | None]:
    """Row count of each relation of the registered `project` (None where it does not exist)."""
    import psycopg2

    rows: dict[str, int | None] = {}
    for reference, (schema, name) in sorted(relations(manifest_path, project).items()):
        try:
            rows[reference] = database.query(f'select count(*) from "{schema}"."{name}"')[0][0]
        except psycopg2.Error:  # not built (yet): the summary shows "-"
            rows[reference] = None
    return rows


def print_summary(summary: dict, rows: dict[str, int | None], expected: dict[str, int]) -> bool:
    """Print the run; True when the DAG succeeded and every expected count holds."""
    states = summary.get("counts", {})
    print(f"\n{summary['dag_id']}: {summary['state']} in {summary.get('seconds', '?')} s")
    print("  tasks: " + ", ".join(f"{number} {state}" for state, number in sorted(states.items())))
    for task_id, state in sorted(summary.get("tasks", {}).items()):
        if state != "success":
            print(f"    {task_id}: {state}")
    models = summary.get("models", {})
    width = max((len(reference) for reference in models), default=0)
    all_as_expected = True
    for reference, state in sorted(models.items()):
        count = rows.get(reference)
        line = f"  {reference:<{width}}  {state:<8} {'-' if count is None else count} rows"
        if reference in expected:
            verdict = count == expected[reference]
            all_as_expected &= verdict
            line += " (ok)" if verdict else f" (EXPECTED {expected[reference]})"
        print(line)
    return summary["state"] == "success" and all_as_expected
