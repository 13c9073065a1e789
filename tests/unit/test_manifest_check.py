"""The parse-time manifest check: missing or stale manifests fail with the command that fixes them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from include.blueprint.manifest import ManifestNotReady, newest_source, require_fresh_manifest, write_fingerprint


def _project(root: Path, dbt_project: str = "name: demo\n") -> Path:
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text(dbt_project)
    (root / "models" / "a.sql").write_text("select 1")
    (root / "seeds" / "raw.csv").write_text("id\n1\n")
    return root


def _write_manifest(project: Path, age_seconds: float = 0) -> Path:
    manifest = project / "target" / "manifest.json"
    manifest.parent.mkdir(exist_ok=True)
    manifest.write_text("{}")
    newest = max(path.stat().st_mtime for path in project.rglob("*") if path.is_file() and path != manifest)
    os.utime(manifest, (newest + 1 - age_seconds, newest + 1 - age_seconds))
    return manifest


def test_fresh_manifest_passes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project)
    assert require_fresh_manifest(project, manifest) == manifest


def test_missing_manifest_names_the_command(tmp_path: Path) -> None:
    project = _project(tmp_path)
    with pytest.raises(ManifestNotReady, match=r"manifest\.json is missing: run `make manifest`"):
        require_fresh_manifest(project, project / "target" / "manifest.json")


def test_a_changed_seed_makes_the_manifest_stale(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project, age_seconds=5)
    with pytest.raises(ManifestNotReady, match=r"older than (seeds/raw\.csv|models/a\.sql): run `make manifest`"):
        require_fresh_manifest(project, manifest)


def test_custom_model_paths_are_watched(tmp_path: Path) -> None:
    project = _project(tmp_path, "name: demo\nmodel-paths: [transform]\n")
    (project / "transform").mkdir()
    manifest = _write_manifest(project)
    late = project / "transform" / "late.sql"
    late.write_text("select 2")
    os.utime(late, (manifest.stat().st_mtime + 10,) * 2)
    assert newest_source(project)[0] == late
    with pytest.raises(ManifestNotReady, match=r"older than transform/late\.sql"):
        require_fresh_manifest(project, manifest)


def test_files_outside_the_dbt_sources_do_not_count(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project)
    notes = project / "README.md"
    notes.write_text("docs")
    os.utime(notes, (manifest.stat().st_mtime + 10,) * 2)
    assert require_fresh_manifest(project, manifest) == manifest


def test_a_missing_project_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ManifestNotReady, match=r"no dbt project at .*projects.<name>.project_dir .*make adopt"):
        require_fresh_manifest(tmp_path, tmp_path / "target" / "manifest.json")


def test_a_copy_that_changed_file_times_but_not_content_is_fresh(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project)
    write_fingerprint(project, manifest)
    model = project / "models" / "a.sql"
    os.utime(model, (manifest.stat().st_mtime + 60,) * 2)  # as an S3 or GCS sync may leave it
    assert require_fresh_manifest(project, manifest) == manifest


def test_changed_content_is_stale_even_with_a_fingerprint(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project)
    write_fingerprint(project, manifest)
    model = project / "models" / "a.sql"
    model.write_text("select 42")
    os.utime(model, (manifest.stat().st_mtime + 60,) * 2)
    with pytest.raises(ManifestNotReady, match=r"older than models/a\.sql"):
        require_fresh_manifest(project, manifest)


def test_a_new_file_is_stale_even_with_a_fingerprint(tmp_path: Path) -> None:
    project = _project(tmp_path)
    manifest = _write_manifest(project)
    write_fingerprint(project, manifest)
    new_model = project / "models" / "b.sql"
    new_model.write_text("select 1")
    os.utime(new_model, (manifest.stat().st_mtime + 60,) * 2)
    with pytest.raises(ManifestNotReady, match=r"older than models/b\.sql"):
        require_fresh_manifest(project, manifest)


def test_an_edited_local_package_makes_the_manifest_stale(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    macro = project / "packages" / "utils" / "macros" / "cents.sql"
    macro.parent.mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\n")
    (project / "packages.yml").write_text("packages:\n  - local: packages/utils\n")
    macro.write_text("{% macro cents(x) %}{{ x }} / 100{% endmacro %}\n")
    manifest = project / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    past = time.time() - 60
    os.utime(manifest, (past, past))
    os.utime(macro, (past - 10, past - 10))
    os.utime(project / "dbt_project.yml", (past - 10, past - 10))
    os.utime(project / "packages.yml", (past - 10, past - 10))
    assert require_fresh_manifest(project, manifest) == manifest
    macro.write_text("{% macro cents(x) %}{{ x }} / 100.0{% endmacro %}\n")
    with pytest.raises(ManifestNotReady, match=r"is older than packages/utils/macros/cents\.sql"):
        require_fresh_manifest(project, manifest)
