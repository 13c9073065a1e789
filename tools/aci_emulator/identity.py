"""The token side: what Azure AD and a managed identity endpoint would hand out, and the check the
management API makes on every request. Tokens are opaque random strings the emulator remembers,
so a request is accepted only with a token this emulator issued for the management audience."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tools.aci_emulator.rules import ApiError

MANAGEMENT_RESOURCE = "https://management.azure.com"
TOKEN_LIFETIME = 3600


@dataclass(frozen=True)
class ServicePrincipal:
    tenant_id: str
    client_id: str
    client_secret: str


@dataclass
class Identities:
    """What the emulator accepts: an App Service style managed identity (IDENTITY_HEADER), one
    service principal, and a workload identity (a federated token file's content)."""

    identity_header: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    principal: ServicePrincipal = field(
        default_factory=lambda: ServicePrincipal(
            "00000000-0000-0000-0000-00000000cafe", "11111111-1111-1111-1111-11111111cafe", secrets.token_urlsafe(24)
        )
    )
    federated_token: str = field(default_factory=lambda: f"eyJ.{secrets.token_urlsafe(24)}.sig")
    _tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _issue(self, resource: str, flow: str, client_id: str | None) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        expires_on = int(time.time()) + TOKEN_LIFETIME
        with self._lock:
            self._tokens[token] = {
                "resource": resource.rstrip("/"),
                "flow": flow,
                "client_id": client_id,
                "expires_on": expires_on,
            }
        return {"access_token": token, "expires_on": expires_on, "token_type": "Bearer", "resource": resource}

    def managed_identity_token(self, header: str | None, query: dict[str, str]) -> dict[str, Any]:
        """GET IDENTITY_ENDPOINT?api-version=2019-08-01&resource=... (App Service, Container Apps)."""
        if header != self.identity_header:
            raise ApiError(401, "Unauthorized", "X-IDENTITY-HEADER is missing or wrong.")
        resource = query.get("resource")
        if not resource:
            raise ApiError(400, "invalid_request", "The 'resource' query parameter is required.")
        client_id = query.get("client_id") or query.get("mi_res_id") or query.get("principal_id")
        token = self._issue(resource, "managed_identity", client_id)
        # App Service answers expires_on as a string of epoch seconds; the SDK accepts both.
        return {**token, "expires_on": str(token["expires_on"]), "client_id": client_id or "system-assigned"}

    def aad_token(self, tenant: str, form: dict[str, str]) -> dict[str, Any]:
        """POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token (client credentials)."""
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "AADSTS70003: only client_credentials is emulated.")
        if tenant != self.principal.tenant_id:
            raise ApiError(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("client_id") != self.principal.client_id:
            raise ApiError(
                400, "unauthorized_client", f"AADSTS700016: Application '{form.get('client_id')}' not found."
            )
        if "client_assertion" in form:
            flow, valid = "workload_identity", form["client_assertion"] == self.federated_token
        else:
            flow, valid = "client_secret", form.get("client_secret") == self.principal.client_secret
        if not valid:
            raise ApiError(401, "invalid_client", "AADSTS7000215: Invalid client secret or assertion provided.")
        scope = form.get("scope", "").split()[0] if form.get("scope") else ""
        resource = scope.removesuffix("/.default") or MANAGEMENT_RESOURCE
        token = self._issue(resource, flow, form["client_id"])
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token["access_token"],
        }

    def authenticate(self, authorization: str | None) -> dict[str, Any]:
        """The issued token behind an `Authorization: Bearer` header, or the 401 ARM would send."""
        if not authorization or not authorization.startswith("Bearer "):
            raise ApiError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        with self._lock:
            issued = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if issued is None or issued["expires_on"] < time.time():
            raise ApiError(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if issued["resource"] != MANAGEMENT_RESOURCE:
            raise ApiError(
                401, "InvalidAuthenticationToken", f"The access token has an invalid audience: {issued['resource']}."
            )
        return issued

    def flows(self) -> list[str]:
        with self._lock:
            return sorted({issued["flow"] for issued in self._tokens.values()})


def openid_configuration(host: str, tenant: str) -> dict[str, Any]:
    base = f"https://{host}/{tenant}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "issuer": f"https://{host}/{tenant}/v2.0",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "tenant_region_scope": "EU",
    }


def instance_discovery(host: str, authorization_endpoint: str) -> dict[str, Any]:
    tenant = authorization_endpoint.rstrip("/").split("/")[3] if authorization_endpoint.count("/") >= 3 else "common"
    return {
        "tenant_discovery_endpoint": f"https://{host}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }
