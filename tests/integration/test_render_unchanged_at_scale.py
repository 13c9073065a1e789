"""At 1,000 models (tools/synthetic_project.py), the local per-model DAG dumps the same with and
without the render shortcuts, each built in a fresh process: 1,001 tasks with their classes,
upstreams, outlets and every operator attribute (tools/dag_dump.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.render_dumps import differences, dump, outlet_uris
from tools.manifest import parse_project
from tools.synthetic_project import write_project

pytestmark = pytest.mark.integration
MODELS = 1000


@pytest.fixture(scope="module")
def synthetic_1000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("synthetic") / "synthetic"
    write_project(project, MODELS)
    parse_project(project)
    return project


def test_the_1000_model_dag_is_the_same_with_and_without_the_shortcuts(synthetic_1000: Path, tmp_path: Path):
    arguments = ("--project-dir", str(synthetic_1000), "--profile", "synthetic")
    before = dump(tmp_path / "before.json", False, *arguments)
    after = dump(tmp_path / "after.json", True, *arguments)
    tasks = after["dumped_project"]["tasks"]
    manifest = json.loads((synthetic_1000 / "target" / "manifest.json").read_text())
    built = [node["name"] for node in manifest["nodes"].values() if node["resource_type"] in ("model", "seed")]
    assert len(built) == MODELS + 1, f"{len(built)} models and seeds in the manifest"
    assert len(tasks) == len(built), f"{len(built)} models and seeds, {len(tasks)} tasks"
    assert len(outlet_uris(after, "dumped_project")) == len(built), "every model and seed carries its asset"
    assert before == after, "the render shortcuts changed the DAG:\n" + "\n".join(differences(before, after))
