"""What the container modes have in common: a per-node DbtDag and a single-task operator, both
from the mode's operator arguments, with the dbt project at its in-image path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cosmos import DbtDag, ExecutionConfig
from cosmos.constants import ExecutionMode

from include.blueprint import cosmos_configs
from include.blueprint.dag_specs import DagSpec


@dataclass(frozen=True)
class ContainerMode:
    execution_mode: ExecutionMode
    description: str
    operator_args: Callable[[DagSpec], dict[str, Any]]
    # Imports the provider-backed Cosmos `dbt build` operator: only called when the mode is used.
    build_operator_class: Callable[[], type]

    def build(self, spec: DagSpec) -> DbtDag:
        project_dir = spec.settings.runtime.project_dir
        execution = ExecutionConfig(execution_mode=self.execution_mode, dbt_project_path=project_dir)
        return cosmos_configs.cosmos_dag(spec, self.description, execution, self.operator_args(spec), in_container=True)

    def build_operator(self, spec: DagSpec) -> tuple[type, dict[str, Any]]:
        arguments = {"project_dir": spec.settings.runtime.project_dir, **self.operator_args(spec)}
        return self.build_operator_class(), arguments
