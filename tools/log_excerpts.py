"""Short excerpts of long logs for a failure report: a log's last lines, and its error events."""

from __future__ import annotations

import json


def tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def error_lines(log: str, limit: int = 12) -> str:
    """A task log's error events, one short line each: Airflow's structured ones with their
    exception, and any other line that names an error (dbt's output, a traceback's last line)."""
    found = []
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and event.get("level") in ("error", "critical"):
            details = [f"{d.get('exc_type')}: {d.get('exc_value')}" for d in event.get("error_detail") or []]
            found.append(" | ".join([f"{event.get('timestamp', '')} {event.get('event', '')}", *details]))
        elif "error" in (str(event.get("event", "")) if isinstance(event, dict) else line).lower():
            found.append(str(event.get("event")) if isinstance(event, dict) else line)
    return "\n".join(f"    {line[:400]}" for line in found[-limit:])
