"""Per-task work Cosmos does that nothing in a deployment uses, skipped.

After every local dbt command, Cosmos 1.15 turns dbt's artifacts into OpenLineage events: it
imports the OpenLineage dbt processor and reads the manifest, run results and profile again. Only
Airflow's OpenLineage provider sends those events, and only when it is configured (a transport, a
config file or OPENLINEAGE_URL); our assets never read them (Cosmos's own assets, which do, are off).
Measured under a real scheduler: the import alone takes 0.3-0.9 s of every task on these machines.
So the events are computed only when the provider would emit them, by Airflow's own rule
(`airflow.providers.openlineage.conf.is_disabled`); with lineage on, nothing changes.

This replaces one Cosmos method, so it is pinned to the Cosmos minor version it was written for:
on another version it is not installed (Cosmos then behaves as shipped) and the test in
tests/unit/test_cosmos_levers.py fails, asking for a re-check.
"""

from __future__ import annotations

import functools
from importlib.metadata import version
from typing import Any

COSMOS_VERSION_CHECKED = "1.15."
MARK = "_blueprint_lineage_lever"


def lineage_is_emitted() -> bool:
    """Whether Airflow's OpenLineage provider is installed and configured to send events."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


def lever_applies() -> bool:
    return version("astronomer-cosmos").startswith(COSMOS_VERSION_CHECKED)


def install() -> None:
    """Compute Cosmos's OpenLineage events only when they will be emitted (idempotent)."""
    if not lever_applies():
        return
    from cosmos.operators.local import DbtLocalBaseOperator

    installed = DbtLocalBaseOperator.calculate_openlineage_events_completes
    # A re-imported copy of this module (a task after the worker preloaded Cosmos) wraps Cosmos's
    # own method again, never an earlier wrapper.
    original = installed.__wrapped__ if getattr(installed, MARK, False) else installed

    @functools.wraps(original)
    def only_when_emitted(self: Any, *args: Any, **kwargs: Any) -> bool:
        if not lineage_is_emitted():
            return False  # what Cosmos returns when it has no processor: no events, no work
        return original(self, *args, **kwargs)

    setattr(only_when_emitted, MARK, True)
    DbtLocalBaseOperator.calculate_openlineage_events_completes = only_when_emitted
