"""Lateness alerts under a real scheduler and triggerer (Airflow's deadline alerts need both): a
one-seed DAG with `late_after` runs twice. The first run is fast; the second is held back on
purpose by a lock the test takes on the seed's table (as a long-running query in the warehouse
would), and the webhook receiver gets one lateness message, for that run only. By the time it
arrives the fast run's deadline (queued earlier) has passed as well, so no second message means
the fast run's deadline was dropped when it finished."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from include.blueprint.settings import load_settings
from tests.integration.test_alerts import TOKEN, Receiver, _connection
from tools.airflow_services import LocalAirflow
from tools.local_env import airflow_env
from tools.postgres import ConnectionSettings, LocalPostgres

pytestmark = pytest.mark.integration
DAG_ID = "jaffle_shop_lateness"
SCHEMA = "e2e_lateness"
LATE_AFTER = "90s"  # far above a one-seed run, far below the test's patience
PATIENCE_SECONDS = 600


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _env(airflow_home: Path, postgres: ConnectionSettings, receiver: Receiver) -> dict[str, str]:
    alerts = {"on_failure": [{"kind": "webhook", "conn_id": "alerts_webhook"}], "late_after": LATE_AFTER}
    declaration = {"id": "{project}_lateness", "mode": "local", "select": ["raw_customers"], "schedule": None,
                   "alerts": alerts}  # fmt: skip
    env = airflow_env(airflow_home, load_settings(), postgres)
    env.update({
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS": yaml.safe_dump([declaration]),
        "BLUEPRINT__PROJECTS__JAFFLE_SHOP__TARGET_SCHEMA": SCHEMA,
        "AIRFLOW_CONN_ALERTS_WEBHOOK": _connection(receiver.url(f"/webhook/{TOKEN}")),
    })  # fmt: skip
    return env


def _wait_for_message(receiver: Receiver, airflow: LocalAirflow, run_id: str) -> dict:
    deadline = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < deadline:
        if receiver.received:
            return receiver.received[0][1]
        time.sleep(1)
    triggerer = (airflow.service_logs / "triggerer.log").read_text(errors="replace")[-4000:]
    raise AssertionError(
        f"no lateness message within {PATIENCE_SECONDS} s of the slow run\n"
        f"{airflow.failure_report(DAG_ID, run_id)}\n--- triggerer\n{triggerer}"
    )


def test_a_run_held_back_past_late_after_is_reported_and_a_fast_one_is_not(
    jaffle_project: Path, postgres_server: LocalPostgres, postgres: ConnectionSettings, receiver: Receiver,
    tmp_path: Path,
) -> None:  # fmt: skip
    env = _env(tmp_path / "airflow", postgres, receiver)
    with LocalAirflow(tmp_path / "airflow", env, postgres_server.database("airflow_lateness_test")) as airflow:
        fast = airflow.run(DAG_ID)
        assert fast.state == "success", airflow.failure_report(DAG_ID, fast.run_id)

        blocker = postgres.connect()  # holds the seed's table until the lateness message is in
        try:
            with blocker.cursor() as cursor:
                cursor.execute(f"lock table {SCHEMA}.raw_customers in access exclusive mode")
            slow_run_id = airflow.trigger(DAG_ID)
            message = _wait_for_message(receiver, airflow, slow_run_id)
        finally:
            blocker.rollback()
            blocker.close()
        slow = airflow.wait(DAG_ID, slow_run_id)
        missed = airflow.metadata.query("select dagrun_id, missed from deadline order by dagrun_id")

    assert slow.state == "success", airflow.failure_report(DAG_ID, slow_run_id)
    assert [path for path, _ in receiver.received] == ["webhook"], (receiver.received, missed)
    assert message == {
        "event": "dbt_dag_run_late",
        "dag_id": DAG_ID,
        "run_id": slow_run_id,
        "late_after": "0:01:30",
        "queued_at": message["queued_at"],
        "deadline": message["deadline"],
        "state": "running",
        "run_url": f"http://localhost:8080/dags/{DAG_ID}/runs/{slow_run_id}",
    }
    assert message["queued_at"], message
    assert message["deadline"], message
    assert fast.run_id != slow_run_id
