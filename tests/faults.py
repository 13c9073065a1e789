"""Helpers of the fault tests (tests/integration/test_faults.py): a PostgreSQL server a test may
restart, a copy of jaffle_shop whose orders model can be told to run slowly (a window in which to
inject a fault), and a reader that polls every relation while a run rebuilds them, as a dashboard
would, recording anything it sees that is not a complete relation."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests import leaks
from tools.manifest import parse_project
from tools.postgres import ConnectionSettings, LocalPostgres, free_port

# A dbt variable of the copy only: `--vars '{fault_window_seconds: 10}'` makes the orders model's
# CREATE TABLE ... AS run 10 s longer; unset (0) it builds exactly as jaffle_shop does.
WINDOW_VAR = "fault_window_seconds"
_SLOW_FILTER = f"where (select count(*) from pg_sleep({{{{ var('{WINDOW_VAR}', 0) }}}})) = 1"


@contextmanager
def throwaway_postgres(name: str) -> Iterator[LocalPostgres]:
    """A server of the test's own, which it may restart without disturbing the session's."""
    root = Path(tempfile.mkdtemp(prefix=f"blueprint-faults-{name}-"))
    root.chmod(0o755)  # as root the server runs as `nobody`, which must reach its folder
    server = None
    try:
        server = LocalPostgres(root, free_port())
        leaks.SESSION_PORTS.add(server.port)
        server.start()
        yield server
    finally:
        if server is not None:
            server.destroy()
        shutil.rmtree(root, ignore_errors=True)


def slow_orders_copy(project: Path, dest: Path) -> Path:
    """A copy of `project` whose orders model sleeps WINDOW_VAR seconds inside its SQL."""
    copy = dest / project.name
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = copy / "models" / "marts" / "orders.sql"
    sql = model.read_text().rstrip()
    assert sql.endswith("from final"), "orders.sql no longer ends with `from final`, where the window goes"
    model.write_text(f"{sql}\n{_SLOW_FILTER}\n")
    parse_project(copy)
    return copy


def relations(database: ConnectionSettings, schema: str) -> list[str]:
    rows = database.query("select table_name from information_schema.tables where table_schema = %s", schema)
    return sorted(name for (name,) in rows)


_FINGERPRINT = (
    'select count(*), md5(coalesce(string_agg(r::text, chr(10) order by r::text), \'\')) from "{schema}"."{relation}" r'
)


def fingerprint(database: ConnectionSettings, schema: str, relation: str) -> tuple[int, str]:
    """Rows and a digest of every row's content: equal fingerprints mean equal relations."""
    count, digest = database.query(_FINGERPRINT.format(schema=schema, relation=relation))[0]
    return count, digest


def wait_for_window(database: ConnectionSettings, still_running: Callable[[], bool], timeout: float = 300) -> None:
    """Wait until a session on `database` sleeps in the slow model's window (pg_stat_activity's
    wait event: its query text is cut at 1 kB, before the filter), as long as `still_running()`
    says the run that should open it has not finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and still_running():
        if database.query("select 1 from pg_stat_activity where wait_event = 'PgSleep'"):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the slow model's window did not open on the warehouse (waited up to {timeout:.0f} s)")


@dataclass
class ReaderLog:
    complete: int = 0  # polls that saw every relation whole
    unavailable: int = 0  # polls that could not reach the server (the restart)
    violations: list[str] = field(default_factory=list)  # anything else: a partial or missing relation
    orders_oids: list[int] = field(default_factory=list)  # each distinct table `orders` was, in order


class Reader(threading.Thread):
    """Polls each relation of `schema` against the fingerprints it must have, until stopped."""

    def __init__(self, database: ConnectionSettings, schema: str, expected: dict[str, tuple[int, str]]) -> None:
        super().__init__(daemon=True)
        self.database, self.schema, self.expected = database, schema, expected
        self.log = ReaderLog()
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psycopg2

        while not self._stop_event.wait(0.2):
            try:
                self._poll()
            except psycopg2.OperationalError:
                self.log.unavailable += 1  # the server is restarting: no answer is not a wrong answer
            except psycopg2.Error as error:
                self.log.violations.append(f"{time.strftime('%H:%M:%S')} {str(error).strip().splitlines()[0]}")

    def _poll(self) -> None:
        from contextlib import closing

        wrong = []
        # One connection per poll, each statement its own transaction: what a dashboard sees.
        with closing(self.database.connect(connect_timeout=2)) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                for relation, expected in self.expected.items():
                    cursor.execute(_FINGERPRINT.format(schema=self.schema, relation=relation))
                    actual = cursor.fetchone()
                    if actual != expected:
                        wrong.append(f"{relation}: {actual[0]} rows (digest {actual[1][:8]}), expected {expected[0]}")
                cursor.execute(f"select '\"{self.schema}\".orders'::regclass::oid::bigint")
                oid = cursor.fetchone()[0]
        if not self.log.orders_oids or self.log.orders_oids[-1] != oid:
            self.log.orders_oids.append(oid)
        if wrong:
            self.log.violations.append(f"{time.strftime('%H:%M:%S')} " + "; ".join(wrong))
        else:
            self.log.complete += 1

    def stop(self) -> ReaderLog:
        self._stop_event.set()
        self.join(timeout=60)
        return self.log
