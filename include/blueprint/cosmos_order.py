"""Cosmos's node selection, in the manifest's order.

Cosmos 1.15 keeps the nodes a `select`/`exclude` picks in a Python set and rebuilds its node
dictionary from it, so their order follows the interpreter's string hashing, which differs from
one process to the next. The order reaches what a DAG holds: the `exclude` list of a model's build
task names its detached tests in that order. Two parses of one DAG file then serialize differently,
and Airflow records a new DAG version for an unchanged DAG whenever its DAG processor restarts.
Keeping the manifest's order makes every parse of a DAG file the same.

This replaces one Cosmos function, so it is pinned to the Cosmos minor version it was written
for: on another version it is not installed and tests/unit/test_cosmos_order.py fails, asking
for a re-check.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

COSMOS_VERSION_CHECKED = "1.15."
MARK = "_blueprint_manifest_order"


def applies() -> bool:
    return version("astronomer-cosmos").startswith(COSMOS_VERSION_CHECKED)


def nodes_in_manifest_order(nodes: dict[str, Any], subset_ids: set[str]) -> dict[str, Any]:
    """The nodes of `subset_ids`, in the order `nodes` has them."""
    return {node_id: node for node_id, node in nodes.items() if node_id in subset_ids}


def install() -> None:
    """Make Cosmos's selection keep the manifest's order (idempotent; a re-imported copy of this
    module installs its own code, as a task does after the worker preloaded Cosmos)."""
    if not applies():
        return
    from cosmos.dbt import selector

    setattr(nodes_in_manifest_order, MARK, True)
    selector.get_nodes_from_subset = nodes_in_manifest_order
