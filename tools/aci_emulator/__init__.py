"""A local emulator of the part of the Azure Container Instances management API that Airflow's
ACI operator uses, running each container group as a Docker container (see docs/azure-container-instances.md).

    with AciEmulator(startup_delay=0) as aci:
        env = {**os.environ, **aci.client_env(), **aci.connection_env("azure_container_instances")}
        ...  # run the ACI DAGs with env; then aci.groups() == [] and aci.history() shows what arrived
"""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from tools.aci_emulator.certs import make_tls_files
from tools.aci_emulator.groups import GroupStore
from tools.aci_emulator.identity import Identities
from tools.aci_emulator.server import HOSTS, EmulatorServer

SUBSCRIPTION = "00000000-0000-0000-0000-0000000a11ce"
__all__ = ["SUBSCRIPTION", "AciEmulator"]


class AciEmulator:
    def __init__(
        self,
        port: int = 0,
        startup_delay: float = 0.0,
        state_dir: Path | None = None,
        network: str = "host",
        host: str = "127.0.0.1",
    ) -> None:
        # A folder it made is its own, removed by stop(); a folder it was given stays.
        self._own_state_dir = state_dir is None
        self.state_dir = state_dir or Path(tempfile.mkdtemp(prefix="aci-emulator-"))
        self._thread: threading.Thread | None = None
        try:
            self.tls = make_tls_files(self.state_dir / "tls", HOSTS)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.certificate, self.tls.private_key)
            self.identities = Identities()
            self.store = GroupStore(startup_delay, network)
            self.server = EmulatorServer((host, port), self.store, self.identities, context)
            self.host, self.port = host, self.server.server_address[1]
            self.federated_token_file = self.state_dir / "federated-token"
            self.federated_token_file.write_text(self.identities.federated_token)
        except BaseException:
            self._remove_state_dir()
            raise

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AciEmulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="aci-emulator")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, delete every container it still runs, and remove its own state folder."""
        try:
            if self._thread is not None:  # shutdown() waits for serve_forever, forever if it never ran
                self.server.shutdown()
                self._thread = None
            self.server.server_close()
        finally:
            try:
                self.store.close()
            finally:
                self._remove_state_dir()

    def _remove_state_dir(self) -> None:
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> AciEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what a client process needs; production sets none of these -------------------------------
    def client_env(self) -> dict[str, str]:
        """Route the Azure SDK here: the proxy, trust in the throwaway CA, a managed identity."""
        ca = str(self.tls.ca_certificate)
        proxy = self.url
        return {
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": ca,
            "SSL_CERT_FILE": ca,
            "IDENTITY_ENDPOINT": f"{self.url}/msi/token",
            "IDENTITY_HEADER": self.identities.identity_header,
        }

    def workload_identity_env(self) -> dict[str, str]:
        """What AKS workload identity injects into a pod (tenant, client id, federated token file)."""
        principal = self.identities.principal
        return {
            "AZURE_TENANT_ID": principal.tenant_id,
            "AZURE_CLIENT_ID": principal.client_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(self.federated_token_file),
        }

    @staticmethod
    def connection_env(conn_id: str, subscription: str = SUBSCRIPTION, **extra: str) -> dict[str, str]:
        """A passwordless ACI connection (DefaultAzureCredential), as an AIRFLOW_CONN_* variable."""
        connection = {"conn_type": "azure_container_instance", "extra": {"subscriptionId": subscription, **extra}}
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}

    def service_principal_connection_env(self, conn_id: str, subscription: str = SUBSCRIPTION) -> dict[str, str]:
        principal = self.identities.principal
        connection = {
            "conn_type": "azure_container_instance",
            "login": principal.client_id,
            "password": principal.client_secret,
            "extra": {"subscriptionId": subscription, "tenantId": principal.tenant_id},
        }
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(connection)}

    # -- inspection -----------------------------------------------------------------------------
    def groups(self) -> list[dict[str, Any]]:
        """The groups held now, each with the request body as received."""
        return self.store.groups()

    def history(self) -> list[dict[str, Any]]:
        """Every PUT (with its body as received) and DELETE, in order."""
        return self.store.history()

    def requests(self) -> list[dict[str, Any]]:
        with self.server.lock:
            return list(self.server.requests)


def inspect(url: str, what: str = "groups") -> Any:
    """The inspection API of an emulator in another process (`python -m tools.aci_emulator`)."""
    with urllib.request.urlopen(f"{url}/_emulator/{what}", timeout=10) as response:  # loopback only
        return json.load(response)
