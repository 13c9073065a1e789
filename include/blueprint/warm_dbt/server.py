"""The warm dbt server: dbt imported once, each command run in a fork of this process.

Runs with dbt's own venv Python (dbt never enters Airflow's environment) and uses only the
standard library and dbt. A dbt process spends 1.4-2.3 s importing itself before it reads the
project; a fork of a process that has already imported it starts in milliseconds. Each command
gets a fresh fork of a process that has run no dbt command yet, so no state carries over from one
command to the next; the fork writes straight to the caller's stdout and stderr, whose file
descriptors the client passes over the socket.

    python server.py SOCKET_PATH   # started by the client; exits after WARM_DBT_IDLE_SECONDS idle

Before it listens, the server runs dbt's first-use work once (warm_up.py), so forks start with
dbt's serialisers and schemas already compiled; WARM_DBT_WARM_UP=0 skips that. It also keeps
dbt's partial-parse manifests deserialised for the forks (manifest_cache.py;
WARM_DBT_MANIFEST_CACHE=0 turns that off).
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import threading
import time

import manifest_cache  # next to this file, which runs as a script

IDLE_SECONDS = float(os.environ.get("WARM_DBT_IDLE_SECONDS", "600"))
# After the caller goes away (a killed task), dbt gets this long to cancel its queries.
CANCEL_GRACE_SECONDS = 10.0
HEADER = struct.Struct("!I")


def preload_dbt() -> None:
    """Import what every dbt command imports, and the installed adapters."""
    importlib.import_module("dbt.cli.main")
    for module in ("dbt.parser.manifest", "dbt.task.build", "dbt.task.run", "dbt.task.seed", "dbt.task.test"):
        importlib.import_module(module)
    import dbt.adapters

    for plugin in pkgutil.iter_modules(dbt.adapters.__path__):
        if plugin.ispkg and plugin.name not in ("base", "sql", "events", "exceptions", "record", "contracts"):
            try:
                importlib.import_module(f"dbt.adapters.{plugin.name}")
            except Exception:  # a broken optional adapter is loaded (and reported) by dbt itself
                continue


def receive_request(connection: socket.socket) -> tuple[dict, list[int]]:
    size = HEADER.size
    data, fds, _, _ = socket.recv_fds(connection, size, 3)
    while len(data) < size:
        data += connection.recv(size - len(data))
    (length,) = HEADER.unpack(data)
    body = b""
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            raise ConnectionError("client went away mid-request")
        body += chunk
    return json.loads(body), fds


def exit_code(result: object) -> int:
    """dbt's own CLI exit codes: 0 success, 1 a node failed, 2 dbt itself failed."""
    if getattr(result, "exception", None) is not None:
        return 2
    return 0 if getattr(result, "success", False) else 1


def cancel_when_caller_leaves(connection: socket.socket) -> None:
    """A killed task closes the socket: interrupt dbt, as Ctrl-C would, and make sure it ends."""

    def watch() -> None:
        try:
            while connection.recv(1024):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(CANCEL_GRACE_SECONDS)
        os._exit(130)

    threading.Thread(target=watch, daemon=True).start()


def run_command(request: dict, fds: list[int], connection: socket.socket) -> int:
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    streams = ((0, "r"), (1, "w"), (2, "w"))
    sys.stdin, sys.stdout, sys.stderr = (os.fdopen(number, mode, closefd=False) for number, mode in streams)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    sys.argv = ["dbt", *request["args"]]
    cancel_when_caller_leaves(connection)
    import manifest_writes  # next to this file, which runs as a script
    from dbt.cli.main import dbtRunner

    manifest_writes.write_manifest_once()
    manifest_writes.encode_json_in_one_pass()
    manifest_writes.end_manifest_on_failure_only()

    try:
        result = dbtRunner().invoke(request["args"])
    except KeyboardInterrupt:
        return 130
    return exit_code(result)


def serve_one(connection: socket.socket, listener: socket.socket) -> None:
    """In the forked child: run the command, report its exit code, and leave without cleanup."""
    listener.close()
    manifest_cache.use_in_fork()
    # dbt's own subprocesses (git for `dbt deps`) must be reaped by dbt, and Ctrl-C must interrupt it.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 2
    try:
        request, fds = receive_request(connection)
        code = run_command(request, fds, connection)
    except Exception as error:  # reported to the caller, whose task log shows it
        print(f"warm dbt: {type(error).__name__}: {error}", file=sys.stderr)
    finally:
        # What a normal exit would do (multiprocessing unlinks dbt's semaphores), without the
        # interpreter teardown that costs a plain dbt process half a second.
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        try:
            connection.sendall(HEADER.pack(code))
        finally:
            os._exit(code)


def serve(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".tmp")
    os.rename(path + ".tmp", path)  # clients never see a socket that is not listening yet
    listener.listen(64)
    listener.settimeout(5.0)
    signal.signal(signal.SIGCHLD, lambda *_: reap())
    wake_up = manifest_cache.start(path)
    last_used = time.monotonic()
    try:
        while time.monotonic() - last_used < IDLE_SECONDS and os.path.exists(path):
            if not connection_waiting(listener, wake_up):
                continue
            try:
                connection, _ = listener.accept()
            except (TimeoutError, InterruptedError):
                continue
            last_used = time.monotonic()
            if os.fork() == 0:
                connection.settimeout(None)
                serve_one(connection, listener)
            connection.close()
    finally:
        manifest_cache.stop()
        if os.path.exists(path):
            os.unlink(path)


def connection_waiting(listener: socket.socket, wake_up: int | None) -> bool:
    """Wait for a connection; a manifest a fork reported is loaded meanwhile, never before a
    caller that is already waiting."""
    waiting_for = [listener] if wake_up is None else [listener, wake_up]
    timeout = 0 if wake_up is not None and manifest_cache.pending() else 5.0
    ready, _, _ = select.select(waiting_for, [], [], timeout)
    if listener in ready:
        return True
    if wake_up is not None and (ready or timeout == 0):
        manifest_cache.load_one()
        if native_threads() > 1:
            manifest_cache.stop()
            restart_without("WARM_DBT_MANIFEST_CACHE", "loading a manifest")
    return False


def reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def warm_up_if_enabled() -> None:
    if os.environ.get("WARM_DBT_WARM_UP") == "0":
        return
    from warm_up import warm_up  # next to this file, which runs as a script

    seconds = warm_up()
    if native_threads() > 1:
        restart_without("WARM_DBT_WARM_UP", "the warm-up")
    if seconds is not None:
        print(f"warm dbt: warmed up in {seconds:.2f} s", file=sys.stderr, flush=True)


def restart_without(switch: str, cause: str) -> None:
    """A fork keeps only the forking thread: a lock held by another one would hang every command.
    Start again with the cause turned off rather than serve from this process."""
    print(f"warm dbt: {cause} left a thread running; serving without it", file=sys.stderr, flush=True)
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, switch: "0"})


def native_threads() -> int:
    """Threads of this process, the ones started by extension modules included (Linux)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return threading.active_count()


if __name__ == "__main__":
    preload_dbt()
    warm_up_if_enabled()
    serve(sys.argv[1])
