"""Run dbt's first-use work once in the warm dbt server, so that no forked command pays for it.

dbt compiles much of itself lazily on first use: mashumaro builds each artifact class's
(de)serialisers, and dbt_common builds the JSON schemas that validate `dbt_project.yml` and
profiles. A fork of a process that has only imported dbt redoes that work in every command
(measured on jaffle_shop: 0.4 s of a 0.5 s partial parse, and a one-model `dbt build` at 0.85 s
against 0.43 s after this warm-up). Here the server parses a tiny project of its own, twice (the
second time through dbt's partial parse, which compiles the manifest's msgpack reader), and runs a
`dbt build` that selects nothing; every later fork inherits the compiled code.

Nothing of the warm-up reaches a command: dbt resets its flags, event logger, invocation context
and adapters at the start of every invocation (dbtRunner supports several invocations in one
process), the warm-up's profile points at a closed port with dummy credentials, and its folder is
deleted. The project is generic: it only needs an adapter that can parse it, dbt-postgres here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT_FILES = {
    "dbt_project.yml": "name: warm_up\nversion: '1.0'\nprofile: warm_up\n",
    # A closed port and dummy credentials: the warm-up never connects anywhere.
    "profiles.yml": (
        "warm_up:\n  target: warm\n  outputs:\n    warm:\n      type: postgres\n      host: 127.0.0.1\n"
        "      port: 9\n      user: warm\n      password: warm\n      dbname: warm\n      schema: warm\n"
        "      threads: 1\n      connect_timeout: 1\n"
    ),
    "models/warm_model.sql": "select 1 as id\n",
    "models/warm_model.yml": (
        "models:\n  - name: warm_model\n    columns:\n      - name: id\n        data_tests: [not_null]\n"
    ),
    "seeds/warm_seed.csv": "id\n1\n",
    "snapshots/.keep": "",
}
COMMANDS = (("parse",), ("parse",), ("build", "--select", "nothing_is_called_this"))


def adapter_available() -> bool:
    return importlib.util.find_spec("dbt.adapters.postgres") is not None


@contextlib.contextmanager
def isolated_process_state(project: Path) -> Iterator[None]:
    """The warm-up's own environment and working directory, restored afterwards."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update(
        {"PATH": saved_env.get("PATH", ""), "HOME": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    )
    os.chdir(project)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def write_project(folder: Path) -> None:
    for relative, content in PROJECT_FILES.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def warm_up() -> float | None:
    """Run the warm-up; its duration in seconds, or None when it could not run (then forks are
    only slower, never different)."""
    if not adapter_available():
        return None
    from dbt.cli.main import dbtRunner

    started = time.monotonic()
    folder = Path(tempfile.mkdtemp(prefix="warm-dbt-warm-up-"))
    try:
        write_project(folder)
        # dbt's static parser (dbt_extractor, in Rust) starts threads a fork would not have, and
        # then hangs in every fork that parses a model: the warm-up must never load it.
        flags = ("--project-dir", str(folder), "--profiles-dir", str(folder), "--quiet", "--no-static-parser")
        with isolated_process_state(folder):
            for command in COMMANDS:
                result = dbtRunner().invoke([*command, *flags])
                if not result.success:
                    print(f"warm dbt: warm-up `dbt {command[0]}` failed: {result.exception}", file=sys.stderr)
                    return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return time.monotonic() - started
