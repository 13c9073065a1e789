"""Failure alerts without a DAG run: the catalogue of refused settings (one line each, with the fix,
never echoing a URL), which DAGs get which notifiers, the message, and a notifier that cannot
deliver logging one line and returning. tests/integration/test_alerts.py runs one for real."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from include.blueprint import alerts
from include.blueprint.alert_settings import EmailAlert, WebhookAlert
from include.blueprint.pipelines import declared_dags
from include.blueprint.settings import BlueprintConfigError, load_settings
from tests.conftest import REPO_ROOT
from tools.postgres import free_port

SECRET_URL = "https://hooks.slack.com/services/T0/B0/not-a-real-token"
DECLARATIONS = "BLUEPRINT__PROJECTS__JAFFLE_SHOP__DAGS"

CATALOGUE = {
    "an unknown kind": ({"kind": "pager", "conn_id": "x"}, "unknown notifier kind 'pager'; set kind to one of webhook"),
    "no kind": ({"conn_id": "x"}, "kind missing; set kind to one of webhook, slack, teams, email"),
    "no conn_id": ({"kind": "teams"}, "conn_id missing: set it to the id of the Airflow connection holding"),
    "a literal URL": ({"kind": "slack", "url": SECRET_URL}, "a webhook URL is a secret and is never written"),
    "a URL as conn_id": ({"kind": "webhook", "conn_id": SECRET_URL}, "store it in an Airflow connection"),
    "an unknown key": ({"kind": "slack", "conn_id": "x", "channel": "#data"}, "slack.channel: unknown setting"),
    "an e-mail to nobody": ({"kind": "email", "conn_id": "smtp_default"}, "to missing: list the addresses"),
    "a timeout of an hour": ({"kind": "webhook", "conn_id": "x", "timeout_seconds": 3600}, "less than or equal to 60"),
    "not a mapping": ("slack", "a notifier is a mapping with kind and conn_id"),
}


def _refusal(environ: dict[str, str]) -> str:
    with pytest.raises(BlueprintConfigError) as caught:
        load_settings(environ)
    [line] = [line for line in str(caught.value).splitlines() if line.startswith("  - ")]
    assert SECRET_URL not in str(caught.value)
    return line


@pytest.mark.parametrize("case", sorted(CATALOGUE))
def test_each_bad_alert_of_a_declaration_is_refused_in_one_line_naming_it(case: str) -> None:
    entry, fragment = CATALOGUE[case]
    line = _refusal({DECLARATIONS: yaml.safe_dump([{"alerts": {"on_failure": [entry]}}])})
    assert line.startswith("  - projects.jaffle_shop.dags.0.alerts.on_failure.0"), line
    assert fragment in line, line


def test_a_bad_deployment_default_is_refused_with_the_layer_that_set_it() -> None:
    line = _refusal({"BLUEPRINT__ALERTS__ON_FAILURE": "[{kind: teams, conn_id: teams_alerts}, {kind: sms}]"})
    pattern = r"  - alerts\.on_failure\.1: .*unknown notifier kind 'sms'.* \[BLUEPRINT__ALERTS__ON_FAILURE\]"
    assert re.fullmatch(pattern, line), line


def _notifiers(task: Any) -> list[Any]:
    return [callback.alert for callback in task.on_failure_callback if isinstance(callback, alerts.DbtFailureNotifier)]


def test_none_by_default_the_deployment_default_and_a_declaration_s_own(registered_projects: dict) -> None:
    slack, teams = {"kind": "slack", "conn_id": "slack_alerts"}, {"kind": "teams", "conn_id": "teams_alerts"}
    declarations = [
        {"id": "{project}_default", "select": ["path:models/staging"]},
        {"id": "{project}_own", "select": ["orders"], "alerts": {"on_failure": [teams]}},
        {"id": "{project}_quiet", "select": ["customers"], "alerts": {"on_failure": []}},
    ]
    environ = {DECLARATIONS: yaml.safe_dump(declarations)}
    with_default = {**environ, "BLUEPRINT__ALERTS__ON_FAILURE": yaml.safe_dump([slack])}
    for settings_environ, expected in (
        (environ, {"jaffle_shop_own": [teams]}),
        (with_default, {"jaffle_shop_default": [slack], "jaffle_shop_own": [teams]}),
    ):
        dags = declared_dags("local", load_settings(settings_environ))
        assert set(dags) == {"jaffle_shop_default", "jaffle_shop_own", "jaffle_shop_quiet"}
        for dag_id, dag in dags.items():
            wanted = [{**alert, "timeout_seconds": 10} for alert in expected.get(dag_id, [])]
            for task in dag.tasks:
                assert [alert.model_dump() for alert in _notifiers(task)] == wanted, (dag_id, task.task_id)
                readers = [callback for callback in task.callback if callback is alerts.remember_dbt_failures]
                assert readers == ([alerts.remember_dbt_failures] if wanted else []), task.task_id


def test_the_readme_s_overlay_gives_each_dag_its_receivers(registered_projects: dict) -> None:
    overlay = yaml.safe_load((REPO_ROOT / "tests" / "fixtures" / "alerts_overlay.yaml").read_text())
    environ = {
        "BLUEPRINT__ALERTS": yaml.safe_dump(overlay["alerts"]),
        DECLARATIONS: yaml.safe_dump(overlay["projects"]["jaffle_shop"]["dags"]),
    }
    dags = declared_dags("local", load_settings(environ))
    kinds = {
        dag_id: {tuple(alert.kind for alert in _notifiers(task)) for task in dag.tasks} for dag_id, dag in dags.items()
    }
    assert kinds == {"jaffle_shop_local": {("teams", "webhook")}, "jaffle_shop_local_single_task": {("slack", "email")}}


def _context(task: Any = None, **extra: Any) -> dict[str, Any]:
    ti = SimpleNamespace(
        dag_id="jaffle_shop_local", task_id="orders_model_build", run_id="manual__1", try_number=2,
        log_url="http://airflow.example.com/dags/jaffle_shop_local/runs/manual__1/tasks/orders_model_build?try_number=2",
        task=task,
    )  # fmt: skip
    return {"ti": ti, "task": task, **extra}


def test_the_message_takes_dbt_s_failed_nodes_from_run_results(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    results = [
        {"unique_id": "model.jaffle_shop.stg_orders", "status": "success", "message": "SELECT 99"},
        {"unique_id": "model.jaffle_shop.orders", "status": "error",
         "message": "\x1b[31mDatabase Error in model orders (models/marts/orders.sql)\x1b[0m\n"
                    + "\n".join(f"  line {n}" for n in range(9))},
        {"unique_id": "test.jaffle_shop.not_null_orders_order_id.1", "status": "fail", "message": "Got 1 result"},
    ]  # fmt: skip
    (tmp_path / "target" / "run_results.json").write_text(json.dumps({"results": results}))
    context = _context(exception=RuntimeError("dbt command failed. The command returned a non-zero exit code 1."))
    alerts.remember_dbt_failures(str(tmp_path), context=context)
    message = alerts.failure_message(context)
    assert message.dbt_node == "model.jaffle_shop.orders"
    assert message.failed_nodes == ["model.jaffle_shop.orders", "test.jaffle_shop.not_null_orders_order_id.1"]
    assert message.error.splitlines() == [
        "Database Error in model orders (models/marts/orders.sql)", "  line 0", "  line 1", "  line 2", "  line 3",
    ]  # fmt: skip
    assert alerts.webhook_payload(message)["log_url"].endswith("/tasks/orders_model_build?try_number=2")


def test_without_run_results_the_node_comes_from_the_task_and_the_error_from_the_exception(tmp_path: Path) -> None:
    task = SimpleNamespace(extra_context={"dbt_node_config": {"unique_id": "model.jaffle_shop.orders"}})
    context = _context(task, exception=ValueError("dbt model 'model.jaffle_shop.orders' failed.\nsee the producer"))
    alerts.remember_dbt_failures(str(tmp_path), context=context)  # no target/: nothing, and no error
    message = alerts.failure_message(context)
    assert (message.dbt_node, message.error) == (
        "model.jaffle_shop.orders", "dbt model 'model.jaffle_shop.orders' failed.\nsee the producer",
    )  # fmt: skip


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.startswith("/slow"):
            time.sleep(2)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """http://127.0.0.1:<port>: answers every POST with HTTP 500, after 2 s under /slow."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, template: str, *args: Any) -> None:
        self.lines.append(template % args)

    info = warning


def _send(alert: WebhookAlert | EmailAlert, context: dict[str, Any]) -> list[str]:
    notifier = alerts.DbtFailureNotifier(alert)
    notifier._log = _Log()  # type: ignore[assignment]
    assert notifier.notify(context) is None
    return notifier._log.lines  # type: ignore[attr-defined]


def test_a_receiver_that_cannot_take_the_message_costs_one_log_line(
    receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = {
        "broken": (f"{receiver}/token-1", "the receiver answered HTTP 500"),
        "down": (f"http://127.0.0.1:{free_port()}/token-2", "the receiver is unreachable"),
        "slow": (f"{receiver}/slow/token-3", "the receiver did not answer within 0.5 s"),
        "no_url": ("hooks.example.com", "connection 'no_url' holds no http(s) URL in its password or host"),
    }
    for name, (url, _) in cases.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps({"conn_type": "http", "password": url}))
    context = _context(exception=RuntimeError("boom"))
    for name, (_, reason) in [*cases.items(), ("missing", ("", "connection 'missing' not found"))]:
        [line] = _send(WebhookAlert(kind="webhook", conn_id=name, timeout_seconds=0.5), context)
        assert line.startswith(f"webhook alert (connection {name}) not sent: {reason}"), line
        assert "token" not in line


def test_an_e_mail_goes_through_the_smtp_provider_and_its_failure_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    sent: list[SmtpNotifier] = []
    monkeypatch.setattr(SmtpNotifier, "notify", lambda self, context: sent.append(self))
    alert = EmailAlert(kind="email", conn_id="smtp_alerts", to=["data@example.com"])
    context = _context(exception=RuntimeError("relation <raw_orders> does not exist {{ not a template }}"))
    assert _send(alert, context) == ["email alert (connection smtp_alerts) sent for orders_model_build"]
    [email] = sent
    assert (email.to, email.smtp_conn_id) == (["data@example.com"], "smtp_alerts")
    assert email.subject == "dbt task failed: jaffle_shop_local / orders_model_build"
    assert "<pre>relation &lt;raw_orders&gt; does not exist {{ not a template }}</pre>" in email.html_content

    monkeypatch.undo()  # the real provider, and no connection smtp_alerts
    [line] = _send(alert, context)
    assert line.startswith(
        "email alert (connection smtp_alerts) not sent: AirflowException: SMTP connection is not found"
    ), line
