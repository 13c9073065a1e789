"""dbt itself agrees with the layer plan: each layer task's selection, resolved by `dbt ls` exactly as
the task passes it, is the set of nodes include/blueprint/granularity.py planned for it, and the
layers together are every node of the project, each once."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from include.blueprint import granularity as grouping
from tools.local_env import DBT_BIN, QUIET_DBT
from tools.manifest import PARSE_PLACEHOLDERS
from tools.synthetic_project import write_project

pytestmark = pytest.mark.integration


def _dbt_ls(project: Path, layer: grouping.Layer, target: Path) -> set[str]:
    command = [
        str(DBT_BIN / "dbt"), "ls", "--project-dir", str(project), "--profiles-dir", str(project),
        "--target-path", str(target), "--log-path", str(target), "--output", "json", "--output-keys", "unique_id",
        "--resource-types", "model", "seed", "snapshot", "test",
        "--indirect-selection", "cautious", "--select", *layer.select,
    ]  # fmt: skip
    if layer.exclude:
        command += ["--exclude", *layer.exclude]
    env = {**os.environ, **PARSE_PLACEHOLDERS, **QUIET_DBT}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return {json.loads(line)["unique_id"] for line in result.stdout.splitlines() if line.startswith("{")}


def _check_layers(project: Path, manifest: dict, target: Path) -> None:
    layers = grouping.plan_layers(manifest)
    for layer in layers:
        assert _dbt_ls(project, layer, target / layer.task_id) == layer.nodes, layer.task_id
    everything = [uid for layer in layers for uid in layer.nodes]
    assert sorted(everything) == sorted(manifest["nodes"])  # each node once


def test_jaffle_shop_layers_select_exactly_the_planned_nodes(jaffle_project: Path, tmp_path: Path) -> None:
    manifest = json.loads((jaffle_project / "target" / "manifest.json").read_text())
    _check_layers(jaffle_project, manifest, tmp_path)


def test_a_deeper_project_with_tests_across_layers_selects_exactly_the_planned_nodes(tmp_path: Path) -> None:
    project = tmp_path / "synthetic"
    write_project(project, 40)  # staging, intermediate and marts, with tests in every folder
    subprocess.run(
        [str(DBT_BIN / "dbt"), "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
        env={**os.environ, **PARSE_PLACEHOLDERS, **QUIET_DBT}, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    assert len(grouping.plan_layers(manifest)) == 4  # seeds, staging, intermediate, marts
    _check_layers(project, manifest, tmp_path / "ls")
