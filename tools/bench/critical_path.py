"""The longest chain of a project's models, as DAG declarations for `tools.bench.scheduler --critical-path`.

A per-model DAG on a worker pool wide enough for its widest level runs each level's tasks at once,
so its run time is that of its longest chain of tasks. This machine has two cores, not a pool of
fifty, but it can run that chain alone: a per-model DAG selecting only the models on the longest
path from a seed to a leaf (one task a level, each on a core of its own), next to the single task
building the whole project. The chain's models read their other parents' tables, which the single
task builds first, so the benchmark runs it first.

What the chain leaves out is what the other tasks of a level would add on a real wide pool: the
scheduler queueing a whole level at once and the warehouse serving all of them together.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

BUILT = ("model", "seed", "snapshot")  # the nodes a per-model task builds (tests ride along)


def longest_chain(manifest: dict[str, Any]) -> list[str]:
    """What the per-model DAG must select to hold its longest chain of tasks, root first: the built
    nodes on a longest path from a root to a leaf. A test that reads several built nodes is a task
    of its own after all of them (jaffle_shop's relationships tests), so it counts as a level; when
    one ends the chain, its other parents are selected too, or the test would not be there. Of equal
    paths, the one through the greatest unique ids (deterministic for a given manifest)."""
    nodes = {uid: node for uid, node in manifest["nodes"].items() if _is_task(node, manifest["nodes"])}
    if not any(node["resource_type"] in BUILT for node in nodes.values()):
        raise ValueError("the manifest has no model, seed or snapshot")

    def parents(uid: str) -> list[str]:
        return [parent for parent in nodes[uid].get("depends_on", {}).get("nodes", []) if parent in nodes]

    @functools.cache
    def depth(uid: str) -> int:
        return 1 + max((depth(parent) for parent in parents(uid)), default=0)

    chain = [max(nodes, key=lambda uid: (depth(uid), uid))]
    while parents(chain[-1]):
        chain.append(max(parents(chain[-1]), key=lambda uid: (depth(uid), uid)))
    selected = [uid for uid in reversed(chain) if nodes[uid]["resource_type"] in BUILT]
    if nodes[chain[0]]["resource_type"] == "test":  # it runs only once its other parents are built too
        selected += [parent for parent in parents(chain[0]) if parent not in selected]
    return [nodes[uid]["name"] for uid in selected]


def _is_task(node: dict[str, Any], all_nodes: dict[str, Any]) -> bool:
    """Built nodes, and the tests that read more than one of them."""
    if node["resource_type"] in BUILT:
        return True
    read = [
        uid
        for uid in node.get("depends_on", {}).get("nodes", [])
        if all_nodes.get(uid, {}).get("resource_type") in BUILT
    ]
    return node["resource_type"] == "test" and len(read) > 1


def declarations(chain: list[str]) -> list[dict[str, Any]]:
    """The shipped DAG ids, re-declared: the per-model DAG builds only `chain`, the single task
    (the baseline) the whole project."""
    return [
        {"id": "{project}_{mode}", "select": chain},
        {"id": "{project}_{mode}_single_task", "granularity": "project", "allow_overlap": True},
    ]


def settings_override(manifest_path: Path, project: str = "jaffle_shop") -> dict[str, str]:
    """The services' setting that declares the project's DAGs as above."""
    chain = longest_chain(json.loads(manifest_path.read_text()))
    return {f"BLUEPRINT__PROJECTS__{project.upper()}__DAGS": json.dumps(declarations(chain))}
