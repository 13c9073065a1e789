"""`make manifest`: write dbt's manifest.json with `dbt parse`, which needs no database.

The DAGs render from this file; the scheduler never runs dbt. Profiles read the POSTGRES_*
variables, which dbt parse only checks for presence, so unset ones get inert placeholders here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint.manifest import write_fingerprint
from include.blueprint.settings import BlueprintConfigError, load_settings
from tools.generate_data import generate
from tools.local_env import QUIET_DBT, REPO_ROOT

PARSE_PLACEHOLDERS = {
    "POSTGRES_HOST": "placeholder.invalid",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "placeholder",
    "POSTGRES_PASSWORD": "placeholder",
    "POSTGRES_DATABASE": "placeholder",
    "POSTGRES_SCHEMA": "jaffle_shop",
}


def parse_project(project_dir: Path | None = None, dbt: Path | None = None) -> Path:
    """Run `dbt parse` (defaults: the configured project and dbt) and return the manifest path."""
    if project_dir is None or dbt is None:
        configured = load_settings().dbt
        project_dir, dbt = project_dir or configured.project_dir, dbt or configured.executable
    env = {**PARSE_PLACEHOLDERS, **os.environ, **QUIET_DBT}
    command = [str(dbt), "parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`dbt parse` failed for {project_dir}:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    manifest = project_dir / "target" / "manifest.json"
    write_fingerprint(project_dir, manifest)
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, help="default: dbt.project_dir from the settings")
    args = parser.parse_args()
    try:
        project_dir = (args.project_dir or load_settings().dbt.project_dir).resolve()
    except BlueprintConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    seeds = project_dir / "seeds"
    if seeds.is_dir() and not any(seeds.glob("*.csv")):
        generate(seeds)  # a fresh clone has no data yet, and refs to seeds need the files
    try:
        manifest = parse_project(project_dir)
    except (RuntimeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {manifest.relative_to(REPO_ROOT) if manifest.is_relative_to(REPO_ROOT) else manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
