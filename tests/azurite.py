"""Azurite, Microsoft's Azure Storage emulator (npm package `azurite`, pinned in tests/azurite/),
as a real Blob Storage endpoint on 127.0.0.1 for the object storage tests.

Its Blob API is the one Azure serves, so the code under test talks to it exactly as to a storage
account: Airflow's ObjectStoragePath through adlfs, and Cosmos's docs upload through the Azure
provider's WasbHook, both from one Airflow connection whose `connection_string` extra names the
emulator. The account and key are Azurite's fixed, published development ones (not a secret).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PACKAGE_DIR = Path(__file__).resolve().parent / "azurite"
EXECUTABLE = PACKAGE_DIR / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key, the same in every installation (Microsoft's docs print it).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_SECONDS = 60


@dataclass(frozen=True)
class Azurite:
    port: int

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.port}/{ACCOUNT};"
        )

    def airflow_connection(self) -> str:
        """An AIRFLOW_CONN_<ID> value: a wasb connection that adlfs (abfs://) reads too."""
        import json

        return json.dumps({"conn_type": "wasb", "extra": {"connection_string": self.connection_string}})

    def service(self) -> Any:  # azure.storage.blob.BlobServiceClient, imported lazily
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def read(self, container: str, blob: str) -> bytes:
        return self.service().get_blob_client(container, blob).download_blob().readall()

    def names(self, container: str, prefix: str = "") -> list[str]:
        return sorted(blob.name for blob in self.service().get_container_client(container).list_blobs(prefix))


def _unavailable(reason: str) -> None:
    """Skip where Node.js cannot be had; in CI (CI set) that is a failure, as for Chromium."""
    message = f"Azurite cannot run here: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def ensure_installed() -> Path:
    if EXECUTABLE.exists():
        return EXECUTABLE
    if shutil.which("npm") is None:
        _unavailable("no npm on PATH (Debian: apt-get install nodejs npm; Node.js >= 18)")
    installed = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if installed.returncode != 0 or not EXECUTABLE.exists():
        _unavailable(f"`npm ci` in {PACKAGE_DIR} failed:\n{installed.stderr[-2000:]}")
    return EXECUTABLE


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_azurite(port: int) -> Iterator[Azurite]:
    """Azurite's Blob service on 127.0.0.1:`port`, in memory; stopped (its process group) on exit."""
    executable = ensure_installed()
    command = [
        str(executable), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
        "--extentMemoryLimit", "256", "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=PACKAGE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _listening(port):
            if process.poll() is not None:
                raise RuntimeError(f"Azurite exited with {process.returncode}:\n{process.stdout.read()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not listen on 127.0.0.1:{port} within {START_SECONDS} s")
            time.sleep(0.2)
        yield Azurite(port)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        if process.stdout:
            process.stdout.close()
