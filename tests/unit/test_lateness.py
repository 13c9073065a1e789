"""Lateness alerts without a scheduler: `late_after` refused in one line when wrong, the deadline
alert the DAGs carry (and that Airflow serialises), and the notifier the triggerer builds sending
its message to a receiver on loopback. tests/integration/test_lateness.py runs one for real."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from include.blueprint.lateness import LateRunNotifier
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import BlueprintConfigError, load_settings

DECLARATIONS = "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS"
RECEIVER = {"kind": "webhook", "conn_id": "late_hook"}


def _declared(late_after: object, on_failure: list | None = None) -> dict[str, str]:
    alerts = {"on_failure": [RECEIVER] if on_failure is None else on_failure, "late_after": late_after}
    return {DECLARATIONS: yaml.safe_dump([{"alerts": alerts}])}


@pytest.mark.parametrize(
    ("late_after", "fragment"),
    [
        ("soon", "'soon' is not a duration; write a duration such as 90s, 45m, 2h or 1h30m"),
        (90, "90 is not a duration; write a duration such as 90s"),
        ("0m", "'0m' is out of range"),
        ("8d", "'8d' is out of range; write a duration such as 90s, 45m, 2h or 1h30m, at most 7d"),
    ],
)
def test_a_bad_late_after_is_refused_in_one_line_with_the_fix(late_after: object, fragment: str) -> None:
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(_declared(late_after))
    [line] = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert line.startswith("  - projects.jaffle_shop.dags.0.alerts.late_after: "), line
    assert fragment in line, line


def test_late_after_without_receivers_is_refused() -> None:
    with pytest.raises(BlueprintConfigError, match="late_after needs receivers: list them under on_failure"):
        load_settings(_declared("45m", on_failure=[]))


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("45m", 2700), ("1h30m", 5400), ("1d", 86400)])
def test_durations_are_read_as_written(text: str, seconds: int) -> None:
    settings = load_settings(_declared(text))
    assert settings.projects["jaffle_shop"].dags[0].alerts.late_after == dt.timedelta(seconds=seconds)


def test_a_dag_with_late_after_carries_a_deadline_from_when_its_run_is_queued(jaffle_project: object) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    dags = declared_dags("local", load_settings(_declared("45m")))
    [deadline] = DagSerialization.to_dict(dags["jaffle_shop_local"])["dag"]["deadline"]
    assert deadline["reference"] == {"reference_type": "DagRunQueuedAtDeadline"}
    assert deadline["interval"]["__data__"] == 2700.0
    callback = deadline["callback"]
    assert callback["__classname__"] == "airflow.sdk.definitions.callback.AsyncCallback"
    assert callback["__data__"] == {
        "path": "include.blueprint.lateness.LateRunNotifier",
        "kwargs": {"receivers": [{**RECEIVER, "timeout_seconds": 10.0}], "late_after_seconds": 2700.0},
    }


def test_dags_without_late_after_carry_no_deadline(jaffle_project: object) -> None:
    dags = declared_dags("local", load_settings({}))
    assert {dag_id: dag.deadline for dag_id, dag in dags.items()} == dict.fromkeys(dags, None)


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict] = []


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # http.server's naming
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class _Log:
    """The notifier's log lines, as the triggerer's log would show them."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, template: str, *args: object) -> None:
        self.lines.append(template % args)

    info = warning


def test_the_notifier_tells_each_receiver_and_a_missing_connection_costs_one_line(
    receiver: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook/secret-token"
    monkeypatch.setenv("AIRFLOW_CONN_LATE_HOOK", json.dumps({"conn_type": "http", "password": url}))
    receivers = [RECEIVER, {"kind": "slack", "conn_id": "nowhere"}]
    # What Airflow's scheduler puts in a deadline callback's context (a DAGRunResponse, as JSON).
    context = {
        "dag_run": {"dag_id": "jaffle_shop_local", "dag_run_id": "manual__1", "state": "running",
                    "queued_at": "2026-12-01T06:00:00Z"},
        "deadline": {"id": "0", "deadline_time": "2026-12-01T06:45:00Z"},
    }  # fmt: skip
    notifier = LateRunNotifier(receivers=receivers, late_after_seconds=2700)
    notifier._log = log = _Log()  # type: ignore[assignment]
    notifier.notify(context)
    assert receiver.received == [
        {
            "event": "dbt_dag_run_late",
            "dag_id": "jaffle_shop_local",
            "run_id": "manual__1",
            "late_after": "0:45:00",
            "queued_at": "2026-12-01T06:00:00Z",
            "deadline": "2026-12-01T06:45:00Z",
            "state": "running",
            "run_url": "http://localhost:8080/dags/jaffle_shop_local/runs/manual__1",
        }
    ]
    assert log.lines == [
        "webhook lateness alert (connection late_hook) sent for manual__1",
        "slack lateness alert (connection nowhere) not sent: connection 'nowhere' not found",
    ]
