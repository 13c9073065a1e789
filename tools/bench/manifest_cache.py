"""A warm dbt lever on and off, side by side: a per-model task's dbt command.

    python -m tools.bench.manifest_cache [--models 300,1000] [--repeat 7] [--lever one_pass_json]

The levers: `manifest_cache` (the server keeps the partial parse deserialised; the default),
`one_pass_json` (the fork writes dbt's JSON artifacts with the C encoder) and `end_manifest` (no
manifest write at the end of a command that succeeded, for a task whose manifest nothing reads).

For each project size it writes the synthetic project (tools/synthetic_project.py), starts a
throwaway PostgreSQL, seeds it and parses once, then runs what a per-model Cosmos task runs: one
`dbt build --select <one staging model>` through the warm dbt client, in a target folder of its
own with the saved `partial_parse.msgpack` and `manifest.json` copied in (as Cosmos copies them
from its cache). Lever on and lever off take turns (WARM_DBT_MANIFEST_CACHE=1/0 start separate
servers), so both see the same load; each command's wall time is the client's, start to exit. The
single task (one `dbt build` of the whole project) gets the same lever; it is timed the same way,
fewer times. A run whose msgpack dbt rewrote (a full parse, not the partial-parse skip every task
should get) is refused.

dbt runs in its own venv, through the warm client: never in this (Airflow's) interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from include.blueprint.cosmos_configs import WARM_DBT
from include.blueprint.cosmos_levers import END_MANIFEST_SWITCH, ON_FAILURE
from tools import synthetic_project
from tools.bench.common import BENCH_DIR, BenchError, format_table, throwaway_postgres
from tools.local_env import DBT_BIN, QUIET_DBT

WORK_DIR = BENCH_DIR / "manifest_cache"
SELECT = "stg_0001"  # a staging model: the seed is its only parent
MODES = ("on", "off")
# lever: (variable, its value for on, for off)
LEVERS = {
    "manifest_cache": ("WARM_DBT_MANIFEST_CACHE", "1", "0"),
    "one_pass_json": ("WARM_DBT_ONE_PASS_JSON", "1", "0"),
    "end_manifest": (END_MANIFEST_SWITCH, ON_FAILURE, "always"),
}
PER_MODEL = f"per-model task: dbt build --select {SELECT}"
SINGLE = "single task: dbt build (whole project)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="300", help="project sizes, comma-separated (default 300)")
    parser.add_argument("--lever", choices=sorted(LEVERS), default="manifest_cache", help="the lever to turn off")
    parser.add_argument("--repeat", type=int, default=7, help="per-model commands per mode and size (default 7)")
    parser.add_argument(
        "--single-repeat", type=int, default=2, help="whole-project builds per mode and size (default 2; 0: none)"
    )
    return parser.parse_args(argv)


def dbt(executable: Path, project: Path, env: dict[str, str], target: Path, *args: str) -> float:
    """Run one dbt command; its wall time. A failed command stops the benchmark."""
    command = [str(executable), *args, "--project-dir", str(project), "--profiles-dir", str(project)]
    command += ["--target-path", str(target), "--log-path", str(target)]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=project, timeout=900)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"`dbt {' '.join(args)}` failed ({result.returncode}): {result.stdout[-1500:]}")
    return seconds


def task_target(saved: bytes, manifest: bytes, folder: Path) -> Path:
    """A task's own target folder with the saved partial parse and manifest in it, as Cosmos
    prepares it."""
    folder.mkdir(parents=True)
    (folder / "partial_parse.msgpack").write_bytes(saved)
    (folder / "manifest.json").write_bytes(manifest)
    return folder


def wait_for_cached(temp: Path, saved: bytes) -> None:
    """Until the cache-on server has loaded the msgpack (its first command only reported it)."""
    line = f"manifest cache: loaded {hashlib.sha256(saved).hexdigest()[:12]}"
    deadline = time.monotonic() + 60
    while not any(line in log.read_text() for log in temp.glob("warm-dbt-*/*.log")):
        if time.monotonic() > deadline:
            raise BenchError("the cache-on server never loaded the manifest")
        time.sleep(0.2)


def measure_size(models: int, args: argparse.Namespace, base_env: dict[str, str], temp: Path) -> dict[str, dict]:
    """{workload: {mode: [seconds, ...]}} for one project size."""
    project = WORK_DIR / f"synthetic_{models}"
    synthetic_project.write_project(project, models)
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=WORK_DIR))
    try:
        setup = runs / "setup"
        dbt(DBT_BIN / "dbt", project, base_env, setup, "seed")  # parses in full, saves the msgpack
        saved = (setup / "partial_parse.msgpack").read_bytes()
        manifest = (setup / "manifest.json").read_bytes()
        workloads = {PER_MODEL: (("build", "--select", SELECT), args.repeat)}
        if args.single_repeat:
            workloads[SINGLE] = (("build",), args.single_repeat)
        lever = LEVERS[args.lever]
        return {
            name: alternate(project, (saved, manifest), base_env, temp, runs / str(index), command, repeat, lever)
            for index, (name, (command, repeat)) in enumerate(workloads.items())
        }
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def alternate(
    project: Path, placed: tuple[bytes, bytes], base_env: dict[str, str], temp: Path, runs: Path, command: tuple,
    repeat: int, lever: tuple[str, str, str],
) -> dict[str, list[float]]:  # fmt: skip
    """The command with the lever on and off in turns; the first of each mode (which may start
    its server) is not counted."""
    variable, *values = lever
    saved = placed[0]
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    for attempt in range(repeat + 1):
        for mode, switch in zip(MODES, values, strict=True):
            target = task_target(*placed, runs / f"{mode}-{attempt}")
            env = {**base_env, variable: switch}
            seconds = dbt(WARM_DBT, project, env, target, *command)
            if (target / "partial_parse.msgpack").read_bytes() != saved:
                raise BenchError(f"dbt parsed the project again in run {attempt} ({mode})")
            if attempt:
                times[mode].append(seconds)
            elif mode == "on":
                wait_for_cached(temp, saved)
    return times


def report(results: dict[int, dict[str, dict[str, list[float]]]], lever: str) -> str:
    rows = []
    for models, workloads in results.items():
        for workload, times in workloads.items():
            on, off = (statistics.median(times[mode]) for mode in ("on", "off"))
            cells = [f"{off:.3f}", f"{on:.3f}", f"{off - on:.3f}", f"{on / off:.2f}x", str(len(times["on"]))]
            rows.append([str(models), workload, *cells])
    headers = ["models", "command", f"{lever} off (median s)", "on (median s)", "saved (s)", "on / off", "runs each"]
    return format_table(headers, rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(size) for size in args.models.split(",")]
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    # Short: the servers' sockets live here, and a socket's path has a length limit.
    temp = Path(tempfile.mkdtemp(prefix="mc-bench-"))
    results: dict[int, dict[str, dict[str, list[float]]]] = {}
    try:
        with throwaway_postgres() as server:
            base_env = {
                **os.environ, **server.settings().as_env(), **QUIET_DBT,
                "WARM_DBT_EXECUTABLE": str(DBT_BIN / "dbt"), "TMPDIR": str(temp), "WARM_DBT_IDLE_SECONDS": "30",
            }  # fmt: skip
            for models in sizes:
                print(
                    f"bench: {models} models, {args.lever} on and off, {args.repeat} per-model and "
                    f"{args.single_repeat} whole builds each",
                    flush=True,
                )
                results[models] = measure_size(models, args, base_env, temp)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    finally:
        stop_servers(temp)
    print(report(results, args.lever))
    for models, workloads in results.items():
        for workload, times in workloads.items():
            samples = "; ".join(f"{mode} " + " ".join(f"{seconds:.2f}" for seconds in times[mode]) for mode in MODES)
            print(f"bench: {models} models, {workload}, every run (s): {samples}")
    return 0


def stop_servers(temp: Path) -> None:
    """The warm dbt servers this benchmark started (they would stop themselves when idle)."""
    found = subprocess.run(["pgrep", "-f", f"warm_dbt/server.py {temp}"], capture_output=True, text=True)
    for pid in found.stdout.split():
        subprocess.run(["kill", pid], check=False)
    deadline = time.monotonic() + 15
    while (
        time.monotonic() < deadline
        and subprocess.run(["pgrep", "-f", f"server.py {temp}"], capture_output=True).returncode == 0
    ):
        time.sleep(0.2)
    shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
