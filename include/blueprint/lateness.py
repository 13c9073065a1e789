"""Lateness alerts: a run not done `alerts.late_after` after it was queued tells the alert receivers.

Airflow 3 replaced SLAs with deadline alerts: the DAG carries a DeadlineAlert (reference: when the
run was queued; interval: late_after), the scheduler records each run's deadline, deletes it when
the run ends, and when one passes first, queues the alert's callback to the triggerer. That
callback is LateRunNotifier, built there from JSON keyword arguments (the receivers' kind, conn_id,
timeout and addresses; never a URL), awaited, and given a small context: the DAG run as the REST
API shows it and the deadline. A receiver that cannot take the message costs one log line in the
triggerer's log, as with the failure alerts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

from include.blueprint.alert_settings import AlertSettings, EmailAlert, Notifier, WebhookAlert
from include.blueprint.alerts import NotSent, post_json

EVENT = "dbt_dag_run_late"


@dataclass(frozen=True)
class LateMessage:
    dag_id: str
    run_id: str
    late_after: str  # e.g. 0:45:00
    queued_at: str | None
    deadline: str | None
    state: str | None  # the run's state when the deadline passed
    run_url: str | None

    @property
    def title(self) -> str:
        return f"dbt DAG run late: {self.dag_id} not done {self.late_after} after it was queued"


def late_message(context: dict[str, Any], late_after_seconds: float) -> LateMessage:
    """From the context Airflow's scheduler gives deadline callbacks (DAGRunResponse JSON)."""
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    dag_id, run_id = str(run.get("dag_id")), str(run.get("dag_run_id"))
    return LateMessage(
        dag_id=dag_id,
        run_id=run_id,
        late_after=str(dt.timedelta(seconds=late_after_seconds)),
        queued_at=run.get("queued_at"),
        deadline=str(deadline["deadline_time"]) if deadline.get("deadline_time") else None,
        state=run.get("state"),
        run_url=_run_url(dag_id, run_id),
    )


def _run_url(dag_id: str, run_id: str) -> str | None:
    from airflow.configuration import conf

    base_url = conf.get("api", "base_url", fallback="http://localhost:8080/")
    return f"{base_url.rstrip('/')}/dags/{dag_id}/runs/{quote(run_id)}" if base_url else None


def webhook_payload(message: LateMessage) -> dict[str, Any]:
    return {"event": EVENT, **asdict(message)}


def slack_payload(message: LateMessage) -> dict[str, Any]:
    details = (
        f"*DAG* `{message.dag_id}`  *run* `{message.run_id}`  *state* `{message.state}`\n*queued* {message.queued_at}"
    )
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": message.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": details}},
    ]
    if message.run_url:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{message.run_url}|Open the run>"}})
    return {"text": message.title, "blocks": blocks}


def teams_payload(message: LateMessage) -> dict[str, Any]:
    facts = [("DAG", message.dag_id), ("Run", message.run_id), ("State", str(message.state)),
             ("Queued", str(message.queued_at)), ("Deadline", str(message.deadline))]  # fmt: skip
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": message.title, "weight": "Bolder", "color": "Warning", "wrap": True},
            {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in facts]},
        ],
    }
    if message.run_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open the run", "url": message.run_url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


PAYLOADS = {"webhook": webhook_payload, "slack": slack_payload, "teams": teams_payload}


def email_body(message: LateMessage) -> str:
    rows = "".join(
        f"<tr><th align='left'>{name}</th><td>{html.escape(str(value))}</td></tr>"
        for name, value in (("DAG", message.dag_id), ("Run", message.run_id), ("State", message.state),
                            ("Queued", message.queued_at), ("Deadline", message.deadline))
    )  # fmt: skip
    link = f"<p><a href='{html.escape(message.run_url)}'>Open the run</a></p>" if message.run_url else ""
    return f"<table>{rows}</table>{link}"


async def _webhook_url(conn_id: str) -> str:
    from airflow.sdk import Connection
    from airflow.sdk.log import amask_secret

    try:
        connection = await Connection.async_get(conn_id)
    except Exception:  # AirflowNotFoundException, or a secrets backend's own error
        raise NotSent(f"connection {conn_id!r} not found") from None
    for value in (connection.password, connection.host):
        if value and value.startswith(("https://", "http://")):
            await amask_secret(value)
            return value
    raise NotSent(f"connection {conn_id!r} holds no http(s) URL in its password or host")


class LateRunNotifier(BaseNotifier):
    """The deadline alert's callback: built and awaited in the triggerer (AsyncCallback)."""

    def __init__(self, receivers: list[dict[str, Any]], late_after_seconds: float, context: Any = None) -> None:
        super().__init__(context)
        self.receivers = receivers
        self.late_after_seconds = late_after_seconds

    async def async_notify(self, context: Any) -> None:
        message = late_message(context, self.late_after_seconds)
        for entry in self.receivers:
            alert = AlertSettings.model_validate({"on_failure": [entry]}).on_failure[0]
            try:
                await self._send(alert, message)
            except Exception as error:  # one receiver's failure keeps the others' messages
                reason = str(error) if isinstance(error, NotSent) else type(error).__name__
                self.log.warning("%s lateness alert (connection %s) not sent: %s", alert.kind, alert.conn_id, reason)
                continue
            self.log.info("%s lateness alert (connection %s) sent for %s", alert.kind, alert.conn_id, message.run_id)

    async def _send(self, alert: WebhookAlert | EmailAlert, message: LateMessage) -> None:
        if isinstance(alert, EmailAlert):
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            email = SmtpNotifier(to=alert.to, smtp_conn_id=alert.conn_id, subject=message.title,
                                 html_content=email_body(message))  # fmt: skip
            await email.async_notify({})
            return
        url = await _webhook_url(alert.conn_id)
        await asyncio.to_thread(post_json, url, PAYLOADS[alert.kind](message), alert.timeout_seconds)

    def notify(self, context: Any) -> None:  # Airflow calls async_notify; this serves tests and scripts
        asyncio.run(self.async_notify(context))


def deadline_alert(alerts: AlertSettings) -> Any:
    """The DAG's DeadlineAlert, or None without late_after."""
    if alerts.late_after is None:
        return None
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    receivers: list[Notifier] = list(alerts.on_failure)
    seconds = alerts.late_after.total_seconds()
    kwargs = {"receivers": [receiver.model_dump(mode="json") for receiver in receivers], "late_after_seconds": seconds}
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=alerts.late_after,
        callback=AsyncCallback(LateRunNotifier, kwargs=kwargs),
        name="late_after",
    )


def attach(dag: Any, alerts: AlertSettings) -> None:
    alert = deadline_alert(alerts)
    if alert is not None:
        dag.deadline = [*(dag.deadline or []), alert]
