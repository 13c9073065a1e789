"""A structural dump of DAGs as JSON, to show that a change to how DAGs are built changes none of them.

    python -m tools.dag_dump [--dags-folder dags] [--project-dir DIR --profile NAME]

Per DAG: its own attributes; per task: id, operator class, upstream ids, outlets, and every
attribute the operator holds (select, exclude, project_dir, profile, env, callbacks, template
fields, ...), written as stable text: object addresses are blanked, sets sorted. With
--project-dir, the local per-model DAG of that project is dumped too (as the render benchmark
builds it). Run it in a fresh process for each variant you compare: some construction shortcuts
are process-wide.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ADDRESS = re.compile(r" at 0x[0-9a-f]+|0x[0-9a-f]{6,}")
# References back into the DAG (dumped on their own) and per-process bookkeeping.
SKIPPED = frozenset(
    {"dag", "_dag", "task_group", "_task_group", "_log", "_logger", "log", "dbt_graph", "tasks_map", "last_loaded"}
)
DEPTH = 4


def stable(value: Any, depth: int = DEPTH) -> Any:
    """A JSON-able, address-free form of `value`, following objects' attributes `depth` levels down."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): stable(item, depth) for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [stable(item, depth) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((stable(item, depth) for item in value), key=repr)
    if isinstance(value, Path):
        return str(value)
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, (logging.Logger, logging.LoggerAdapter, logging.Manager)):
        return f"<{kind}>"  # process-wide state (which loggers exist so far), not the DAG's
    reference = _reference(value)
    if reference is not None:
        return f"<{kind} {reference}>"
    if callable(value) and not hasattr(value, "__dict__"):
        return f"<{kind} {ADDRESS.sub('', repr(value))}>"
    fields = _fields(value)
    if depth == 0 or fields is None:
        return f"<{kind} {ADDRESS.sub('', repr(value))}>"
    return {"__class__": kind, **{name: stable(item, depth - 1) for name, item in fields.items()}}


def _reference(value: Any) -> str | None:
    """DAGs, tasks and task groups met inside a task are named, not followed (they are dumped once)."""
    for attribute in ("dag_id", "task_id", "group_id"):
        if isinstance(getattr(type(value), attribute, None), property) or attribute in getattr(value, "__dict__", {}):
            return str(getattr(value, attribute, None))
    return None


def _fields(value: Any) -> dict[str, Any] | None:
    names = [*getattr(value, "__dict__", {})]
    for cls in type(value).__mro__:
        names += [slot for slot in getattr(cls, "__slots__", ()) if slot != "__weakref__"]
    if not names:
        return None
    found = {name: getattr(value, name) for name in sorted(set(names)) if hasattr(value, name)}
    return {name: item for name, item in found.items() if name not in SKIPPED and not name.startswith("__")}


def dump_task(task: Any) -> dict[str, Any]:
    fields = _fields(task) or {}
    return {
        "class": f"{type(task).__module__}.{type(task).__qualname__}",
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "outlets": [stable(outlet) for outlet in task.outlets],
        "fields": {
            name: stable(item)
            for name, item in fields.items()
            if name not in ("upstream_task_ids", "downstream_task_ids")
        },
    }


def dump_dag(dag: Any) -> dict[str, Any]:
    attributes = {name: stable(getattr(dag, name, None)) for name in (
        "dag_id", "description", "schedule", "start_date", "catchup", "max_active_runs", "tags", "params",
        "default_args", "doc_md", "user_defined_macros", "on_failure_callback", "on_success_callback",
    )}  # fmt: skip
    return {"dag": attributes, "tasks": {task.task_id: dump_task(task) for task in sorted(dag.tasks, key=_id)}}


def _id(task: Any) -> str:
    return str(task.task_id)


def dump_folder(dags_folder: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    if bag.import_errors:
        raise SystemExit(f"import errors in {dags_folder}: {bag.import_errors}")
    return {dag_id: dump_dag(bag.dags[dag_id]) for dag_id in sorted(bag.dags)}


def dump_project(project_dir: str, profile: str) -> dict[str, Any]:
    from include.blueprint.modes import build_dbt_dag
    from include.blueprint.settings import load_settings

    environ = {**os.environ, "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROJECT_DIR": project_dir,
               "BLUEPRINT__PROJECTS__JAFFLE_SHOP__PROFILE": profile}  # fmt: skip
    dag = build_dbt_dag("dumped_project", "local", load_settings(environ))
    return {"dumped_project": dump_dag(dag)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dags-folder", type=Path, help="dump every DAG of this folder")
    parser.add_argument("--project-dir", help="dump the local per-model DAG of this dbt project")
    parser.add_argument("--profile", default="jaffle_shop")
    parser.add_argument("--out", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    import airflow  # noqa: F401  # before cosmos: the reverse order raises a circular ImportError

    dumped: dict[str, Any] = {}
    if args.dags_folder:
        dumped |= dump_folder(args.dags_folder)
    if args.project_dir:
        dumped |= dump_project(args.project_dir, args.profile)
    text = json.dumps(dumped, indent=1, sort_keys=True, default=str)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
