"""Who is told when a task of a dbt DAG fails: the `alerts` settings (alerts.py sends them).

`alerts.on_failure` at the top level is the deployment's default (base.yaml: none; an overlay
such as prod.yaml may set one); a DAG declaration's own `alerts` replaces it for that DAG, and
`alerts: {on_failure: []}` turns them off there. Each entry is one notifier:

    - kind: slack            # webhook (JSON POST), slack, teams or email
      conn_id: slack_alerts  # the Airflow connection holding the webhook URL (or the SMTP server)

`alerts.late_after` (e.g. 45m, 2h, 1h30m) also sends those receivers a lateness message when a run
is not done that long after it was queued (lateness.py, through Airflow's deadline alerts).

A webhook URL is a credential (whoever has it can post to the channel), so it is never written
here: it lives in the connection's password (or host), like any other secret of a deployment.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from include.blueprint.runtime import Section as _Section

KINDS = ("webhook", "slack", "teams", "email")
_URL_SCHEMES = ("http://", "https://")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_HINT = "write a duration such as 90s, 45m, 2h or 1h30m"
LONGEST_LATENESS = dt.timedelta(days=7)


class WebhookAlert(_Section):
    """A JSON POST of the failure (alerts.webhook_payload) to the URL in the connection."""

    kind: Literal["webhook"]
    conn_id: str = Field(min_length=1)
    # A receiver slower than this is given up on (one log line), so a dead one delays nothing much.
    timeout_seconds: float = Field(default=10, gt=0, le=60)


class SlackAlert(WebhookAlert):
    """A Slack incoming webhook (Slack app > Incoming Webhooks); no Slack provider needed."""

    kind: Literal["slack"]  # type: ignore[assignment]


class TeamsAlert(WebhookAlert):
    """A Microsoft Teams webhook (a Workflows "post to a channel when a webhook request is
    received" flow, or a legacy incoming webhook): an Adaptive Card."""

    kind: Literal["teams"]  # type: ignore[assignment]


class EmailAlert(_Section):
    """An e-mail through Airflow's smtp provider (it ships with Airflow); conn_id is its SMTP
    connection, whose `from_email` extra is the sender."""

    kind: Literal["email"]
    conn_id: str = Field(min_length=1)
    to: list[str] = Field(min_length=1)


def _checked(entry: Any) -> Any:
    """The mistakes pydantic would report without their fix, each refused with it. Nothing of
    the entry is echoed: it may hold a URL with its token."""
    if not isinstance(entry, dict):
        raise ValueError(f"a notifier is a mapping with kind and conn_id; use one of {', '.join(KINDS)}")
    kind = entry.get("kind")
    if kind not in KINDS:
        got = f"unknown notifier kind {kind!r}" if isinstance(kind, str) and "://" not in kind else "kind missing"
        raise ValueError(f"{got}; set kind to one of {', '.join(KINDS)}")
    if any(isinstance(value, str) and value.startswith(_URL_SCHEMES) for value in entry.values()) or "url" in entry:
        raise ValueError(
            "a webhook URL is a secret and is never written in the settings; store it in an Airflow "
            "connection (its password) and set conn_id to that connection's id"
        )
    if not entry.get("conn_id"):
        holds = "the SMTP server" if kind == "email" else "the webhook URL in its password"
        raise ValueError(f"conn_id missing: set it to the id of the Airflow connection holding {holds}")
    if kind == "email" and not entry.get("to"):
        raise ValueError("to missing: list the addresses to e-mail, e.g. to: [data-team@example.com]")
    return entry


Notifier = Annotated[
    WebhookAlert | SlackAlert | TeamsAlert | EmailAlert, Field(discriminator="kind"), BeforeValidator(_checked)
]


def _duration(value: Any) -> Any:
    """45m, 2h, 1h30m, 90s or 1d: the lateness threshold, refused in one line with the fix."""
    if value is None or isinstance(value, dt.timedelta):
        return value
    found = _DURATION.match(value.strip().lower()) if isinstance(value, str) else None
    if not found or not any(found.groups()):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    duration = dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not dt.timedelta(0) < duration <= LONGEST_LATENESS:
        raise ValueError(f"{value!r} is out of range; {_DURATION_HINT}, at most 7d")
    return duration


class AlertSettings(_Section):
    # Notified once per task that fails for good (after its retries); none by default.
    on_failure: list[Notifier] = Field(default_factory=list)
    # The same receivers are told when a run is not done this long after it was queued; null: never.
    late_after: Annotated[dt.timedelta | None, BeforeValidator(_duration)] = None

    @model_validator(mode="after")
    def _late_needs_receivers(self) -> AlertSettings:
        if self.late_after is not None and not self.on_failure:
            raise ValueError("late_after needs receivers: list them under on_failure, or remove late_after")
        return self
