"""The warm dbt server (include/blueprint/warm_dbt) behaves like dbt itself, for real: same output,
same exit codes, same marts, concurrent commands, a killed caller stops its dbt, and the server
never holds a caller's credentials."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from include.blueprint.cosmos_configs import WARM_DBT
from tests.conftest import actual_marts, expected_marts
from tests.integration.conftest import WARM_SCHEMA, project_copy, run_dbt, server_pids
from tools.local_env import DBT_BIN
from tools.postgres import ConnectionSettings

pytestmark = pytest.mark.integration


def test_a_warm_build_gives_the_same_marts_and_output_as_dbt(
    jaffle_project: Path, postgres: ConnectionSettings, warm_env: dict[str, str], tmp_path: Path
) -> None:
    first = run_dbt(WARM_DBT, jaffle_project, warm_env, "build", target=tmp_path / "first")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    assert "Completed successfully" in first.stdout
    assert "PASS=35" in first.stdout
    assert actual_marts(postgres, WARM_SCHEMA) == expected_marts(scale=1)
    assert len(server_pids(Path(warm_env["TMPDIR"]))) == 1  # the first command started it
    second = run_dbt(WARM_DBT, jaffle_project, warm_env, "ls", "--resource-type", "model", target=tmp_path / "ls")
    direct = run_dbt(DBT_BIN / "dbt", jaffle_project, warm_env, "ls", "--resource-type", "model", target=tmp_path / "d")
    assert second.returncode == direct.returncode == 0
    assert second.stdout.splitlines()[-5:] == direct.stdout.splitlines()[-5:]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("run", "--select", "stg_orders"), 1),  # a model fails: its seed is not in this schema
        (("show", "--inline", "select 1 / 0"), 2),  # dbt stops on the error
        (("run", "--threads", "nope"), 2),  # dbt refuses the command
    ],
)
def test_exit_codes_are_dbts_own(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path, args: tuple[str, ...], code: int
) -> None:
    env = {**warm_env, "POSTGRES_SCHEMA": "warm_dbt_empty"}
    warm = run_dbt(WARM_DBT, jaffle_project, env, *args, target=tmp_path / "warm")
    direct = run_dbt(DBT_BIN / "dbt", jaffle_project, env, *args, target=tmp_path / "direct")
    assert (warm.returncode, direct.returncode) == (code, code), warm.stdout[-2000:] + warm.stderr[-2000:]
    assert "leaked" not in warm.stdout + warm.stderr


def test_concurrent_commands_each_get_their_own_dbt(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path
) -> None:
    commands = [
        subprocess.Popen(
            [
                str(WARM_DBT),
                "show",
                "--inline",
                f"select 'warm-' || {n} as label",  # PostgreSQL, not the command line, writes warm-<n>
                "--project-dir",
                str(jaffle_project),
                "--profiles-dir",
                str(jaffle_project),
                "--target-path",
                str(tmp_path / str(n)),
                "--log-path",
                str(tmp_path / str(n)),
            ],
            env=warm_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=jaffle_project,
        )
        for n in range(4)
    ]
    try:
        outputs = [command.communicate(timeout=300)[0] for command in commands]
    finally:
        for command in commands:
            command.kill()  # nothing, once each has finished; a hung one must not outlive the test
            command.wait()
    assert [command.returncode for command in commands] == [0] * 4
    for n, output in enumerate(outputs):
        assert [label for label in (f"warm-{m}" for m in range(4)) if label in output] == [f"warm-{n}"], output
    assert len(server_pids(Path(warm_env["TMPDIR"]))) == 1


def test_a_killed_caller_stops_its_dbt_and_its_query(
    jaffle_project: Path, postgres: ConnectionSettings, warm_env: dict[str, str], tmp_path: Path
) -> None:
    marker = "warm_dbt_kill_test"
    caller = subprocess.Popen(
        [str(WARM_DBT), "show", "--inline", f"select pg_sleep(60) as {marker}", "--project-dir", str(jaffle_project),
         "--profiles-dir", str(jaffle_project), "--target-path", str(tmp_path), "--log-path", str(tmp_path)],
        env=warm_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=jaffle_project,
        start_new_session=True,  # as Cosmos starts dbt; it stops it with killpg
    )  # fmt: skip
    sleeping = f"select count(*) from pg_stat_activity where query like '%{marker}%' and pid <> pg_backend_pid()"
    try:
        deadline = time.monotonic() + 60
        while postgres.query(sleeping)[0][0] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert postgres.query(sleeping)[0][0] == 1, "the query never started"
        os.killpg(caller.pid, signal.SIGTERM)
        caller.wait(timeout=10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(caller.pid, signal.SIGKILL)  # a no-op once the caller's group has gone
        caller.wait()
    deadline = time.monotonic() + 60  # a bound for a hang, not a speed check: CI's machine is shared
    while postgres.query(sleeping)[0][0] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert postgres.query(sleeping)[0][0] == 0, "the killed task's query kept running"


def test_the_server_never_holds_a_callers_password(
    jaffle_project: Path, postgres: ConnectionSettings, warm_env: dict[str, str], tmp_path: Path
) -> None:
    result = run_dbt(WARM_DBT, jaffle_project, warm_env, "ls", target=tmp_path)
    assert result.returncode == 0
    temp = Path(warm_env["TMPDIR"])
    (server,) = server_pids(temp)
    environment = Path(f"/proc/{server}/environ").read_bytes()
    assert postgres.password.encode() not in environment
    assert b"POSTGRES_" not in environment
    (log,) = (temp / f"warm-dbt-{os.getuid()}").glob("*.log")
    assert postgres.password not in log.read_text()


def test_the_server_is_warmed_up_single_threaded_and_parses_in_full_after_it(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path
) -> None:
    """The warm-up must leave no thread behind (a fork would hang on its locks: dbt's static
    parser did), and a fork must still run a full parse of a project with models."""
    result = run_dbt(WARM_DBT, jaffle_project, warm_env, "parse", "--no-partial-parse", target=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    temp = Path(warm_env["TMPDIR"])
    (server,) = server_pids(temp)
    assert len(list(Path(f"/proc/{server}/task").iterdir())) == 1, "the server runs more than one thread"
    (log,) = (temp / f"warm-dbt-{os.getuid()}").glob("*.log")
    assert "warm dbt: warmed up in" in log.read_text(), log.read_text()[-2000:]


def test_warm_dbt_off_runs_dbt_itself(jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path) -> None:
    result = run_dbt(WARM_DBT, jaffle_project, {**warm_env, "WARM_DBT": "0"}, "ls", target=tmp_path)
    assert result.returncode == 0
    assert "jaffle_shop.marts.customers" in result.stdout
    assert server_pids(Path(warm_env["TMPDIR"])) == []


def test_a_missing_real_dbt_is_named(jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path) -> None:
    env = {**warm_env, "WARM_DBT_EXECUTABLE": "/nowhere/dbt"}
    result = run_dbt(WARM_DBT, jaffle_project, env, "ls", target=tmp_path)
    assert result.returncode == 1
    assert "WARM_DBT_EXECUTABLE must name the real dbt executable (got '/nowhere/dbt')" in result.stderr


# The manifest cache (manifest_cache.py): the server keeps dbt's partial-parse manifest
# deserialised, and a fork uses it only for the very bytes it was loaded from.
def _server_log(temp: Path) -> str:
    (log,) = (temp / f"warm-dbt-{os.getuid()}").glob("*.log")
    return log.read_text()


def _cached_manifest(temp: Path, target: Path) -> str:
    """Wait until the server has loaded the msgpack now in `target`; the name the log gives it."""
    name = hashlib.sha256((target / "partial_parse.msgpack").read_bytes()).hexdigest()[:12]
    deadline = time.monotonic() + 60
    while f"manifest cache: loaded {name}" not in _server_log(temp):
        assert time.monotonic() < deadline, _server_log(temp)[-2000:]
        time.sleep(0.2)
    return name


def test_a_second_command_on_an_unchanged_project_uses_the_cached_manifest(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path
) -> None:
    project, target, temp = project_copy(jaffle_project, tmp_path), tmp_path / "target", Path(warm_env["TMPDIR"])
    parsed = run_dbt(WARM_DBT, project, warm_env, "parse", target=target)  # writes the msgpack: no cache yet
    assert parsed.returncode == 0, parsed.stdout[-3000:]
    first = run_dbt(WARM_DBT, project, warm_env, "ls", "--resource-type", "model", target=target)
    name = _cached_manifest(temp, target)
    assert _server_log(temp).count(f"manifest cache: miss {name}") == 1
    second = run_dbt(WARM_DBT, project, warm_env, "ls", "--resource-type", "model", target=target)
    assert first.returncode == second.returncode == 0
    assert "jaffle_shop.cache_probe" in second.stdout
    assert second.stdout.splitlines()[-6:] == first.stdout.splitlines()[-6:]
    assert _server_log(temp).count(f"manifest cache: hit {name}") == 1, _server_log(temp)[-2000:]
    (frozen,) = re.findall(rf"manifest cache: loaded {name} .* (\d+) objects frozen", _server_log(temp))
    assert int(frozen) > 10_000  # dbt and the manifest: a fork's garbage collector leaves them alone
    (server,) = server_pids(temp)  # loading the manifest left the server single-threaded
    assert len(list(Path(f"/proc/{server}/task").iterdir())) == 1


@pytest.mark.parametrize("cache", ["1", "0"])
def test_an_edited_model_runs_its_new_sql_with_the_cache_warm(
    jaffle_project: Path, postgres: ConnectionSettings, warm_env: dict[str, str], tmp_path: Path, cache: str
) -> None:
    schema = f"warm_dbt_cache_{cache}"
    env = {**warm_env, "POSTGRES_SCHEMA": schema, "WARM_DBT_MANIFEST_CACHE": cache}
    project, target, temp = project_copy(jaffle_project, tmp_path), tmp_path / "target", Path(warm_env["TMPDIR"])
    for _ in range(2):  # the first run parses in full and writes the msgpack; the second reads it
        ran = run_dbt(WARM_DBT, project, env, "run", "--select", "cache_probe", target=target)
        assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    name = _cached_manifest(temp, target) if cache == "1" else None
    (project / "models" / "cache_probe.sql").write_text("{{ config(materialized='table') }}\nselect 2 as answer\n")
    edited = run_dbt(WARM_DBT, project, env, "run", "--select", "cache_probe", target=target)
    assert edited.returncode == 0, edited.stdout[-3000:] + edited.stderr[-2000:]
    assert postgres.query(f"select answer from {schema}.cache_probe") == [(2,)]
    if name is None:
        assert "manifest cache" not in _server_log(temp)
    else:  # the edited run started from the cached manifest, and dbt's file hashes found the edit
        assert _server_log(temp).count(f"manifest cache: hit {name}") == 1, _server_log(temp)[-2000:]


def test_commands_list_the_same_nodes_with_the_cache_on_and_off(
    jaffle_project: Path, warm_env: dict[str, str], tmp_path: Path
) -> None:
    project, temp, listed, logs = project_copy(jaffle_project, tmp_path), Path(warm_env["TMPDIR"]), {}, {}
    for cache in ("1", "0"):  # each its own server (the switch is part of the socket's name), and log
        env, target = {**warm_env, "WARM_DBT_MANIFEST_CACHE": cache}, tmp_path / f"target-{cache}"
        assert run_dbt(WARM_DBT, project, env, "parse", target=target).returncode == 0
        for run in range(3):  # on: a miss, then (the manifest loaded) hits; off: dbt deserialises each time
            result = run_dbt(WARM_DBT, project, env, "ls", "--output", "json", "--quiet", target=target)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
            listed.setdefault(cache, []).append(sorted(result.stdout.splitlines()))
            if cache == "1" and run == 0:
                _cached_manifest(temp, target)
        (logs[cache],) = set((temp / f"warm-dbt-{os.getuid()}").glob("*.log")) - set(logs.values())
    for cache, expected in (("1", (2, 1)), ("0", (0, 0))):
        log = logs[cache].read_text()
        assert (log.count("manifest cache: hit"), log.count("manifest cache: miss")) == expected, log[-2000:]
    assert len(listed["1"][0]) > 30
    assert listed["1"] == listed["0"]
