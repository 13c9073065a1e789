"""The longest chain of a project's tasks, as an extra DAG for `tools.bench.scheduler --critical-path`.

A per-model DAG on a worker pool wide enough for its widest level runs each level's tasks at once,
so its run time is that of its longest chain of tasks. This machine has two cores, not a pool of
fifty, but it can run that chain alone: `jaffle_shop_local_critical_path` selects only the nodes
on the longest path from a root to a leaf (one task a level, each with a core of its own), and
runs in the same benchmark as the whole per-model DAG and the single task. The chain's models
read their other parents' tables, which the single task builds first, so the benchmark runs it first.

Which nodes are tasks follows Cosmos: models, seeds and snapshots, and a test that depends on
more than one node (a relationships test, or a test of a model against a source), which runs after
all of them. An ephemeral model is a task that does nothing, so it adds no level. When a test ends
the chain, its other built parents are selected too, or the test would not be in the DAG.

What the chain leaves out is what the other tasks of a level would add on a real wide pool: the
scheduler queueing a whole level at once and the warehouse serving all of them together.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

BUILT = ("model", "seed", "snapshot")  # the nodes a per-model task builds (a one-parent test rides along)
DAG_ID = "jaffle_shop_local_critical_path"


def longest_chain(manifest: dict[str, Any]) -> list[str]:
    """`fqn:` selectors of the built nodes on a longest chain of tasks, root first; of equal
    chains, the one through the greatest unique ids (deterministic for a given manifest)."""
    every = manifest["nodes"]
    nodes = {uid: node for uid, node in every.items() if node["resource_type"] in BUILT or _test_task(node)}
    if not any(node["resource_type"] in BUILT for node in nodes.values()):
        raise ValueError("the manifest has no model, seed or snapshot")

    def parents(uid: str) -> list[str]:
        return [parent for parent in nodes[uid].get("depends_on", {}).get("nodes", []) if parent in nodes]

    @functools.cache
    def depth(uid: str) -> int:
        own = 0 if nodes[uid].get("config", {}).get("materialized") == "ephemeral" else 1
        return own + max((depth(parent) for parent in parents(uid)), default=0)

    chain = [max(nodes, key=lambda uid: (depth(uid), uid))]
    while parents(chain[-1]):
        chain.append(max(parents(chain[-1]), key=lambda uid: (depth(uid), uid)))
    selected = [uid for uid in reversed(chain) if nodes[uid]["resource_type"] in BUILT]
    if nodes[chain[0]]["resource_type"] == "test":  # it runs only once its other parents are built too
        selected += [parent for parent in parents(chain[0]) if parent not in selected]
    return ["fqn:" + ".".join(nodes[uid].get("fqn") or [nodes[uid]["name"]]) for uid in selected]


def _test_task(node: dict[str, Any]) -> bool:
    """Cosmos gives a test that depends on more than one node (sources included) a task of its own."""
    return node["resource_type"] == "test" and len(node.get("depends_on", {}).get("nodes", [])) > 1


def declarations(chain: list[str]) -> list[dict[str, Any]]:
    """jaffle_shop's shipped declarations (config/projects/jaffle_shop.yaml), plus the chain's DAG."""
    return [
        {"id": "{project}_{mode}"},
        {"id": "{project}_{mode}_single_task", "granularity": "project", "allow_overlap": True},
        {"id": "{project}_{mode}_critical_path", "select": chain, "allow_overlap": True},
    ]


def settings_override(manifest_path: Path, project: str = "jaffle_shop") -> dict[str, str]:
    """The services' setting that declares the project's DAGs as above."""
    chain = longest_chain(json.loads(manifest_path.read_text()))
    return {f"BLUEPRINT__PROJECTS__{project.upper()}__DAGS": json.dumps(declarations(chain))}
