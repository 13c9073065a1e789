"""Failure alerts on a real DAG run: a model fails (its seed was never loaded into the schema), and
receivers started here on loopback get the messages; one receiver answering HTTP 500 and one that
is down change nothing of the run's outcome. One `dag.test()` run of a one-task DAG."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.integration.test_local_dags import run_dag_process
from tools.airflow_db import migrate_metadata_db
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, free_port

pytestmark = pytest.mark.integration
DAG_ID = "jaffle_shop_alerts"
TASK_ID = "stg_orders_model_build"
TOKEN = "T0000/B0000/not-a-real-token"  # stands for the secret part of a webhook URL


class Receiver(ThreadingHTTPServer):
    """Records every POST as (path, JSON body); answers 500 under /broken, 200 elsewhere."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, dict]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path.split("/")[1], json.loads(body)))
        self.send_response(500 if self.path.startswith("/broken") else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _connection(url: str, field: str = "password") -> str:
    return json.dumps({"conn_type": "http", field: url})


def _env(tmp_path: Path, postgres: ConnectionSettings, receiver: Receiver) -> dict[str, str]:
    alerts = [
        {"kind": kind, "conn_id": f"alerts_{kind}", "timeout_seconds": 5} for kind in ("webhook", "slack", "teams")
    ] + [{"kind": "webhook", "conn_id": name} for name in ("alerts_broken", "alerts_down")]
    # stg_orders alone in a schema where no seed was ever loaded: dbt fails on raw_orders.
    declaration = {"id": "{project}_alerts", "select": ["stg_orders"], "retries": 0, "alerts": {"on_failure": alerts}}
    env = airflow_env(tmp_path / "airflow", load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration]),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": "e2e_alerts_unseeded",
        "AIRFLOW_CONN_ALERTS_WEBHOOK": _connection(receiver.url(f"/webhook/{TOKEN}")),
        "AIRFLOW_CONN_ALERTS_SLACK": _connection(receiver.url(f"/slack/{TOKEN}"), field="host"),
        "AIRFLOW_CONN_ALERTS_TEAMS": _connection(receiver.url(f"/teams/{TOKEN}")),
        "AIRFLOW_CONN_ALERTS_BROKEN": _connection(receiver.url(f"/broken/{TOKEN}")),
        "AIRFLOW_CONN_ALERTS_DOWN": _connection(f"http://127.0.0.1:{free_port()}/down/{TOKEN}"),
    })  # fmt: skip
    migrate_metadata_db(env)
    return env


def test_a_failing_model_is_reported_to_every_receiver_and_a_dead_one_changes_nothing(
    jaffle_project: Path, postgres: ConnectionSettings, receiver: Receiver, tmp_path: Path
) -> None:
    summary, output = run_dag_process(DAG_ID, _env(tmp_path, postgres, receiver))
    assert (summary["state"], summary["tasks"]) == ("failed", {TASK_ID: "failed"}), output[-3000:]
    by_receiver = dict(receiver.received)
    assert sorted(path for path, _ in receiver.received) == ["broken", "slack", "teams", "webhook"], output[-3000:]

    webhook = by_receiver["webhook"]
    run_id = webhook["run_id"]
    assert webhook == {
        "event": "dbt_task_failed",
        "dag_id": DAG_ID,
        "task_id": TASK_ID,
        "run_id": run_id,
        "try_number": 1,
        "dbt_node": "model.jaffle_shop.stg_orders",
        "error": webhook["error"],
        "log_url": f"http://localhost:8080/dags/{DAG_ID}/runs/{quote(run_id)}/tasks/{TASK_ID}?try_number=1",
        "failed_nodes": ["model.jaffle_shop.stg_orders"],
    }
    first_line, *more = webhook["error"].splitlines()
    assert first_line == "Database Error in model stg_orders (models/staging/stg_orders.sql)"
    assert 'relation "e2e_alerts_unseeded.raw_orders" does not exist' in more[0]

    slack_text = json.dumps(by_receiver["slack"]["blocks"])
    assert by_receiver["slack"]["text"] == f"dbt task failed: {DAG_ID} / {TASK_ID}"
    for fragment in ("model.jaffle_shop.stg_orders", "Database Error in model stg_orders", webhook["log_url"]):
        assert fragment in slack_text
    [card] = by_receiver["teams"]["attachments"]
    assert card["content"]["actions"][0]["url"] == webhook["log_url"]
    assert {"title": "dbt node", "value": "model.jaffle_shop.stg_orders"} in card["content"]["body"][1]["facts"]

    # The two receivers that failed: one line each, no URL, and the run's outcome is dbt's.
    assert "webhook alert (connection alerts_broken) not sent: the receiver answered HTTP 500" in output
    assert "webhook alert (connection alerts_down) not sent: the receiver is unreachable" in output
    assert TOKEN not in output
