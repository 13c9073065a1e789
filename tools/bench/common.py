"""Helpers both benchmarks share: statistics, the printed table, child-process output, bytecode state.

Standard library only, so the unit tests import it without Airflow.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.local_env import LOCAL_DIR, REPO_ROOT

BENCH_DIR = LOCAL_DIR / "bench"
BENCH_AIRFLOW_HOME = BENCH_DIR / "airflow"
LOG_DIR = BENCH_DIR / "logs"
SITE_PACKAGES = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
COMPILED_PACKAGES = {
    "airflow venv": REPO_ROOT / ".venvs" / "airflow" / SITE_PACKAGES,
    "dbt venv": REPO_ROOT / ".venvs" / "dbt" / SITE_PACKAGES,
}
COSMOS_PHASE = re.compile(r"It took ([0-9.]+)s to (parse the dbt project|build the Airflow DAG)")


class BenchError(RuntimeError):
    """A benchmark step failed; printed as one line, without a traceback."""


@dataclass(frozen=True)
class Summary:
    runs: int
    min: float
    median: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("no samples to summarize")
    return Summary(runs=len(samples), min=min(samples), median=statistics.median(samples))


def medians_by_key(samples: Sequence[dict[str, float]]) -> dict[str, float]:
    """The median of each key over dicts of samples, each key over the dicts that have it."""
    keys = sorted({key for sample in samples for key in sample})
    return {key: statistics.median(sample[key] for sample in samples if key in sample) for key in keys}


def timed(function: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(function(*args), its wall time in seconds)."""
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def speedup(slow: float, fast: float) -> float | None:
    """How many times `fast` fits into `slow`; None when `fast` is not a positive time."""
    return slow / fast if fast > 0 else None


def verdict(passed: bool, word: str = "OK") -> str:
    """ "OK"/"FAIL" for a check, or e.g. "MET"/"NOT MET" for a target."""
    return word if passed else ("FAIL" if word == "OK" else f"NOT {word}")


def format_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}" if seconds < 1 else f"{seconds:.2f}"


def format_ratio(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1f}x"


def format_min_median(summary: Summary | None) -> str:
    return "-" if summary is None else f"{format_seconds(summary.min)} / {format_seconds(summary.median)}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: columns padded to their widest cell, first column left-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            str(cell).ljust(width) if index == 0 else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def last_json_line(output: str) -> dict[str, Any] | None:
    """The last line of `output` that is a JSON object (a child's summary), or None."""
    for text in reversed(output.strip().splitlines()):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def one_line(text: str) -> str:
    """The first non-empty line of an error message."""
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "unknown error")


def compiled_share(root: Path) -> tuple[int, int]:
    """(modules, modules with a cached .pyc) under a folder such as a venv's site-packages."""
    modules = compiled = 0
    for directory, subdirs, files in os.walk(root):
        cache = Path(directory) / "__pycache__"
        cached = {name.split(".")[0] for name in os.listdir(cache)} if "__pycache__" in subdirs else set()
        stems = [name[:-3] for name in files if name.endswith(".py")]
        modules += len(stems)
        compiled += sum(1 for stem in stems if stem in cached)
    return modules, compiled


def top_level(module_names: set[str]) -> set[str]:
    """The top-level packages of a set of module names (e.g. from sys.modules)."""
    return {name.partition(".")[0] for name in module_names}


def cosmos_phases(log_text: str) -> dict[str, float]:
    """Cosmos's own timing of the first DAG construction in a log: loading the dbt project, building the DAG."""
    phases: dict[str, float] = {}
    for seconds, phase in COSMOS_PHASE.findall(log_text):
        phases.setdefault("load" if phase.startswith("parse") else "build", float(seconds))
    return phases


def bytecode_state() -> dict[str, Any]:
    packages = {}
    for label, package_dir in COMPILED_PACKAGES.items():
        modules, compiled = compiled_share(package_dir)
        packages[label] = {"modules": modules, "compiled": compiled}
    return {"PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", ""), "packages": packages}


def describe_bytecode(state: dict[str, Any]) -> str:
    parts = [f"{label} {item['compiled']}/{item['modules']} modules" for label, item in state["packages"].items()]
    # compileall skips the odd file that is not Python 3 (e.g. aenum/_py2.py), hence 99 %, not 100 %.
    complete = all(item["compiled"] >= 0.99 * item["modules"] > 0 for item in state["packages"].values())
    verdict = "yes" if complete else "NO (run `make venvs`, which runs compileall)"
    flag = state["PYTHONDONTWRITEBYTECODE"] or "unset"
    return f"venvs byte-compiled: {verdict} ({', '.join(parts)}; PYTHONDONTWRITEBYTECODE={flag})"


def run_json_child(command: list[str], env: dict[str, str], log_path: Path) -> tuple[dict[str, Any] | None, int, float]:
    """Run a child process that prints a JSON summary last: (summary, exit code, wall seconds).

    Its whole output (Airflow logs to stdout) goes to `log_path`; the wall time includes the process
    start and the imports.
    """
    started = time.perf_counter()
    result = subprocess.run(
        command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wall = time.perf_counter() - started
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(result.stdout)
    return last_json_line(result.stdout), result.returncode, wall


def count_nodes(manifest_path: Path) -> int:
    """The dbt nodes a DAG can render as tasks: models, seeds, snapshots and tests."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return sum(1 for node in nodes if node["resource_type"] in {"model", "seed", "test", "snapshot"})


def ensure_fresh_manifest(project_dir: Path) -> None:
    from include.blueprint.manifest import ManifestNotReady, require_fresh_manifest
    from tools.manifest import parse_project

    try:
        require_fresh_manifest(project_dir, project_dir / "target" / "manifest.json")
    except ManifestNotReady:
        print(f"bench: dbt parse {display_path(project_dir)} (manifest missing or stale)", flush=True)
        parse_project(project_dir)


def prepare_jaffle_shop() -> Path:
    """dbt/jaffle_shop with seed files (the default data when there are none) and a fresh manifest."""
    from tools.generate_data import generate

    project_dir = REPO_ROOT / "dbt" / "jaffle_shop"
    if not any((project_dir / "seeds").glob("*.csv")):
        generate(project_dir / "seeds")
    ensure_fresh_manifest(project_dir)
    return project_dir


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def display_path(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
