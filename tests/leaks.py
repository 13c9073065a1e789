"""The session's leak check: what a test session starts, it stops and removes, also when a test
fails. Before the first test, `take_snapshot` notes the processes, Docker containers and temporary
folders that exist; after every fixture is torn down, `find_leaks` names what is new and the
session's own (tests/conftest.py fails the run with it).

"The session's own", so that the user's processes, the Docker engine (started with setsid by
ci/ensure-docker.sh) and another test session running at the same time never count:
- processes: descendants of the pytest process; processes whose environment carries this session's
  SESSION_VARIABLE (a PostgreSQL server started by `pg_ctl` is re-parented to init, so descent alone
  misses it); processes whose command line names one of the session's own folders (a warm dbt
  server keeps only a few variables, but its socket lives in the session's TMPDIR);
- containers: `dbt-image-test-<pid>-*` (tests/container's `run_image`), compose project
  `blueprint-test-<pid>` (the stack tests), the ACI emulator's (label `aci-emulator-owner=<pid>`),
  and `dbt-*` containers (docker mode) whose POSTGRES_PORT is one of SESSION_PORTS;
- temporary folders: new entries with one of TEMP_PREFIXES in the temp dir (and in `scan_dirs`),
  owned by this user and not named by a live process of another session (its own folders).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

SESSION_VARIABLE = "LEAK_CHECK_SESSION"
WORKER_VARIABLE = "PYTEST_XDIST_WORKER"  # set by pytest-xdist in each worker process
WORKER_TEMP_PREFIX = "blueprint-worker-"
SHARED_TEMP_VARIABLE = "LEAK_CHECK_SHARED_TMPDIR"  # the temp dir a worker's own folder sits in
# Every prefix this repository gives a folder in the temp dir (tempfile.mkdtemp, mktemp -d, fixed
# names). Not blueprint-pginstall-*: a deliberate, shared cache of the PostgreSQL binaries.
TEMP_PREFIXES = ("blueprint-", "aci-emulator-", "bench-image-pg-", "python-base-rootfs.", "astro-dbt-bundle.")
CACHES = ("blueprint-pginstall-",)
# The Docker engine outlives the session by design (ci/ensure-docker.sh starts it with setsid), and
# the processes of containers are reported as containers.
ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "docker-proxy")
# What stops asynchronously (a server's shutdown checkpoint, a killed process group) gets this long.
GRACE_SECONDS = float(os.environ.get("LEAK_CHECK_GRACE_SECONDS", "15"))

# PostgreSQL ports of the servers this session started (tests/conftest.py's postgres_server adds
# each): a docker-mode or ACI container that talks to one of them is this session's.
SESSION_PORTS: set[int] = set()


def mark_session() -> str:
    """Give this process (and so every process it starts) the session's id, once. Each pytest-xdist
    worker is a session of its own (its id ends with the worker's name), so its leak check claims
    neither what the other workers start nor what they leave for their own check."""
    session = os.environ.get(SESSION_VARIABLE) or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    worker = os.environ.get(WORKER_VARIABLE, "")
    if worker and not session.endswith(f"-{worker}"):
        session = f"{session}-{worker}"
    os.environ[SESSION_VARIABLE] = session
    return session


def isolate_worker_temp() -> Path | None:
    """In a pytest-xdist worker, a temp folder of the worker's own as TMPDIR (for this process and
    every process it starts, warm dbt servers among them), so that what a worker's tests leave in
    the temp dir is found by that worker's check alone. Returns it (None outside a worker); a
    process started inside a worker keeps the folder it inherited."""
    worker = os.environ.get(WORKER_VARIABLE, "")
    if not worker:
        return None
    current = Path(tempfile.gettempdir())
    if current.name.startswith(f"{WORKER_TEMP_PREFIX}{worker}-"):
        return current
    private = Path(tempfile.mkdtemp(prefix=f"{WORKER_TEMP_PREFIX}{worker}-", dir=current))
    private.chmod(0o755)  # as root the PostgreSQL server runs as `nobody`, which must reach its folder
    os.environ[SHARED_TEMP_VARIABLE] = str(current)
    os.environ["TMPDIR"] = str(private)
    tempfile.tempdir = str(private)
    return private


def shared_temp_dir() -> Path:
    """The machine's temp dir, also in a pytest-xdist worker: for a folder whose paths must stay
    short (a unix socket path has at most 107 bytes), which the test removes itself."""
    return Path(os.environ.get(SHARED_TEMP_VARIABLE) or tempfile.gettempdir())


@dataclass(frozen=True)
class Snapshot:
    processes: frozenset[tuple[int, float]]
    containers: frozenset[str] | None  # None: no Docker engine answered
    temp_entries: frozenset[Path]
    scan_dirs: tuple[Path, ...]


def _key(process: psutil.Process) -> tuple[int, float] | None:
    with contextlib.suppress(psutil.Error):
        return process.pid, process.create_time()
    return None


def _temp_entries(folders: tuple[Path, ...]) -> set[Path]:
    found = set()
    for folder in folders:
        with contextlib.suppress(OSError):
            found |= {
                folder / name
                for name in os.listdir(folder)
                if name.startswith(TEMP_PREFIXES) and not name.startswith(CACHES)
            }
    return found


def docker_containers() -> list[dict] | None:
    """Every container of the local engine (`docker inspect`), or None when no engine answers."""
    if shutil.which("docker") is None:
        return None
    try:
        listed = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True, timeout=20)
        if listed.returncode != 0:
            return None
        if not listed.stdout.split():
            return []
        inspected = subprocess.run(
            ["docker", "inspect", *listed.stdout.split()], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    # A container removed between the two calls makes inspect exit 1, with the others still printed.
    with contextlib.suppress(json.JSONDecodeError):
        return json.loads(inspected.stdout or "[]")
    return None


def take_snapshot(*scan_dirs: Path) -> Snapshot:
    folders = (Path(tempfile.gettempdir()), *scan_dirs)
    containers = docker_containers()
    return Snapshot(
        processes=frozenset(key for key in map(_key, psutil.process_iter()) if key is not None),
        containers=None if containers is None else frozenset(container["Id"] for container in containers),
        temp_entries=frozenset(_temp_entries(folders)),
        scan_dirs=folders,
    )


def container_is_ours(container: dict, pid: int, ports: set[int]) -> bool:
    name = container.get("Name", "").lstrip("/")
    config = container.get("Config") or {}
    labels = config.get("Labels") or {}
    if name.startswith(f"dbt-image-test-{pid}-") or labels.get("com.docker.compose.project") == f"blueprint-test-{pid}":
        return True
    if labels.get("aci-emulator-owner") == str(pid):
        return True
    if name.startswith("dbt-") and not name.startswith("dbt-image-test-"):
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        return env.get("POSTGRES_PORT", "").isdigit() and int(env["POSTGRES_PORT"]) in ports
    return False


def _describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"process {process.pid}: {' '.join(process.cmdline())[:300] or process.name()}"
    return f"process {process.pid}"


def _texts(process: psutil.Process) -> tuple[str, dict[str, str]]:
    """A process's command line and environment ('' and {} where it cannot be read)."""
    command, environment = "", {}
    with contextlib.suppress(psutil.Error):
        command = " ".join(process.cmdline())
    with contextlib.suppress(psutil.Error):
        environment = process.environ()
    return command, environment


def session_processes(before: Snapshot, session: str, own_paths: list[str]) -> list[psutil.Process]:
    me = psutil.Process()
    descendants = {process.pid for process in me.children(recursive=True)}
    found = []
    for process in psutil.process_iter():
        key = _key(process)
        if key is None or key in before.processes or process.pid == me.pid:
            continue
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue  # it has exited; only its exit status is left
        if _belongs_to_the_engine(process):
            continue
        command, environment = _texts(process)
        if (
            process.pid in descendants
            or environment.get(SESSION_VARIABLE) == session
            or any(path in command for path in own_paths)
        ):
            found.append(process)
    return found


def _belongs_to_the_engine(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return any(p.name() in ENGINE_PROCESSES for p in [process, *process.parents()])
    return False


def _named_by_other_sessions(entries: set[Path], session: str, ours: set[int]) -> set[Path]:
    """The entries a live process of another session names in its command line, environment or cwd."""
    named: set[Path] = set()
    for process in psutil.process_iter():
        if process.pid in ours or len(named) == len(entries):
            continue
        command, environment = _texts(process)
        if environment.get(SESSION_VARIABLE) == session:
            continue
        with contextlib.suppress(psutil.Error):
            command += " " + process.cwd()
        texts = [command, *environment.values()]
        named |= {entry for entry in entries if any(str(entry) in text for text in texts)}
    return named


def find_leaks(before: Snapshot, own_paths: list[str]) -> list[str]:
    """What this session left behind, one description per item (empty when nothing)."""
    session = os.environ.get(SESSION_VARIABLE, "")
    processes = session_processes(before, session, own_paths)
    leaks = [_describe(process) for process in processes]
    if before.containers is not None:
        pid = os.getpid()
        for container in docker_containers() or []:
            if container["Id"] not in before.containers and container_is_ours(container, pid, SESSION_PORTS):
                state = (container.get("State") or {}).get("Status", "?")
                image = (container.get("Config") or {}).get("Image", "?")
                leaks.append(f"container {container['Name'].lstrip('/')} ({state}, image {image})")
    entries = {entry for entry in _temp_entries(before.scan_dirs) - before.temp_entries if _owned_by_me(entry)}
    ours = {os.getpid(), *(process.pid for process in processes)}
    ours |= {process.pid for process in psutil.Process().children(recursive=True)}
    entries -= _named_by_other_sessions(entries, session, ours)
    leaks += [f"temporary folder {entry}" for entry in sorted(entries)]
    return leaks


def _owned_by_me(path: Path) -> bool:
    try:
        return path.lstat().st_uid == os.getuid()
    except OSError:
        return False


def wait_for_leaks(before: Snapshot, own_paths: list[str], grace: float = GRACE_SECONDS) -> list[str]:
    """find_leaks, retried for up to `grace` seconds while what is stopping finishes stopping."""
    deadline = time.monotonic() + grace
    while True:
        leaks = find_leaks(before, own_paths)
        if not leaks or time.monotonic() >= deadline:
            return leaks
        time.sleep(0.5)


def stop_new_processes(before: Snapshot, script: str, own_paths: list[str], timeout: float = 10) -> list[int]:
    """Stop this session's new processes running a script whose path ends with `script` (SIGTERM,
    then SIGKILL): the repository's copy or a fork's (tests/forks.py copies the repository)."""
    session = os.environ.get(SESSION_VARIABLE, "")
    started = []
    for process in session_processes(before, session, own_paths):
        command, _ = _texts(process)
        if any(argument.endswith(script) for argument in command.split()):
            with contextlib.suppress(psutil.Error):
                process.terminate()
                started.append(process)
    _, alive = psutil.wait_procs(started, timeout=timeout)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return [process.pid for process in started]


def report(leaks: list[str]) -> str:
    listed = "\n".join(f"  - {leak}" for leak in leaks)
    return (
        f"this test session left {len(leaks)} thing(s) behind, still there after every test and fixture "
        f"had finished (tests/leaks.py; each test must stop what it starts, in a finally or a fixture's "
        f"teardown):\n{listed}"
    )
