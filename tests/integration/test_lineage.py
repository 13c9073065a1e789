"""OpenLineage on a real run: jaffle_shop_local under `dag.test()` with `lineage` pointed at an HTTP
receiver this test starts on loopback. Every model task's COMPLETE event carries its model as the
output dataset and the model's parents as inputs, as the manifest says; no event carries the
warehouse password. The expected lineage is read from the manifest, not listed here.

What openlineage-integration-common's dbt processor (1.54) covers: models and snapshots, with their
model and source parents. Seeds are neither outputs nor inputs, so a seed task's event has no
datasets and a staging model on a seed shows no input; the last check fails when that changes."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from include.blueprint.lineage_settings import PROVIDER
from include.blueprint.settings import load_settings
from tests.integration.test_local_dags import run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration
DAG_ID = "jaffle_shop_local"
SCHEMA = "e2e_lineage"
ENDPOINT = "api/v1/lineage"
EMITTED = ("model", "snapshot")  # the node kinds the dbt processor emits datasets for
PARENTS = ("model", "source")  # the parent kinds it lists as inputs


class LineageReceiver(ThreadingHTTPServer):
    """Keeps every POST body, raw, as an OpenLineage backend (e.g. Marquez) would receive it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: LineageReceiver

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.bodies.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def lineage_receiver() -> Iterator[LineageReceiver]:
    server = LineageReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _env(airflow_home: Path, postgres: ConnectionSettings, receiver: LineageReceiver) -> dict[str, str]:
    lineage = {
        "BLUEPRINT__LINEAGE__ENABLED": "true",
        "BLUEPRINT__LINEAGE__URL": receiver.url,
        "BLUEPRINT__LINEAGE__NAMESPACE": "blueprint-tests",
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": SCHEMA,
    }
    env = airflow_env(airflow_home, load_settings({**os.environ, **lineage}), postgres)
    env.update(lineage)
    migrate_metadata_db(env)
    return env


def _relation(node: dict, database: str) -> str:
    # The run's manifest names the test database and schema; the committed one has placeholders.
    return f"{database}.{SCHEMA}.{node.get('alias') or node.get('identifier') or node['name']}"


def expected_lineage(manifest: dict, database: str) -> dict[str, tuple[set[str], set[str]]]:
    """unique_id of every model and snapshot -> (its parents' relations, its own relation)."""
    nodes = {**manifest["nodes"], **manifest["sources"]}

    def parents(node: dict) -> set[str]:
        kept = [parent for parent in node["depends_on"].get("nodes", []) if parent.split(".")[0] in PARENTS]
        return {_relation(nodes[parent], database) for parent in kept}

    return {
        unique_id: (parents(node), {_relation(node, database)})
        for unique_id, node in manifest["nodes"].items()
        if node["resource_type"] in EMITTED
    }


def _task_of(unique_id: str) -> str:
    kind, _, name = unique_id.split(".", 2)
    return f"{name}_{kind}_build"  # the task id of a node at model granularity


def _names(datasets: list[dict], namespace: str) -> set[str]:
    assert {dataset["namespace"] for dataset in datasets} <= {namespace}, datasets
    return {dataset["name"] for dataset in datasets}


def test_each_task_emits_its_dbt_nodes_lineage_and_no_password(
    jaffle_project: Path, postgres: ConnectionSettings, lineage_receiver: LineageReceiver, tmp_path: Path
) -> None:
    try:
        __import__("airflow.providers.openlineage")
    except ImportError:
        pytest.fail(f"{PROVIDER} is not installed in this venv: run `make venvs` (requirements/dev.lock.txt has it)")
    summary, output = run_dag_process(DAG_ID, _env(tmp_path / "airflow", postgres, lineage_receiver))
    assert summary["state"] == "success", output[-4000:]

    bodies = [body for _, body in lineage_receiver.bodies]
    assert {path for path, _ in lineage_receiver.bodies} == {f"/{ENDPOINT}"}, lineage_receiver.bodies[:3]
    leaking = [body[:300] for body in bodies if postgres.password in body]
    assert leaking == [], f"{len(leaking)} event(s) carry the warehouse password"

    events = [json.loads(body) for body in bodies]
    completes = {
        event["job"]["name"]: event
        for event in events
        if event["eventType"] == "COMPLETE" and event["job"]["namespace"] == "blueprint-tests"
    }
    manifest = json.loads((jaffle_project / "target" / "manifest.json").read_text())
    namespace = f"postgres://{postgres.host}:{postgres.port}"
    problems = []
    for unique_id, (inputs, outputs) in expected_lineage(manifest, postgres.database).items():
        job = f"{DAG_ID}.{_task_of(unique_id)}"
        event = completes.get(job)
        if event is None:
            problems.append(f"{unique_id}: no COMPLETE event for job {job}")
            continue
        got_outputs = _names(event["outputs"], namespace)
        # A model's task also runs its tests, which read the model itself.
        got_inputs = _names(event["inputs"], namespace) - outputs
        if (got_inputs, got_outputs) != (inputs, outputs):
            problems.append(f"{unique_id}: inputs {sorted(got_inputs)} outputs {sorted(got_outputs)}, "
                            f"expected {sorted(inputs)} and {sorted(outputs)}")  # fmt: skip
    assert problems == [], "\n".join(problems) + f"\njobs with a COMPLETE event: {sorted(completes)}"

    seeds = [_task_of(uid) for uid, node in manifest["nodes"].items() if node["resource_type"] == "seed"]
    seed_datasets = {task: completes.get(f"{DAG_ID}.{task}", {}).get("outputs") for task in seeds}
    assert seed_datasets == {task: [] for task in seeds}, "seeds now have datasets: update the README's Lineage section"
