"""`make manifest`: write each registered project's manifest.json and dbt docs (no database).

The DAGs render from the manifest; the scheduler never runs dbt. `dbt docs generate` then writes
the docs site Cosmos's plugin serves in the Airflow UI (include/blueprint/dbt_docs.py). Profiles read
the POSTGRES_* variables, which dbt only checks for presence here, so unset ones get inert
placeholders.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint.dbt_docs import docs_ready
from include.blueprint.declarations import ProjectSettings
from include.blueprint.manifest import PACKAGE_FILES, ManifestNotReady, require_fresh_manifest, write_fingerprint
from include.blueprint.settings import BlueprintConfigError, Settings, load_settings
from tools.generate_data import JAFFLE_SHOP_DIR, generate
from tools.local_env import QUIET_DBT, REPO_ROOT

# dbt parse only checks that the connection variables are set. The schema is real: custom
# schemas and relation names in the manifest are derived from it.
PARSE_PLACEHOLDERS = {
    "POSTGRES_HOST": "placeholder.invalid",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "placeholder",
    "POSTGRES_PASSWORD": "placeholder",
    "POSTGRES_DATABASE": "placeholder",
}


# The docs site, index.html and catalog.json, next to the manifest it reads. An empty catalog (no
# column types or row counts) and no compiled SQL keep dbt off the database: with either, it
# connects to the warehouse. Without compiling it writes no manifest.json, so `dbt parse` still
# does, and its partial parse state makes this second command cheaper.
DOCS_GENERATE = ("docs", "generate", "--empty-catalog", "--no-compile")


def _run_dbt(dbt: Path, verb: tuple[str, ...], project_dir: Path, schema: str) -> None:
    # The project's schema wins over an exported POSTGRES_SCHEMA: the manifest records it.
    env = {**PARSE_PLACEHOLDERS, **os.environ, "POSTGRES_SCHEMA": schema, **QUIET_DBT}
    command = [str(dbt), *verb, "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        shown = " ".join(verb)
        raise RuntimeError(f"`dbt {shown}` failed for {project_dir}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")


def packages_installed(project_dir: Path) -> bool:
    """Whether dbt_packages/ is at least as new as the package declarations (or none are declared)."""
    declared = [project_dir / name for name in PACKAGE_FILES if (project_dir / name).exists()]
    installed = project_dir / "dbt_packages"
    if not declared:
        return True
    return installed.is_dir() and installed.stat().st_mtime >= max(path.stat().st_mtime for path in declared)


def parse_project(project_dir: Path, dbt: Path | None = None, schema: str | None = None) -> Path:
    """`dbt deps` when the project's packages are not installed yet (hub and git packages need the
    network here, at manifest time, never in an image build), then `dbt parse` and the docs site,
    both without a database; returns the manifest.
    `schema` is the project's target schema (default: the folder's name, as `make adopt` names it)."""
    dbt = dbt or load_settings().dbt.executable
    schema = schema or project_dir.name
    if not packages_installed(project_dir):
        _run_dbt(dbt, ("deps",), project_dir, schema)
        (project_dir / "dbt_packages").mkdir(exist_ok=True)
        (project_dir / "dbt_packages").touch()
    _run_dbt(dbt, ("parse",), project_dir, schema)
    _run_dbt(dbt, DOCS_GENERATE, project_dir, schema)
    manifest = project_dir / "target" / "manifest.json"
    write_fingerprint(project_dir, manifest)
    return manifest


def refresh(settings: Settings, project: ProjectSettings, force: bool = False) -> Path | None:
    """Parse the project when its manifest is missing or stale, or its docs missing (or `force`);
    None when fresh. jaffle_shop's seeds are generated: a fresh clone has none yet, and refs to
    seeds need them."""
    seeds = project.project_dir / "seeds"
    if project.project_dir == JAFFLE_SHOP_DIR and not any(seeds.glob("*.csv")):
        generate(seeds)
    if not force and docs_ready(project.manifest_path.parent):
        try:
            require_fresh_manifest(project.project_dir, project.manifest_path)
            return None
        except ManifestNotReady:
            pass
    return parse_project(project.project_dir, settings.dbt.executable, project.target_schema)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", help="one registered project (default: every registered project)")
    parser.add_argument("--force", action="store_true", help="parse even when the manifest is fresh")
    args = parser.parse_args()
    try:
        settings = load_settings()
        names = [args.project] if args.project else list(settings.projects)
        projects = {name: settings.project(name) for name in names}
        for name, project in projects.items():
            manifest = refresh(settings, project, args.force)
            shown = (
                project.manifest_path.relative_to(REPO_ROOT)
                if project.manifest_path.is_relative_to(REPO_ROOT)
                else project.manifest_path
            )
            print(f"{name}: {'wrote' if manifest else 'up to date:'} {shown}")
    except (BlueprintConfigError, ManifestNotReady, RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
