"""Helpers the benchmarks share: statistics, ratios, the printed table, child-process output, bytecode
state, the DAG variants and a throwaway PostgreSQL.

No Airflow import, so the unit tests import it without starting Airflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.local_env import LOCAL_DIR, REPO_ROOT
from tools.postgres import LocalPostgres, free_port, wait_until_reachable

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


@dataclass(frozen=True)
class DagVariant:
    """One DAG to time. `runner` is a module run as `python -m <runner> <dag_id>` that prints a JSON
    summary ({"state", "seconds", "tasks"}) as its last line (the dag.test() benchmark); `env` is
    added to the shared environment."""

    dag_id: str
    description: str
    runner: str = "tools.run_dag"
    env: Mapping[str, str] = field(default_factory=dict)


def select_variants(names: str | None, variants: Sequence[DagVariant], other: str | None = None) -> list[DagVariant]:
    """The variants named in a comma-separated list, in that order; all of them when None. Other
    names are refused, or become variants described as `other` when it is given."""
    if not names:
        return list(variants)
    known = {variant.dag_id: variant for variant in variants}
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if other is not None:
        known |= {name: DagVariant(name, other) for name in wanted if name not in known}
    unknown = [name for name in wanted if name not in known]
    if unknown or not wanted:
        raise BenchError(f"unknown DAG(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return [known[name] for name in wanted]


def ratios_to_baseline(
    results: Mapping[str, Mapping[str, Any]], baseline: str, measures: Sequence[str]
) -> dict[str, dict[str, float | None]]:
    """Each DAG's median over the baseline's median, per measure; {} without the baseline."""
    if baseline not in results:
        return {}
    base = results[baseline]
    return {
        dag_id: {measure: speedup(result[measure]["median"], base[measure]["median"]) for measure in measures}
        for dag_id, result in results.items()
        if dag_id != baseline
    }


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """How long at least one of the intervals was open (their union's length)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def summarize(samples: Sequence[float]) -> Summary:
    if not samples:
        raise ValueError("no samples to summarize")
    return Summary(runs=len(samples), min=min(samples), median=statistics.median(samples))


def median_sample(samples: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The sample whose `key` is the median (the lower middle one for an even count)."""
    ordered = sorted(samples, key=lambda sample: sample[key])
    return ordered[(len(ordered) - 1) // 2]


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


def prepare_jaffle_shop(scale: int | None = None) -> Path:
    """dbt/jaffle_shop with a fresh manifest, and seed files: generated at `scale` when given,
    else the default data when there are none."""
    from tools.generate_data import generate

    project_dir = REPO_ROOT / "dbt" / "jaffle_shop"
    if scale is not None or not any((project_dir / "seeds").glob("*.csv")):
        generate(project_dir / "seeds", scale=scale or 1)
    ensure_fresh_manifest(project_dir)
    return project_dir


def finish_report(report: dict[str, Any], started: float, path: Path, name: str) -> None:
    """Add the bytecode state, the duration and the load to a benchmark's report, print, and save it."""
    report["bytecode"] = bytecode_state()
    print(describe_bytecode(report["bytecode"]))
    report["total_seconds"] = time.monotonic() - started
    report["load_average_at_end"] = os.getloadavg()
    write_json(path, report)
    print(f"wrote {display_path(path)}; {name} benchmark took {report['total_seconds']:.0f} s")


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def throwaway_postgres() -> Iterator[LocalPostgres]:
    """A started PostgreSQL server in a temporary folder, destroyed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="blueprint-bench-pg-"))
    server = LocalPostgres(root, free_port())
    try:
        wait_until_reachable(server.start())
        print(f"bench: PostgreSQL on 127.0.0.1:{server.port} (throwaway, in {server.root})", flush=True)
        yield server
    finally:
        server.destroy()
        shutil.rmtree(root, ignore_errors=True)


def display_path(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
