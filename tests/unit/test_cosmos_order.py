"""Cosmos's node selection keeps the manifest's order (include/blueprint/cosmos_order.py), so a
DAG parses the same in every process, whatever the interpreter's string hashing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from include.blueprint import cosmos_order

REPO = Path(__file__).resolve().parents[2]
# Cosmos's own select_nodes on nodes listed in reverse alphabetical order, in a fresh process
# whose string hashing is fixed by PYTHONHASHSEED.
PROBE = """
import json
from pathlib import Path
import airflow
from include.blueprint import cosmos_configs
from cosmos.constants import DbtResourceType
from cosmos.dbt.graph import DbtNode
from cosmos.dbt.selector import select_nodes
names = [f"model_{index:02d}" for index in range(40, 0, -1)]
nodes = {
    f"model.probe.{name}": DbtNode(
        unique_id=f"model.probe.{name}", resource_type=DbtResourceType.MODEL, depends_on=[],
        path_base=Path("."), original_file_path=Path(f"models/{name}.sql"), package_name="probe",
        tags=["odd"] if int(name[-2:]) % 2 else [],
    )
    for name in names
}
print(json.dumps(list(select_nodes(None, nodes, select=["tag:odd"], exclude=["model_07"]))))
"""


def _selected(seed: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_fix_is_checked_against_the_installed_cosmos() -> None:
    assert cosmos_order.applies(), (
        "Cosmos is no longer the version include/blueprint/cosmos_order.py was checked against: re-check "
        "whether cosmos.dbt.selector.get_nodes_from_subset still loses the order, then update COSMOS_VERSION_CHECKED"
    )


def test_selection_keeps_the_manifest_order_whatever_the_hash_seed() -> None:
    expected = [f"model.probe.model_{index:02d}" for index in range(39, 0, -2) if index != 7]
    for seed in ("1", "2", "3"):
        assert _selected(seed) == expected, f"PYTHONHASHSEED={seed} changed the selection's order"
