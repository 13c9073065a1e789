"""A throwaway Redis server, the Celery broker of the multi-worker tests and benchmark.

Debian's `redis-server` binary (ci/ensure-redis.sh installs it where absent, as root), run in the
foreground on a free loopback port with no persistence: the broker holds only the queued task
messages of one test or benchmark, and nothing of it should outlive that.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from pathlib import Path

from tools.postgres import free_port
from tools.process_groups import stop_group

REPO_ROOT = Path(__file__).resolve().parents[1]
ENSURE_SCRIPT = REPO_ROOT / "ci" / "ensure-redis.sh"


def redis_server_binary() -> str:
    """The redis-server to run, installed by ci/ensure-redis.sh where it can; otherwise a
    RuntimeError whose message is the script's one line saying how to get Redis."""
    result = subprocess.run(["bash", str(ENSURE_SCRIPT)], capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["ci/ensure-redis.sh failed with no message"]
        raise RuntimeError(lines[-1])
    return result.stdout.strip()


class LocalRedis:
    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.log = root / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> None:
        binary = redis_server_binary()
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.ping():
                return
            time.sleep(0.2)
        log_text = self.log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"redis-server on 127.0.0.1:{self.port} did not answer within {timeout:.0f} s\n{log_text}")

    def ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=2) as client:
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self._process is None:
            return
        stop_group(self._process, timeout=15)
        self._process = None
