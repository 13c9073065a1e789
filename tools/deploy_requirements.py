"""The provider packages the deploy image must install: those of every mode a deployable overlay
enables (config/base.yaml and each config/<env>.yaml but the test-only ones), and the OpenLineage
provider where one enables lineage.

    python -m tools.deploy_requirements            # one package name per line (scripts/lock.sh)
    python -m tools.deploy_requirements --check prod requirements.txt
                                                   # the preflight: one line per missing provider

An overlay that enables a new mode makes `make lock` add its provider to requirements.txt, and CI's
lock check fails until that is committed; a deployment can therefore not ship a mode whose DAG
file would fail to import for want of its provider.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from include.blueprint.lineage_settings import PROVIDER as LINEAGE_PROVIDER
from include.blueprint.runtime import MODE_PROVIDERS
from include.blueprint.settings import CONFIG_DIR, load_settings

# Overlays that only the tests load: every mode with example values.
TEST_ONLY_OVERLAYS = ("all-modes",)


def deployable_environments(config_dir: Path = CONFIG_DIR) -> list[str]:
    overlays = sorted(path.stem for path in config_dir.glob("*.yaml") if path.stem != "base")
    return ["", *(name for name in overlays if name not in TEST_ONLY_OVERLAYS)]


def providers_of(environment: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """package -> why it is needed (the first enabled mode needing it, or lineage), for one overlay
    ('' is base alone)."""
    environ = {"BLUEPRINT_ENV": environment} if environment else {}
    settings = load_settings({**environ, **(overrides or {})})
    needed: dict[str, str] = {}
    for mode in settings.execution.enabled_modes:
        for package in MODE_PROVIDERS.get(mode, ()):
            needed.setdefault(package, f"mode {mode} is enabled")
    if settings.lineage.enabled:
        needed.setdefault(LINEAGE_PROVIDER, "lineage is enabled")
    return needed


def installed(requirements: Path) -> set[str]:
    names = (re.split(r"[<>=~!; \[]", line.strip(), maxsplit=1)[0] for line in requirements.read_text().splitlines())
    return {name.lower() for name in names if name and not name.startswith("#")}


def missing_lines(environment: str, requirements: Path) -> list[str]:
    have = installed(requirements)
    where = f"config/{environment}.yaml" if environment else "config/base.yaml"
    return [
        f"{reason} ({where}) but {requirements.name} installs no {package}: run `make lock` "
        "(requirements.txt follows the modes and lineage the overlays enable) and commit it"
        for package, reason in providers_of(environment).items()
        if package not in have
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", nargs=2, metavar=("ENV", "REQUIREMENTS"), help="report missing providers")
    args = parser.parse_args()
    if args.check:
        environment, requirements = args.check
        problems = missing_lines(environment, Path(requirements))
        print("\n".join(problems))
        return 1 if problems else 0
    packages = {package for env in deployable_environments() for package in providers_of(env)}
    print("\n".join(sorted(packages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
