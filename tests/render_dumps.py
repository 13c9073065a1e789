"""Structural dumps of DAGs (tools/dag_dump.py) built in fresh processes, with and without the
render shortcuts (include/blueprint/render_shortcuts.py), and a readable account of differences."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from include.blueprint.render_shortcuts import SWITCH
from tests.conftest import REPO_ROOT


def dump(out: Path, shortcuts: bool, *arguments: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`python -m tools.dag_dump` in a fresh process (the shortcuts are process-wide)."""
    environ = {**os.environ, **(env or {}), SWITCH: "1" if shortcuts else "0", "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "tools.dag_dump", "--out", str(out), *arguments]
    result = subprocess.run(command, env=environ, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return json.loads(out.read_text())


def differences(before: Any, after: Any, path: str = "", limit: int = 12) -> list[str]:
    """Where two dumps differ, as `path: before != after` lines (the first `limit`)."""
    if type(before) is not type(after):
        return [f"{path}: {str(before)[:200]} != {str(after)[:200]}"]
    found: list[str] = []
    if isinstance(before, dict):
        for key in sorted(set(before) | set(after)):
            if key not in before or key not in after:
                found.append(f"{path}/{key}: only {'after' if key in after else 'before'}")
            else:
                found += differences(before[key], after[key], f"{path}/{key}", limit - len(found))
            if len(found) >= limit:
                break
    elif isinstance(before, list) and len(before) == len(after):
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            found += differences(one, other, f"{path}[{index}]", limit - len(found))
            if len(found) >= limit:
                break
    elif before != after:
        found.append(f"{path}: {str(before)[:200]} != {str(after)[:200]}")
    return found[:limit]


def outlet_uris(dumped: dict[str, Any], dag_id: str) -> set[str]:
    return {outlet["uri"] for task in dumped[dag_id]["tasks"].values() for outlet in task["outlets"]}
