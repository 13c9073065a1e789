"""Failure alerts: Airflow notifiers on every task of a dbt DAG (configured in alert_settings.py).

Each task that fails for good (after its retries) sends one message per configured receiver: the
DAG, the task, the dbt node that failed, the first lines of dbt's error and a link to the task
log. Cosmos's local-like operators raise only "dbt command failed ... exit code 1" and log dbt's
output, so a Cosmos callback reads the failed nodes and their messages from the command's
run_results.json while it still exists; other operators' messages come from their exception.

A notifier that cannot deliver (connection missing, receiver down, slow or answering an error)
logs one line and returns: a run's outcome is dbt's, never the receiver's. Webhook URLs come from
Airflow connections and appear in no log line.
"""

from __future__ import annotations

import html
import json
import re
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow.sdk import BaseNotifier

from include.blueprint.alert_settings import AlertSettings, EmailAlert, WebhookAlert
from include.blueprint.artifacts import FAILED, read_run_results
from include.blueprint.cosmos_levers import leaves_the_manifest_unread

ERROR_LINES = 5
LINE_CHARS = 300
FAILURES_KEY = "blueprint_dbt_failures"  # where the Cosmos callback leaves them in the task's context
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class FailureMessage:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None
    dbt_node: str | None  # unique id, e.g. model.jaffle_shop.orders
    error: str
    log_url: str | None
    failed_nodes: list[str] = field(default_factory=list)  # every failed node of the task's dbt command


def first_lines(text: str) -> str:
    # rstrip only: dbt aligns a caret under the failing SQL column.
    lines = [line.rstrip() for line in _ANSI.sub("", text).strip().splitlines() if line.strip()]
    return "\n".join(line[:LINE_CHARS] for line in lines[:ERROR_LINES])


@leaves_the_manifest_unread
def remember_dbt_failures(project_dir: str, context: dict[str, Any] | None = None, **_: Any) -> None:
    """Cosmos callback, run after each dbt command (failed ones too) in its temporary project copy."""
    results = read_run_results(project_dir)
    if context is None or results is None:  # no run_results (dbt stopped early): the exception will do
        return
    context[FAILURES_KEY] = [
        (result["unique_id"], result.get("message") or "") for result in results if result["status"] in FAILED
    ]


def _task_node(task: Any) -> str | None:
    node_config = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
    return node_config.get("unique_id")


def failure_message(context: dict[str, Any]) -> FailureMessage:
    ti = context["ti"]
    failures = context.get(FAILURES_KEY) or []
    exception = context.get("exception")
    node, error = failures[0] if failures else (_task_node(context.get("task") or ti.task), str(exception or ""))
    return FailureMessage(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        try_number=ti.try_number,
        dbt_node=node,
        error=first_lines(error) or type(exception).__name__,
        log_url=getattr(ti, "log_url", None),
        failed_nodes=[unique_id for unique_id, _ in failures],
    )


def webhook_payload(message: FailureMessage) -> dict[str, Any]:
    return {"event": "dbt_task_failed", **asdict(message)}


def _slack_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(message: FailureMessage) -> dict[str, Any]:
    title = f"dbt task failed: {message.dag_id} / {message.task_id}"
    node = f"`{message.dbt_node}`" if message.dbt_node else "unknown"
    details = f"*DAG* `{message.dag_id}`  *task* `{message.task_id}`  *dbt node* {node}\n*run* `{message.run_id}`"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escaped(details)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_slack_escaped(message.error)}```"}},
    ]
    if message.log_url:
        link = f"<{message.log_url}|Open the task log>"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": link}})
    return {"text": title, "blocks": blocks}


def teams_payload(message: FailureMessage) -> dict[str, Any]:
    facts = [("DAG", message.dag_id), ("Task", message.task_id), ("dbt node", message.dbt_node or "unknown"),
             ("Run", message.run_id)]  # fmt: skip
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": f"dbt task failed: {message.dag_id}", "weight": "Bolder", "size": "Medium",
             "color": "Attention", "wrap": True},
            {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in facts]},
            {"type": "TextBlock", "text": message.error, "fontType": "Monospace", "wrap": True},
        ],
    }  # fmt: skip
    if message.log_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the task log", "url": message.log_url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


PAYLOADS = {"webhook": webhook_payload, "slack": slack_payload, "teams": teams_payload}


class NotSent(Exception):
    """Why a message was not delivered, in words that hold no URL."""


def webhook_url(conn_id: str) -> str:
    from airflow.sdk import Connection
    from airflow.sdk.log import mask_secret

    try:
        connection = Connection.get(conn_id)
    except Exception:  # AirflowNotFoundException, or a secrets backend's own error
        raise NotSent(f"connection {conn_id!r} not found") from None
    for value in (connection.password, connection.host):
        if value and value.startswith(("https://", "http://")):
            mask_secret(value)  # the host field is not masked by Airflow
            return value
    raise NotSent(f"connection {conn_id!r} holds no http(s) URL in its password or host")


def post_json(url: str, payload: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only, checked
            response.read()
    except urllib.error.HTTPError as error:
        raise NotSent(f"the receiver answered HTTP {error.code}") from None
    except urllib.error.URLError as error:
        raise NotSent(f"the receiver is unreachable ({_no_url(str(error.reason), url)})") from None
    except TimeoutError:
        raise NotSent(f"the receiver did not answer within {timeout:g} s") from None
    except Exception as error:
        raise NotSent(f"{type(error).__name__}: {_no_url(str(error), url)}") from None


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:LINE_CHARS]


def _no_url(text: str, url: str) -> str:
    return text.replace(url, "<webhook URL>")


def email_body(message: FailureMessage) -> tuple[str, str]:
    subject = f"dbt task failed: {message.dag_id} / {message.task_id}"
    rows = "".join(
        f"<tr><th align='left'>{name}</th><td>{html.escape(str(value))}</td></tr>"
        for name, value in (("DAG", message.dag_id), ("Task", message.task_id), ("dbt node", message.dbt_node),
                            ("Run", message.run_id))
    )  # fmt: skip
    link = f"<p><a href='{html.escape(message.log_url)}'>Open the task log</a></p>" if message.log_url else ""
    return subject, f"<table>{rows}</table><pre>{html.escape(message.error)}</pre>{link}"


class DbtFailureNotifier(BaseNotifier):
    """One receiver of a DAG's failure alerts (an `on_failure_callback`)."""

    def __init__(self, alert: WebhookAlert | EmailAlert) -> None:
        super().__init__()
        self.alert = alert

    def notify(self, context: Any) -> None:
        alert = self.alert
        try:
            message = failure_message(context)
            if isinstance(alert, EmailAlert):
                self._email(message)
            else:
                post_json(webhook_url(alert.conn_id), PAYLOADS[alert.kind](message), alert.timeout_seconds)
        except Exception as error:  # an alert never changes the task's outcome
            # No URL reaches this line: post_json and webhook_url raise NotSent without one.
            reason = str(error) if isinstance(error, NotSent) else f"{type(error).__name__}: {_one_line(error)}"
            self.log.warning("%s alert (connection %s) not sent: %s", alert.kind, alert.conn_id, reason)
            return
        self.log.info("%s alert (connection %s) sent for %s", alert.kind, alert.conn_id, message.task_id)

    def _email(self, message: FailureMessage) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        assert isinstance(self.alert, EmailAlert)
        subject, body = email_body(message)
        # notify(), not __call__: __call__ would render dbt's error text as a Jinja template.
        SmtpNotifier(to=self.alert.to, smtp_conn_id=self.alert.conn_id, subject=subject, html_content=body).notify({})


def attach(dag: Any, alerts: AlertSettings) -> None:
    """The alerts' notifiers on every task of `dag`, and the run_results reader on Cosmos's dbt tasks."""
    if not alerts.on_failure:
        return
    from include.blueprint.cosmos_configs import add_dbt_callback, as_list

    notifiers = [DbtFailureNotifier(alert) for alert in alerts.on_failure]
    for task in dag.tasks:
        task.on_failure_callback = [*as_list(task.on_failure_callback), *notifiers]
    add_dbt_callback(dag, remember_dbt_failures)
