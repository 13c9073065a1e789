"""A deployment that enables only worker modes needs no container or cloud provider package:
provider imports happen inside the mode builders, and only for enabled modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint.dag_specs import dag_specs
from include.blueprint.settings import load_settings
from include.blueprint.sweeper import DAG_ID as SWEEPER_DAG_ID
from tests.conftest import REPO_ROOT

OPTIONAL_PROVIDERS = ("airflow.providers.docker", "airflow.providers.cncf", "airflow.providers.microsoft",
                      "airflow.providers.amazon", "airflow.providers.google", "kubernetes", "docker")  # fmt: skip

# Parse dags/ in a fresh interpreter where importing any optional provider's code fails, as it
# would on a deployment that does not install them. Airflow's provider discovery (the package
# itself and its get_provider_info) stays allowed: it runs for every installed provider anyway.
PARSE_WITHOUT_PROVIDERS = f"""
import importlib.abc, json, sys
BLOCKED = {OPTIONAL_PROVIDERS!r}
DISCOVERY = {{"airflow.providers.docker", "airflow.providers.cncf", "airflow.providers.cncf.kubernetes",
             "airflow.providers.microsoft", "airflow.providers.microsoft.azure", "airflow.providers.amazon",
             "airflow.providers.google"}}
def blocked(name):
    discovery = name in DISCOVERY or name.endswith(".get_provider_info")
    return name.startswith(BLOCKED) and not discovery
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            raise ImportError(f"{{name}} is not installed on this deployment")
sys.meta_path.insert(0, Blocker())
import airflow
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO_ROOT / "dags")!r})
loaded = sorted(name for name in sys.modules if blocked(name))
print(json.dumps({{"dags": sorted(bag.dag_ids), "errors": bag.import_errors, "loaded": loaded}}))
"""


def _parse(jaffle_project: Path, **env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", PARSE_WITHOUT_PROVIDERS],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _declared(environ: dict[str, str]) -> list[str]:
    return sorted(spec.dag_id for spec in dag_specs(load_settings({**os.environ, **environ})))


def test_worker_modes_parse_without_any_optional_provider(jaffle_project: Path) -> None:
    parsed = _parse(jaffle_project, BLUEPRINT_ENV="dev")
    assert parsed["errors"] == {}
    assert parsed["loaded"] == []
    assert parsed["dags"] == _declared({"BLUEPRINT_ENV": "dev"})
    assert {"jaffle_shop_local", "jaffle_shop_virtualenv", "jaffle_shop_watcher"} <= set(parsed["dags"])


def test_an_enabled_container_mode_without_its_provider_fails_only_its_own_files(jaffle_project: Path) -> None:
    parsed = _parse(
        jaffle_project,
        BLUEPRINT__EXECUTION__ENABLED_MODES="[local, docker]",
        BLUEPRINT__RUNTIME__IMAGE="registry.example.com/dbt-runtime:1",
    )
    failing = sorted(Path(file).name for file in parsed["errors"])
    assert failing == ["dbt_docker.py"]
    # The sweeper imports the provider only when its task runs, so its file still parses.
    assert parsed["dags"] == sorted([*_declared({"BLUEPRINT__EXECUTION__ENABLED_MODES": "[local]"}), SWEEPER_DAG_ID])


# As if the OpenLineage provider were not installed: its modules fail to import and its
# distribution (so its provider entry and plugin) is not found.
PARSE_WITHOUT_OPENLINEAGE = f"""
import importlib.abc, importlib.metadata, json, logging, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.startswith("airflow.providers.openlineage"):
            raise ImportError(f"{{name}} is not installed on this deployment")
sys.meta_path.insert(0, Blocker())
HIDDEN = "apache-airflow-providers-openlineage"
def hide(module):  # the standard library's importlib.metadata and its backport, which Airflow uses
    every, one = module.distributions, module.distribution
    def distributions(**kwargs):
        return [d for d in every(**kwargs) if d.metadata["Name"] != HIDDEN]
    def distribution(name):
        if name == HIDDEN:
            raise module.PackageNotFoundError(name)
        return one(name)
    module.distributions, module.distribution = distributions, distribution
hide(importlib.metadata)
try:
    import importlib_metadata
    hide(importlib_metadata)
except ImportError:
    pass
class Warnings(logging.Handler):
    lines = []
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            Warnings.lines.append(record.getMessage())
import airflow  # configures logging: the handler goes on after it
logging.getLogger().addHandler(Warnings())
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(REPO_ROOT / "dags")!r})
print(json.dumps({{"dags": sorted(bag.dag_ids), "errors": bag.import_errors, "warnings": Warnings.lines}}))
"""


def test_without_the_openlineage_provider_the_dags_parse_with_no_lineage_warning(jaffle_project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PARSE_WITHOUT_OPENLINEAGE],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed["errors"] == {}
    assert parsed["dags"] == _declared({})
    lineage_noise = [line for line in parsed["warnings"] if "lineage" in line.lower()]
    assert lineage_noise == [], lineage_noise
