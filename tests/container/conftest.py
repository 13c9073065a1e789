"""Fixtures for the dbt runtime image tests: a Docker engine, the image, and `docker run` helpers.

The engine comes from ci/ensure-docker.sh (the running one, or on a Debian host as root one it
installs and starts). Without an engine these tests skip, naming why; with CI set they fail instead,
so a CI machine that lost its engine cannot pass silently. The image is built by ci/build-image.sh,
which returns at once when an image from the same inputs exists.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from pytest_docker.plugin import get_docker_ip

from tests import leaks
from tests.conftest import REPO_ROOT
from tests.leaks import container_is_ours
from tools.local_env import QUIET_DBT
from tools.postgres import ConnectionSettings

IMAGE = "airflow-dbt-blueprint/dbt-runtime:local"


@dataclass(frozen=True)
class ContainerRun:
    returncode: int
    output: str  # stdout and stderr together, in order
    seconds: float


RunImage = Callable[..., ContainerRun]


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine on this machine (pytest-docker's get_docker_ip: where the engine runs)."""
    result = subprocess.run(
        ["bash", "ci/ensure-docker.sh", "--engine-only"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["ci/ensure-docker.sh failed"])[-1]
        if os.environ.get("CI"):
            pytest.fail(f"no Docker engine on this CI machine: {reason}")
        pytest.skip(f"no Docker engine: {reason}")
    docker_ip = get_docker_ip()
    if docker_ip != "127.0.0.1":
        pytest.fail(
            f"DOCKER_HOST points at a remote engine ({docker_ip}): its containers cannot reach the PostgreSQL "
            "these tests start on this machine. Unset DOCKER_HOST to use a local engine."
        )


@pytest.fixture(autouse=True)
def _remove_the_tests_containers() -> Iterator[None]:
    """The containers a test started are removed when it ends, passed or failed: a docker-mode task
    that fails keeps its container (`auto_remove: success`, so its logs can be read), and a test
    that fails midway can leave an emulated ACI group's. Only this session's (tests/leaks.py); the
    Airflow stack's compose containers live for their module and pytest-docker removes them."""
    before = leaks.docker_containers()
    yield
    if before is None:  # no engine when the test started; the session's leak check still looks
        return
    known, pid = {container["Id"] for container in before}, os.getpid()
    left = [
        container for container in leaks.docker_containers() or []
        if container["Id"] not in known and container_is_ours(container, pid, leaks.SESSION_PORTS)
        and not (container.get("Config") or {}).get("Labels", {}).get("com.docker.compose.project")
    ]  # fmt: skip
    if left:
        names = [container["Name"].lstrip("/") for container in left]
        print(f"removing the containers this test left: {', '.join(names)}")
        subprocess.run(["docker", "rm", "--force", *names], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def dbt_image(docker_engine: None) -> str:
    """The image as ci/build-image.sh builds it (reused when its inputs are unchanged)."""
    result = subprocess.run(["bash", "ci/build-image.sh"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"ci/build-image.sh failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
    return IMAGE


def container_env(database: ConnectionSettings, schema: str | None = None) -> dict[str, str]:
    """The POSTGRES_* contract for a container on the host network; no POSTGRES_SCHEMA for None."""
    env = {**database.as_env(), **QUIET_DBT}
    if schema is None:
        del env["POSTGRES_SCHEMA"]
    else:
        env["POSTGRES_SCHEMA"] = schema
    return env


@pytest.fixture(scope="session")
def run_image(dbt_image: str) -> RunImage:
    """`run_image(*command, env={...}, entrypoint=None, timeout=120)`: one `docker run --rm`.

    Host network, so the container reaches the tests' PostgreSQL on 127.0.0.1. Variables are passed
    by name (`-e NAME`) with their values in the docker client's environment, so no password appears
    in a process list. A container still running at the timeout is killed and the test fails.
    """

    def run(*command: str, env: dict[str, str] | None = None, entrypoint: str | None = None,
            timeout: float = 120) -> ContainerRun:  # fmt: skip
        env = env or {}
        name = f"dbt-image-test-{os.getpid()}-{time.monotonic_ns()}"
        args = ["docker", "run", "--rm", "--name", name, "--network", "host"]
        for key in env:
            args += ["-e", key]
        if entrypoint is not None:
            args += ["--entrypoint", entrypoint]
        start = time.monotonic()
        try:
            result = subprocess.run(
                [*args, dbt_image, *command], env={**os.environ, **env}, timeout=timeout,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "rm", "--force", name], capture_output=True)
            pytest.fail(f"`{' '.join(command)}` in the container did not finish within {timeout} s")
        except BaseException:  # Ctrl-C, pytest-timeout: the container outlives its killed client
            subprocess.run(["docker", "rm", "--force", name], capture_output=True)
            raise
        return ContainerRun(result.returncode, result.stdout, time.monotonic() - start)

    return run
