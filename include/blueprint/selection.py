"""Which dbt nodes a DAG builds, resolved from the manifest with Cosmos's own selector engine.

Cosmos resolves `select` / `exclude` and YAML selectors (selectors.yml, stored in the manifest)
when it renders a per-node DAG; the layer and project DAGs, and the checks across DAGs, ask the
same engine here, so every DAG agrees with Cosmos on what a selection means.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.blueprint.settings import BlueprintConfigError

if TYPE_CHECKING:
    from include.blueprint.dag_specs import DagSpec


def selected_nodes(spec: DagSpec) -> dict[str, Any]:
    """unique_id -> Cosmos DbtNode of every node the spec's selection picks."""
    declaration = spec.declaration
    return _resolve(
        _version(spec.project.manifest_path),
        spec.project_dir,
        spec.project_name,
        tuple(declaration.select),
        tuple(declaration.exclude),
        declaration.selector,
    )


def every_node(spec: DagSpec) -> dict[str, Any]:
    """unique_id -> Cosmos DbtNode of every node of the spec's project, selected or not."""
    return _resolve(_version(spec.project.manifest_path), spec.project_dir, spec.project_name, (), (), None)


def _version(manifest: Path) -> tuple[Path, int]:
    """The manifest and its modification time: a rewritten manifest is resolved anew."""
    return manifest, manifest.stat().st_mtime_ns


@functools.cache
def _resolve(
    manifest_version: tuple[Path, int],
    project_dir: Path,
    name: str,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    selector: str | None,
) -> dict[str, Any]:
    from cosmos import ExecutionConfig, ProjectConfig, RenderConfig
    from cosmos.constants import LoadMode
    from cosmos.dbt.graph import CosmosLoadDbtException, DbtGraph

    manifest = manifest_version[0]
    project = ProjectConfig(dbt_project_path=project_dir, manifest_path=manifest, project_name=name)
    project.manifest_path = manifest  # a plain path: see cosmos_configs.project_config
    render = RenderConfig(
        load_method=LoadMode.DBT_MANIFEST, select=list(select), exclude=list(exclude), selector=selector
    )
    graph = DbtGraph(
        project=project, render_config=render, execution_config=ExecutionConfig(dbt_project_path=project_dir)
    )
    try:
        graph.load(method=LoadMode.DBT_MANIFEST)
    except CosmosLoadDbtException as error:
        raise BlueprintConfigError(str(error)) from None
    return dict(graph.filtered_nodes)
