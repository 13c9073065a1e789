#!/usr/bin/env python3
"""`dbt`, started warm: runs the command in a fork of a dbt process that has already imported dbt.

Cosmos calls this file (through the `dbt` link next to it) as its dbt executable. It runs in
whatever Python starts it, with the standard library only: it hands the command, the working
directory, the environment and its own stdin/stdout/stderr to the warm dbt server of the real dbt
named by WARM_DBT_EXECUTABLE (starting that server on first use), and exits with dbt's exit code.
Whenever the server cannot be used it runs the real dbt itself, so the result never depends on
the server being there. WARM_DBT=0 turns the server off.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = Path(__file__).resolve().with_name("server.py")
SERVER_CODE = tuple(
    SERVER.with_name(name) for name in ("server.py", "warm_up.py", "manifest_cache.py", "manifest_writes.py")
)
HEADER = struct.Struct("!I")
START_TIMEOUT_SECONDS = 60.0
# The server gets only these from the first caller's environment: never its credentials.
SERVER_ENVIRONMENT = (
    "PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "WARM_DBT_IDLE_SECONDS", "WARM_DBT_WARM_UP", "WARM_DBT_MANIFEST_CACHE",
)  # fmt: skip


def real_dbt() -> Path:
    value = os.environ.get("WARM_DBT_EXECUTABLE", "")
    if not value or not os.access(value, os.X_OK):
        sys.exit(f"warm dbt: WARM_DBT_EXECUTABLE must name the real dbt executable (got {value!r})")
    return Path(value)


def run_directly(dbt: Path, args: list[str]) -> None:
    os.execv(dbt, [str(dbt), *args])


def interpreter_of(dbt: Path) -> str | None:
    """The Python that the dbt console script runs with, from its shebang line."""
    with contextlib.suppress(OSError, UnicodeDecodeError), dbt.open() as script:
        first = script.readline().strip()
        if first.startswith("#!") and "python" in first:
            return first[2:].split()[0]
    return None


def socket_path(dbt: Path) -> Path:
    """One server per user, dbt install, server version and warm-up and manifest cache switches:
    a reinstalled dbt gets a new server."""
    folder = Path(tempfile.gettempdir()) / f"warm-dbt-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    status = folder.stat()
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise PermissionError(f"{folder} must belong to this user alone")
    resolved = dbt.resolve()
    code = b"".join(path.read_bytes() for path in SERVER_CODE)
    switches = ":".join(os.environ.get(name, "1") for name in ("WARM_DBT_WARM_UP", "WARM_DBT_MANIFEST_CACHE"))
    key = f"{resolved}:{resolved.stat().st_mtime_ns}:{hashlib.sha256(code).hexdigest()}:{switches}"
    return folder / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.sock"


def connect(path: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(path))
    except OSError:
        client.close()
        return None
    return client


def start_server(dbt: Path, path: Path) -> socket.socket | None:
    """Start the server once (a lock keeps concurrent tasks from starting several) and connect."""
    python = interpreter_of(dbt)
    if python is None:
        return None
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        connection = connect(path)
        if connection is not None:
            return connection
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a server that died
        environment = {name: os.environ[name] for name in SERVER_ENVIRONMENT if name in os.environ}
        with open(f"{path}.log", "ab") as log:
            server = subprocess.Popen(
                [python, str(SERVER), str(path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=environment,
                start_new_session=True,  # outlives this task; stops itself when idle
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline and server.poll() is None:
            connection = connect(path)
            if connection is not None:
                return connection
            time.sleep(0.05)
    return None


def send_request(connection: socket.socket, args: list[str]) -> None:
    umask = os.umask(0)
    os.umask(umask)
    body = json.dumps({"args": args, "cwd": os.getcwd(), "env": dict(os.environ), "umask": umask}).encode()
    socket.send_fds(connection, [HEADER.pack(len(body))], [0, 1, 2])
    connection.sendall(body)


def receive_exit_code(connection: socket.socket) -> int:
    data = b""
    while len(data) < HEADER.size:
        chunk = connection.recv(HEADER.size - len(data))
        if not chunk:
            print("warm dbt: the dbt process ended without an exit code", file=sys.stderr)
            return 2
        data += chunk
    return HEADER.unpack(data)[0]


def main(args: list[str]) -> int:
    dbt = real_dbt()
    if os.environ.get("WARM_DBT") == "0" or not hasattr(socket, "send_fds"):
        run_directly(dbt, args)
    try:
        path = socket_path(dbt)
        connection = connect(path) or start_server(dbt, path)
    except OSError as error:
        print(f"warm dbt: running dbt directly ({error})", file=sys.stderr)
        connection = None
    if connection is None:
        run_directly(dbt, args)
    with connection:
        send_request(connection, args)
        return receive_exit_code(connection)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
