"""One port, three roles: an HTTP CONNECT proxy whose tunnels to Azure's host names end here in
TLS (the SDK reaches "https://management.azure.com" and "https://login.microsoftonline.com"
unchanged), a managed identity token endpoint (plain http on loopback, as App Service's is), and
an inspection API for tests under /_emulator/."""

from __future__ import annotations

import json
import re
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tools.aci_emulator.groups import GroupStore
from tools.aci_emulator.identity import Identities, instance_discovery, openid_configuration
from tools.aci_emulator.rules import ApiError

MANAGEMENT_HOST = "management.azure.com"
LOGIN_HOST = "login.microsoftonline.com"
HOSTS = (MANAGEMENT_HOST, LOGIN_HOST)
GROUPS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerInstance/containerGroups"
)
ROUTES = [
    ("group", re.compile(rf"^{GROUPS}/(?P<name>[^/]+)$", re.IGNORECASE)),
    ("logs", re.compile(rf"^{GROUPS}/(?P<name>[^/]+)/containers/(?P<container>[^/]+)/logs$", re.IGNORECASE)),
    ("list_rg", re.compile(rf"^{GROUPS}$", re.IGNORECASE)),
    (
        "list",
        re.compile(r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.ContainerInstance/containerGroups$", re.I),
    ),
    (
        "operation",
        re.compile(
            r"^/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.ContainerInstance/locations/[^/]+/operations/(?P<op>[^/]+)$",
            re.IGNORECASE,
        ),
    ),
    (
        "registry",
        re.compile(
            r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerRegistry/registries/"
            r"(?P<name>[^/]+)/listCredentials$",
            re.IGNORECASE,
        ),
    ),
]


class EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], store: GroupStore, identities: Identities, tls: ssl.SSLContext
    ) -> None:
        super().__init__(address, Handler)
        self.store, self.identities, self.tls = store, identities, tls
        self.requests: list[dict[str, Any]] = []  # method, host, path, auth flow: what the SDK sent
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorServer
    tunnel_host: str | None = None

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read the inspection API
        pass

    # -- plumbing ------------------------------------------------------------------------------
    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", "emulated")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        try:
            if self.tunnel_host == MANAGEMENT_HOST:
                self._management(method, url.path, query)
            elif self.tunnel_host == LOGIN_HOST:
                self._login(method, url.path, query)
            else:
                self._local(method, url.path, query)
        except ApiError as error:
            headers = {}
            if error.status == 401 and self.tunnel_host == MANAGEMENT_HOST:
                headers["WWW-Authenticate"] = f'Bearer authorization_uri="https://{LOGIN_HOST}/", error="invalid_token"'
            self._send(error.status, error.body(), headers)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0].lower()
        if self.tunnel_host is not None or host not in HOSTS:
            self._send(403, {"error": {"code": "Forbidden", "message": f"the emulator only tunnels to {HOSTS}"}})
            return
        self.send_response(200, "Connection Established")
        self.send_header("Content-Length", "0")
        self.end_headers()
        self.wfile.flush()
        try:
            tls_socket = self.server.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            self.close_connection = True
            return
        # Serve the requests inside the tunnel with a handler that knows which host it stands in for.
        tunnel = type("TunnelHandler", (Handler,), {"tunnel_host": host})
        try:
            tunnel(tls_socket, self.client_address, self.server)
        except (ssl.SSLError, OSError):
            pass  # the client went away mid-tunnel; nothing to answer
        finally:
            tls_socket.close()
        self.close_connection = True

    # -- https://management.azure.com ----------------------------------------------------------
    def _management(self, method: str, path: str, query: dict[str, str]) -> None:
        issued = self.server.identities.authenticate(self.headers.get("Authorization"))
        with self.server.lock:
            self.server.requests.append({"method": method, "path": path, "flow": issued["flow"]})
        if "api-version" not in query:
            raise ApiError(
                400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required."
            )
        route, match = next(((name, m) for name, pattern in ROUTES if (m := pattern.match(path))), (None, None))
        if match is None:
            raise ApiError(404, "InvalidResourceType", f"The resource path '{path}' is not emulated.")
        store, params = self.server.store, match.groupdict()
        if route == "group" and method == "PUT":
            try:
                body = json.loads(self._body() or b"null")
            except json.JSONDecodeError as error:
                raise ApiError(
                    400, "InvalidRequestContent", f"The request content was not valid JSON: {error}"
                ) from None
            group, created = store.put(params["sub"], params["rg"], params["name"], body)
            location = body["location"]
            operation = (
                f"https://{MANAGEMENT_HOST}/subscriptions/{params['sub']}/providers/Microsoft.ContainerInstance"
                f"/locations/{location}/operations/{group.operation_id}?api-version={query['api-version']}"
            )
            self._send(
                201 if created else 200, group.resource(), {"Azure-AsyncOperation": operation, "Retry-After": "5"}
            )
        elif route == "group" and method == "GET":
            self._send(200, store.get(params["sub"], params["rg"], params["name"]).resource())
        elif route == "group" and method == "DELETE":
            group = store.delete(params["sub"], params["rg"], params["name"])
            self._send(204) if group is None else self._send(200, group.resource())
        elif route == "logs" and method == "GET":
            tail = int(query["tail"]) if query.get("tail") else None
            content = store.logs(params["sub"], params["rg"], params["name"], params["container"], tail)
            self._send(200, {"content": content})
        elif route in ("list", "list_rg") and method == "GET":
            groups = store.list(params["sub"], params.get("rg"))
            self._send(200, {"value": [group.resource() for group in groups]})
        elif route == "operation" and method == "GET":
            self._send(200, store.operation(params["op"]))
        elif route == "registry" and method == "POST":
            password = store.registry_password(params["name"])
            self._send(200, {"username": params["name"], "passwords": [{"name": "password", "value": password}]})
        else:
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on '{path}'.")

    # -- https://login.microsoftonline.com ----------------------------------------------------
    def _login(self, method: str, path: str, query: dict[str, str]) -> None:
        parts = path.strip("/").split("/")
        if method == "GET" and path.endswith("/.well-known/openid-configuration"):
            self._send(200, openid_configuration(LOGIN_HOST, parts[0]))
        elif method == "GET" and path.endswith("/discovery/instance"):
            self._send(200, instance_discovery(LOGIN_HOST, query.get("authorization_endpoint", "")))
        elif method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = dict(parse_qsl(self._body().decode()))
            try:
                self._send(200, self.server.identities.aad_token(parts[0], form))
            except ApiError as error:  # AAD's error body is flat, not ARM's nested one
                self._send(error.status, {"error": error.code, "error_description": error.message})
        else:
            raise ApiError(404, "NotFound", f"'{path}' is not emulated on {LOGIN_HOST}.")

    # -- plain http: managed identity and inspection -------------------------------------------
    def _local(self, method: str, path: str, query: dict[str, str]) -> None:
        server = self.server
        if method == "GET" and path == "/msi/token":
            self._send(200, server.identities.managed_identity_token(self.headers.get("X-IDENTITY-HEADER"), query))
        elif method == "GET" and path == "/_emulator/groups":
            self._send(200, server.store.groups())
        elif method == "GET" and path == "/_emulator/history":
            self._send(200, server.store.history())
        elif method == "GET" and path == "/_emulator/requests":
            with server.lock:
                self._send(200, list(server.requests))
        elif method == "GET" and path == "/_emulator/health":
            self._send(200, {"status": "ok", "startup_delay": server.store.startup_delay})
        else:
            raise ApiError(404, "NotFound", f"'{path}' is not served here; the Azure APIs are reached through CONNECT.")
