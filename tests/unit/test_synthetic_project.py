"""tools/synthetic_project.py: file layout, refs resolve, the graph is acyclic, determinism."""

from __future__ import annotations

import os
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tools.synthetic_project import MARKER, SEED_NAME, layer_sizes, write_project

REF = re.compile(r"""\{\{\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*\}\}""")
YML_MODEL = re.compile(r"^  - name: (\S+)$", re.MULTILINE)


def models_of(project: Path) -> dict[str, Path]:
    return {path.stem: path for path in sorted((project / "models").rglob("*.sql"))}


def ref_graph(project: Path) -> dict[str, set[str]]:
    """model -> the names it refs, parsed from the SQL text."""
    return {name: set(REF.findall(path.read_text())) for name, path in models_of(project).items()}


def snapshot(project: Path) -> dict[str, bytes]:
    return {
        path.relative_to(project).as_posix(): path.read_bytes() for path in sorted(project.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def project50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "project"
    write_project(out, 50)
    return out


def test_file_count_and_layout(project50):
    files = sorted(p.relative_to(project50).as_posix() for p in project50.rglob("*") if p.is_file())
    assert len(files) == 50 + 3 + 6  # models, one yml per layer, and the fixed files
    for fixed in (
        MARKER,
        ".gitignore",
        "dbt_project.yml",
        "profiles.yml",
        f"seeds/{SEED_NAME}.csv",
        "seeds/_seeds.yml",
    ):
        assert fixed in files
    sizes = layer_sizes(50)
    assert sizes == {"staging": 5, "intermediate": 30, "marts": 15}
    for layer, count in sizes.items():
        assert len(list((project50 / "models" / layer).glob("*.sql"))) == count
    assert len(models_of(project50)) == 50


def test_every_ref_points_to_an_existing_model_or_the_seed(project50):
    graph = ref_graph(project50)
    known = set(graph) | {SEED_NAME}
    for name, refs in graph.items():
        assert refs, f"{name} refs nothing"
        assert refs <= known, f"{name} refs unknown {refs - known}"
        assert name not in refs
        assert 1 <= len(refs) <= 3


def test_staging_reads_the_seed_and_others_read_models(project50):
    for name, refs in ref_graph(project50).items():
        if name.startswith("stg_"):
            assert refs == {SEED_NAME}
        else:
            assert SEED_NAME not in refs


def test_graph_has_no_cycles_and_every_model_reaches_the_seed(project50):
    graph = ref_graph(project50)
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:  # pragma: no cover - the assertion below reports it
        pytest.fail(f"cycle in the synthetic DAG: {exc.args[1]}")
    assert order[0] == SEED_NAME
    # Stronger than acyclic: models only ref models with a smaller number.
    number = {name: int(name.rsplit("_", 1)[1]) for name in graph}
    for name, refs in graph.items():
        assert all(number[ref] < number[name] for ref in refs - {SEED_NAME})
    # Every model depends, transitively, on the seed.
    reaches_seed: dict[str, bool] = {SEED_NAME: True}
    for name in order:
        if name != SEED_NAME:
            reaches_seed[name] = any(reaches_seed[ref] for ref in graph[name])
    assert all(reaches_seed.values())


def test_every_model_has_a_yml_entry_with_id_tests(project50):
    documented: list[str] = []
    for yml in sorted((project50 / "models").rglob("_*.yml")):
        text = yml.read_text()
        names = YML_MODEL.findall(text)
        documented += names
        assert text.count("          - unique\n") == len(names)
        assert text.count("          - not_null\n") == len(names)
        assert "data_tests:" in text
        assert "\n        tests:" not in text
    assert sorted(documented) == sorted(models_of(project50))


def test_profile_reads_the_environment_contract(project50):
    profiles = (project50 / "profiles.yml").read_text()
    for var in (
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DATABASE",
        "POSTGRES_SCHEMA",
        "DBT_THREADS",
    ):
        assert f"env_var('{var}'" in profiles
    assert "connect_timeout: 10" in profiles
    project = (project50 / "dbt_project.yml").read_text()
    assert "profile: synthetic" in project
    assert "name: synthetic" in project


def test_deterministic(tmp_path, project50):
    write_project(tmp_path / "again", 50)
    assert snapshot(tmp_path / "again") == snapshot(project50)


def test_rewrite_keeps_mtimes_and_prunes_stale_models(tmp_path):
    out = tmp_path / "project"
    write_project(out, 40)
    stg = out / "models" / "staging" / "stg_0001.sql"
    old_ns = 10**18
    os.utime(stg, ns=(old_ns, old_ns))
    write_project(out, 40)
    assert stg.stat().st_mtime_ns == old_ns
    write_project(out, 20)
    assert len(models_of(out)) == 20
    graph = ref_graph(out)
    assert all(refs <= set(graph) | {SEED_NAME} for refs in graph.values())


def test_refuses_a_foreign_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("not ours")
    with pytest.raises(FileExistsError):
        write_project(tmp_path, 10)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize("models", [1, 2, 3, 1000])
def test_small_and_large_counts(tmp_path, models):
    write_project(tmp_path / "p", models)
    graph = ref_graph(tmp_path / "p")
    assert len(graph) == models
    list(TopologicalSorter(graph).static_order())  # raises CycleError on a cycle


@pytest.mark.parametrize("models", [0, -5])
def test_rejects_invalid_model_counts(tmp_path, models):
    with pytest.raises(ValueError, match="models must be an integer >= 1"):
        write_project(tmp_path / "p", models)
    assert not (tmp_path / "p").exists()
