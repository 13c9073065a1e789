"""Per-task work Cosmos does that nothing in a deployment uses, skipped.

After every local dbt command, Cosmos 1.15 turns dbt's artifacts into OpenLineage events: it
imports the OpenLineage dbt processor and reads the manifest, run results and profile again. Only
Airflow's OpenLineage provider sends those events, and only when it is configured (a transport, a
config file or OPENLINEAGE_URL); our assets never read them (Cosmos's own assets, which do, are off).
Measured under a real scheduler: the import alone takes 0.3-0.9 s of every task on these machines.
So the events are computed only when the provider would emit them, by Airflow's own rule
(`airflow.providers.openlineage.conf.is_disabled`); with lineage on, nothing changes.

Likewise dbt's manifest.json at the end of a command (0.9 s of a per-model task at 1,000 models):
a task tells warm dbt it need not be written when every node succeeds (WARM_DBT_END_MANIFEST, see
include/blueprint/warm_dbt/manifest_writes.py) unless something after dbt reads it: OpenLineage's
events, or a Cosmos callback not marked `leaves_the_manifest_unread` (the artifacts kept per try
read it; a callback given by import path is assumed to). Cosmos itself only copies it into its
partial-parse cache, from where it is copied into the next task's target/ and read by nothing.

This replaces two Cosmos methods (calculate_openlineage_events_completes and get_env), so it is
pinned to the Cosmos minor version it was written for: on another version it is not installed
(Cosmos then behaves as shipped) and the test in tests/unit/test_cosmos_levers.py fails, asking
for a re-check.
"""

from __future__ import annotations

import functools
import os
from importlib.metadata import version
from typing import Any

COSMOS_VERSION_CHECKED = "1.15."
MARK = "_blueprint_lineage_lever"
END_MANIFEST_MARK = "_blueprint_end_manifest_lever"
UNREAD_MARK = "_blueprint_leaves_the_manifest_unread"
END_MANIFEST_SWITCH, ON_FAILURE = "WARM_DBT_END_MANIFEST", "on-failure"


def lineage_is_emitted() -> bool:
    """Whether Airflow's OpenLineage provider is installed and configured to send events."""
    try:
        from airflow.providers.openlineage.conf import is_disabled
    except ImportError:
        return False
    return not is_disabled()


def lever_applies() -> bool:
    return version("astronomer-cosmos").startswith(COSMOS_VERSION_CHECKED)


def leaves_the_manifest_unread(callback: Any) -> Any:
    """Mark a Cosmos callback that never reads target/manifest.json after a command that succeeded."""
    setattr(callback, UNREAD_MARK, True)
    return callback


def manifest_is_read_after_dbt(operator: Any) -> bool:
    callbacks = operator.callback if isinstance(operator.callback, list) else [operator.callback]
    unknown = [callback for callback in callbacks if callback is not None and not getattr(callback, UNREAD_MARK, False)]
    return bool(unknown) or lineage_is_emitted()


def install() -> None:
    """Compute Cosmos's OpenLineage events only when they will be emitted, and ask for dbt's
    end-of-command manifest only when something reads it (idempotent)."""
    if not lever_applies():
        return
    from cosmos.operators.local import DbtLocalBaseOperator

    _install_lineage_lever(DbtLocalBaseOperator)
    _install_end_manifest_lever(DbtLocalBaseOperator)


def _cosmos_own(method: Any, mark: str) -> Any:
    # A re-imported copy of this module (a task after the worker preloaded Cosmos) wraps Cosmos's
    # own method again, never an earlier wrapper.
    return method.__wrapped__ if getattr(method, mark, False) else method


def _install_end_manifest_lever(operator_class: Any) -> None:
    original = _cosmos_own(operator_class.get_env, END_MANIFEST_MARK)

    @functools.wraps(original)
    def get_env(self: Any, context: Any) -> Any:
        env = original(self, context)
        # set in the task's or the worker's environment, the switch is the deployment's to choose
        # (`on-failure` there forces the skip, even where a callback or lineage reads the manifest)
        chosen = END_MANIFEST_SWITCH in env or END_MANIFEST_SWITCH in os.environ
        if not chosen and not manifest_is_read_after_dbt(self):
            env[END_MANIFEST_SWITCH] = ON_FAILURE
        return env

    setattr(get_env, END_MANIFEST_MARK, True)
    operator_class.get_env = get_env


def _install_lineage_lever(operator_class: Any) -> None:
    original = _cosmos_own(operator_class.calculate_openlineage_events_completes, MARK)

    @functools.wraps(original)
    def only_when_emitted(self: Any, *args: Any, **kwargs: Any) -> bool:
        if not lineage_is_emitted():
            return False  # what Cosmos returns when it has no processor: no events, no work
        return original(self, *args, **kwargs)

    setattr(only_when_emitted, MARK, True)
    operator_class.calculate_openlineage_events_completes = only_when_emitted
