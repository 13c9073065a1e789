"""The ACI emulator's rules and authentication, through the Azure SDK and the Airflow provider's
hook exactly as the ACI DAGs use them; no container is started (groups wait out a long start-up
delay and are deleted before it ends)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tools.aci_emulator import SUBSCRIPTION, AciEmulator
from tools.aci_emulator.rules import ApiError, check_group, name_problem

ARM = "https://management.azure.com"
GROUP_PATH = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups"


def group_body(**overrides: Any) -> dict[str, Any]:
    container = {
        "name": "dbt",
        "properties": {"image": "dbt-runtime:1", "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}}},
    }
    body = {"location": "westeurope", "properties": {"containers": [container], "osType": "Linux"}}
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("dbt-jaffle-shop-stg-orders-run-1a2b3c4d", None),
        ("a", None),
        ("9lives", None),
        ("a" * 63, None),
        ("", "1 to 63"),
        ("a" * 64, "1 to 63"),
        ("Upper", "lowercase"),
        ("-leading", "start and end"),
        ("trailing-", "start and end"),
        ("under_score", "lowercase"),
        ("dot.ted", "lowercase"),
        ("double--hyphen", "consecutive"),
    ],
)
def test_container_group_name_rules(name: str, problem: str | None) -> None:
    found = name_problem(name)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_the_blueprint_names_satisfy_the_emulator() -> None:
    from include.blueprint.names import runtime_name

    for task_id in ("stg_orders.run", "x" * 200, "Ünïcödé__task..test", "9_starts_with_digit"):
        assert name_problem(runtime_name("jaffle_shop_azure_container_instance", task_id, "manual__2026")) is None


def _without(path: str) -> dict[str, Any]:
    body = group_body()
    *parents, leaf = path.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    del target[leaf]
    return body


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (_without("location"), "LocationRequired", "location"),
        (_without("properties.osType"), "InvalidRequestContent", "properties.osType"),
        (_without("properties.containers"), "InvalidRequestContent", "properties.containers"),
        (_without("properties.containers.0.properties.image"), "InvalidRequestContent", "image"),
        (_without("properties.containers.0.properties.resources"), "InvalidRequestContent", "resources.requests"),
        (_without("properties.containers.0.properties.resources.requests.cpu"), "InvalidRequestContent", "cpu"),
        (_without("properties.containers.0.properties.resources.requests.memoryInGB"), "InvalidRequestContent",
         "memoryInGB"),
        (group_body(properties={"containers": [], "osType": "Linux"}), "InvalidRequestContent", "containers"),
        (group_body(properties={**group_body()["properties"], "osType": "Plan9"}), "InvalidOsType", "Plan9"),
        (group_body(properties={**group_body()["properties"], "restartPolicy": "Sometimes"}), "InvalidRestartPolicy",
         "Sometimes"),
    ],
)  # fmt: skip
def test_required_fields_are_refused_as_azure_does(body: dict[str, Any], code: str, fragment: str) -> None:
    with pytest.raises(ApiError) as raised:
        check_group(body)
    assert raised.value.status == 400
    assert raised.value.body()["error"]["code"] == code
    assert fragment in raised.value.body()["error"]["message"]


def test_a_complete_group_passes() -> None:
    check_group(group_body())


# -- through the SDK, the proxy and the tokens ---------------------------------------------------
@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[AciEmulator]:
    with AciEmulator(startup_delay=600, state_dir=tmp_path) as aci:
        for key, value in {**aci.client_env(), **aci.connection_env("aci_unit")}.items():
            monkeypatch.setenv(key, value)
        for key in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
            monkeypatch.delenv(key, raising=False)
        yield aci
        assert aci.groups() == []


def arm(method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """A raw call through the emulator's proxy, trusting its CA (what the SDK does, minus the SDK)."""
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.request(method, f"{ARM}{path}", json=body, headers=headers, timeout=30)
    return response.status_code, (response.json() if response.content else {})


def managed_identity_token(aci: AciEmulator, header: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{aci.url}/msi/token?api-version=2019-08-01&resource={ARM}",
        headers={"X-IDENTITY-HEADER": header or aci.identities.identity_header},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_management_api_refuses_requests_without_an_issued_token(emulator: AciEmulator) -> None:
    status, body = arm("GET", f"{GROUP_PATH}/any?api-version=2023-05-01")
    assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    status, body = arm("GET", f"{GROUP_PATH}/any?api-version=2023-05-01", token="forged")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert managed_identity_token(emulator, header="wrong")[0] == 401


def test_the_management_api_answers_bad_requests_with_azure_errors(emulator: AciEmulator) -> None:
    token = managed_identity_token(emulator)[1]["access_token"]
    status, body = arm("PUT", f"{GROUP_PATH}/Bad_Name?api-version=2023-05-01", group_body(), token)
    assert (status, body["error"]["code"]) == (400, "ContainerGroupNameInvalid")
    status, body = arm("PUT", f"{GROUP_PATH}/ok?api-version=2023-05-01", _without("location"), token)
    assert (status, body["error"]["code"]) == (400, "LocationRequired")
    status, body = arm("GET", f"{GROUP_PATH}/ok", token=token)
    assert (status, body["error"]["code"]) == (400, "MissingApiVersionParameter")
    status, body = arm("GET", f"{GROUP_PATH}/missing?api-version=2023-05-01", token=token)
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")
    assert emulator.history() == []


def _aci_hook(conn_id: str = "aci_unit"):
    from airflow.providers.microsoft.azure.hooks.container_instance import AzureContainerInstanceHook

    return AzureContainerInstanceHook(azure_conn_id=conn_id)


def _container_group(secret: str):
    from azure.mgmt.containerinstance.models import (
        Container,
        ContainerGroup,
        EnvironmentVariable,
        ResourceRequests,
        ResourceRequirements,
    )

    container = Container(
        name="dbt-unit-1", image="dbt-runtime:1", command=["dbt", "build"],
        resources=ResourceRequirements(requests=ResourceRequests(memory_in_gb=1.5, cpu=1.0)),
        environment_variables=[EnvironmentVariable(name="PLAIN", value="v"),
                               EnvironmentVariable(name="POSTGRES_PASSWORD", secure_value=secret)],
    )  # fmt: skip
    return ContainerGroup(location="westeurope", containers=[container], os_type="Linux", restart_policy="Never")


def test_the_provider_hook_with_a_managed_identity(emulator: AciEmulator) -> None:
    """The connection has no login or password: the hook signs in with DefaultAzureCredential, which
    finds the (emulated) App Service managed identity endpoint."""
    hook = _aci_hook()
    assert hook.test_connection() == (True, "Successfully connected to Azure Container Instance.")
    assert not hook.exists("rg", "dbt-unit-1")
    hook.create_or_update("rg", "dbt-unit-1", _container_group("s3cr3t-value"))
    assert hook.exists("rg", "dbt-unit-1")

    state = hook.get_state("rg", "dbt-unit-1")
    assert state.provisioning_state == "Pending"
    assert state.instance_view.state == "Pending"
    assert state.containers[0].instance_view.current_state.state == "Waiting"
    # As in Azure, a secure value goes in and never comes back out.
    returned = {v.name: (v.value, v.secure_value) for v in state.containers[0].environment_variables}
    assert returned == {"PLAIN": ("v", None), "POSTGRES_PASSWORD": (None, None)}
    (held,) = emulator.groups()
    received = held["received"]["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert received == [{"name": "PLAIN", "value": "v"}, {"name": "POSTGRES_PASSWORD", "secureValue": "s3cr3t-value"}]

    assert hook.get_logs("rg", "dbt-unit-1") == []
    hook.delete("rg", "dbt-unit-1")
    assert not hook.exists("rg", "dbt-unit-1")
    assert {request["flow"] for request in emulator.requests()} == {"managed_identity"}


def test_the_provider_hook_falls_back_to_a_service_principal(
    emulator: AciEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """login/password/tenantId on the connection: ClientSecretCredential against Azure AD's real
    authority host, answered by the emulator through the same proxy."""
    for key, value in emulator.service_principal_connection_env("aci_sp").items():
        monkeypatch.setenv(key, value)
    hook = _aci_hook("aci_sp")
    assert hook.test_connection()[0] is True
    assert {request["flow"] for request in emulator.requests()} == {"client_secret"}

    bad = json.loads(emulator.service_principal_connection_env("aci_bad")["AIRFLOW_CONN_ACI_BAD"])
    monkeypatch.setenv("AIRFLOW_CONN_ACI_BAD", json.dumps({**bad, "password": "wrong"}))
    ok, message = _aci_hook("aci_bad").test_connection()
    assert not ok
    assert "AADSTS7000215" in message


def test_workload_identity_through_default_azure_credential(
    emulator: AciEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What AKS workload identity injects (tenant, client id, a federated token file) is enough for
    DefaultAzureCredential; the connection stays passwordless."""
    monkeypatch.delenv("IDENTITY_ENDPOINT")
    monkeypatch.delenv("IDENTITY_HEADER")
    for key, value in emulator.workload_identity_env().items():
        monkeypatch.setenv(key, value)
    assert _aci_hook().test_connection()[0] is True
    assert {request["flow"] for request in emulator.requests()} == {"workload_identity"}


def test_the_registry_hook_gets_its_password_passwordlessly(emulator: AciEmulator, monkeypatch) -> None:
    """A registry connection with only login (the registry name) and host: the provider lists the
    registry's credentials through the management API with the managed identity."""
    from airflow.providers.microsoft.azure.hooks.container_registry import AzureContainerRegistryHook

    connection = {"conn_type": "azure_container_registry", "login": "blueprintacr", "host": "blueprintacr.azurecr.io",
                  "extra": {"subscription_id": SUBSCRIPTION, "resource_group": "rg"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_ACR_UNIT", json.dumps(connection))
    credential = AzureContainerRegistryHook("acr_unit").connection
    assert (credential.server, credential.username) == ("blueprintacr.azurecr.io", "blueprintacr")
    assert credential.password == "pw-blueprintacr-emulated"


def test_an_acr_image_needs_the_registry_credential(emulator: AciEmulator) -> None:
    """ACI refuses a group whose registry image it cannot pull; the credential from listCredentials
    (what the registry hook fetches) is the one that works."""
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.containerinstance.models import ImageRegistryCredential

    hook = _aci_hook()
    group = _container_group("s3cr3t-value")
    group.containers[0].image = "blueprintacr.azurecr.io/dbt-runtime:1"
    with pytest.raises(HttpResponseError, match="InaccessibleImage"):
        hook.connection.container_groups.begin_create_or_update("rg", "dbt-unit-2", group)
    password = emulator.store.registry_password("blueprintacr")
    group.image_registry_credentials = [
        ImageRegistryCredential(server="blueprintacr.azurecr.io", username="blueprintacr", password=password)
    ]
    hook.create_or_update("rg", "dbt-unit-2", group)
    returned = hook.get_state("rg", "dbt-unit-2").image_registry_credentials[0]
    assert (returned.server, returned.password) == ("blueprintacr.azurecr.io", None)  # never echoed back
    hook.delete("rg", "dbt-unit-2")


@pytest.mark.parametrize(
    ("image", "registry", "local"),
    [
        ("blueprintacr.azurecr.io/team/dbt-runtime:1", "blueprintacr.azurecr.io", "team/dbt-runtime:1"),
        ("airflow-dbt-blueprint/dbt-runtime:local", None, "airflow-dbt-blueprint/dbt-runtime:local"),
        ("dbt-runtime:1", None, "dbt-runtime:1"),
        ("ghcr.io/team/dbt:1", None, "ghcr.io/team/dbt:1"),
    ],
)
def test_registry_images_map_to_local_images(image: str, registry: str | None, local: str) -> None:
    from tools.aci_emulator.groups import local_image, registry_of

    assert (registry_of(image), local_image(image)) == (registry, local)


def test_the_aci_benchmark_runs_each_granularity_against_one_baseline() -> None:
    from tools.bench.aci import BASELINE, key, parse_args, variants_for

    args = parse_args(["--startup-delays", "0,12.5", "--granularities", "node,project", "--env", "A=1"])
    assert (args.startup_delays, args.granularities, args.env) == ([0.0, 12.5], ["node", "project"], {"A": "1"})
    variants = variants_for(["jaffle_shop_azure_container_instance", BASELINE], args.granularities, args.env)
    assert [key(variant) for variant in variants] == [
        "jaffle_shop_azure_container_instance[node]",
        "jaffle_shop_azure_container_instance[project]",
        BASELINE,
    ]
    assert variants[1].env == {"A": "1", "BLUEPRINT__EXECUTION__GRANULARITY": "project"}
    with pytest.raises(SystemExit):
        parse_args(["--granularities", "per-folder"])
