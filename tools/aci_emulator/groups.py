"""Container groups held by the emulator, each container run as a real Docker container.

A group's life as ACI reports it: provisioningState Pending until its containers started (after
the configured start-up delay, standing in for ACI's cold start), then Succeeded; each container's
instanceView goes Waiting -> Running -> Terminated with its exit code; the group's instanceView
state goes Pending -> Running -> Succeeded/Failed (restartPolicy Never, as the blueprint uses).
"""

from __future__ import annotations

import copy
import datetime
import os
import re
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from tools.aci_emulator.rules import ApiError, check_group, check_group_name

PROVIDER = "Microsoft.ContainerInstance"
LABEL = "aci-emulator"
REGISTRY_SUFFIX = ".azurecr.io"


def registry_of(image: str) -> str | None:
    """The Azure Container Registry an image reference names (`<name>.azurecr.io/...`), if any."""
    first, _, rest = image.partition("/")
    return first.lower() if rest and first.lower().endswith(REGISTRY_SUFFIX) else None


def local_image(image: str) -> str:
    """The local Docker image that stands in for an ACR image: the reference without its registry."""
    return image.partition("/")[2] if registry_of(image) else image


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _docker(
    *args: str, env: dict[str, str] | None = None, timeout: float | None = 120, merge_stderr: bool = False
) -> subprocess.CompletedProcess:
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT if merge_stderr else subprocess.PIPE}
    try:
        return subprocess.run(["docker", *args], **streams, text=True, env=env, timeout=timeout)
    except FileNotFoundError:  # no Docker CLI: the API still answers, groups fail as an image pull would
        return subprocess.CompletedProcess(["docker", *args], 127, "", "docker: command not found")


@dataclass
class Container:
    name: str
    spec: dict[str, Any]
    docker_name: str
    state: str = "Waiting"
    detail_status: str = "Pending"
    exit_code: int | None = None
    start_time: str | None = None
    finish_time: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def event(self, name: str, message: str, kind: str = "Normal") -> None:
        stamp = now()
        self.events.append(
            {
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "name": name,
                "message": message,
                "type": kind,
            }
        )

    def resource(self) -> dict[str, Any]:
        spec = copy.deepcopy(self.spec)
        # Azure never returns secured values, only their names.
        spec["environmentVariables"] = [
            {key: value for key, value in variable.items() if key != "secureValue"}
            for variable in spec.get("environmentVariables") or []
        ]
        current: dict[str, Any] = {"state": self.state, "detailStatus": self.detail_status}
        if self.start_time:
            current["startTime"] = self.start_time
        if self.state == "Terminated":
            current.update({"exitCode": self.exit_code, "finishTime": self.finish_time})
        spec["instanceView"] = {"restartCount": 0, "currentState": current, "events": list(self.events)}
        return {"name": self.name, "properties": spec}


@dataclass
class Group:
    subscription: str
    resource_group: str
    name: str
    received: dict[str, Any]  # the request body exactly as it arrived, secure values included
    containers: list[Container]
    operation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    provisioning_state: str = "Pending"
    created: str = field(default_factory=now)
    deleted: threading.Event = field(default_factory=threading.Event)

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/{PROVIDER}"
            f"/containerGroups/{self.name}"
        )

    def state(self) -> str:
        states = {container.state for container in self.containers}
        if self.provisioning_state == "Failed":
            return "Failed"
        if states == {"Terminated"}:
            return "Succeeded" if all(c.exit_code == 0 for c in self.containers) else "Failed"
        return "Running" if "Running" in states else "Pending"

    def resource(self) -> dict[str, Any]:
        properties = {key: value for key, value in self.received["properties"].items() if key != "containers"}
        properties["imageRegistryCredentials"] = [
            {key: value for key, value in credential.items() if key != "password"}
            for credential in properties.get("imageRegistryCredentials") or []
        ]
        properties.update(
            provisioningState=self.provisioning_state,
            containers=[container.resource() for container in self.containers],
            instanceView={"events": [], "state": self.state()},
        )
        return {
            "id": self.id,
            "name": self.name,
            "type": f"{PROVIDER}/containerGroups",
            "location": self.received["location"],
            "tags": self.received.get("tags") or {},
            "properties": properties,
        }

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "resource_group": self.resource_group,
            "created": self.created,
            "provisioning_state": self.provisioning_state,
            "state": self.state(),
            "docker_names": [c.docker_name for c in self.containers],
            "received": self.received,
        }


class GroupStore:
    def __init__(self, startup_delay: float = 0.0, network: str = "host", instance: str | None = None) -> None:
        self.startup_delay = startup_delay
        self.network = network
        self.instance = instance or uuid.uuid4().hex[:8]
        self._groups: dict[tuple[str, str, str], Group] = {}
        self._history: list[dict[str, Any]] = []
        self._registry_passwords: dict[str, str] = {}
        self._lock = threading.Lock()

    def registry_password(self, registry: str) -> str:
        """The admin password `listCredentials` hands out for an emulated Azure Container Registry."""
        with self._lock:
            return self._registry_passwords.setdefault(registry.lower(), f"pw-{registry.lower()}-emulated")

    def _check_registry_access(self, name: str, body: dict[str, Any]) -> None:
        """ACR images need a matching registry credential, checked when the group is created."""
        credentials = {
            (credential.get("server") or "").lower(): credential
            for credential in body["properties"].get("imageRegistryCredentials") or []
        }
        for container in body["properties"]["containers"]:
            image = container["properties"]["image"]
            server = registry_of(image)
            if server is None:
                continue
            credential = credentials.get(server, {})
            registry = server.removesuffix(REGISTRY_SUFFIX)
            if credential.get("username") != registry or credential.get("password") != self.registry_password(registry):
                raise ApiError(
                    400, "InaccessibleImage",
                    f"The image '{image}' in container group '{name}' is not accessible. "
                    "Please check the image and registry credential.",
                )  # fmt: skip

    @staticmethod
    def _key(subscription: str, resource_group: str, name: str) -> tuple[str, str, str]:
        # Resource group names are case-insensitive in Azure; container group names are lowercase.
        return subscription.lower(), resource_group.lower(), name

    def _docker_name(self, group: str, container: str) -> str:
        return re.sub(r"[^a-zA-Z0-9_.-]", "-", f"aci-{self.instance}-{group}-{container}")[:120]

    def put(self, subscription: str, resource_group: str, name: str, body: Any) -> tuple[Group, bool]:
        check_group_name(name)
        check_group(body)
        self._check_registry_access(name, body)
        containers = [
            Container(spec["name"], copy.deepcopy(spec["properties"]), self._docker_name(name, spec["name"]))
            for spec in body["properties"]["containers"]
        ]
        group = Group(subscription, resource_group, name, copy.deepcopy(body), containers)
        with self._lock:
            previous = self._groups.pop(self._key(subscription, resource_group, name), None)
            self._groups[self._key(subscription, resource_group, name)] = group
            self._history.append({"event": "put", "at": now(), **group.summary()})
        if previous is not None:  # an update restarts the group, as ACI does for changed containers
            self._stop(previous)
        threading.Thread(target=self._run, args=(group,), daemon=True, name=f"aci-{name}").start()
        return group, previous is None

    def get(self, subscription: str, resource_group: str, name: str) -> Group:
        with self._lock:
            group = self._groups.get(self._key(subscription, resource_group, name))
        if group is None:
            raise ApiError(
                404,
                "ResourceNotFound",
                f"The Resource '{PROVIDER}/containerGroups/{name}' under resource group '{resource_group}' "
                "was not found.",
            )
        return group

    def list(self, subscription: str, resource_group: str | None = None) -> list[Group]:
        with self._lock:
            return [
                group
                for key, group in self._groups.items()
                if key[0] == subscription.lower() and (resource_group is None or key[1] == resource_group.lower())
            ]

    def delete(self, subscription: str, resource_group: str, name: str) -> Group | None:
        with self._lock:
            group = self._groups.pop(self._key(subscription, resource_group, name), None)
            if group is not None:
                self._history.append({"event": "delete", "at": now(), "id": group.id, "name": name})
        if group is not None:
            self._stop(group)
        return group

    def operation(self, operation_id: str) -> dict[str, Any]:
        with self._lock:
            group = next((g for g in self._groups.values() if g.operation_id == operation_id), None)
        if group is None:
            raise ApiError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
        status = {"Pending": "InProgress", "Succeeded": "Succeeded"}.get(group.provisioning_state, "Failed")
        return {"id": operation_id, "name": operation_id, "status": status, "startTime": group.created}

    def logs(self, subscription: str, resource_group: str, name: str, container: str, tail: int | None) -> str:
        group = self.get(subscription, resource_group, name)
        found = next((c for c in group.containers if c.name == container), None)
        if found is None:
            raise ApiError(404, "ContainerNotFound", f"The container '{container}' was not found in '{name}'.")
        if found.start_time is None:
            return ""
        # One stream, in the order the container wrote it, as ACI's log API returns it.
        return _docker("logs", *(["--tail", str(tail)] if tail else []), found.docker_name, merge_stderr=True).stdout

    def groups(self) -> list[dict[str, Any]]:
        with self._lock:
            return [group.summary() for group in self._groups.values()]

    def history(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._history)

    def close(self) -> None:
        with self._lock:
            groups, self._groups = list(self._groups.values()), {}
        for group in groups:
            self._stop(group)
        # Anything left from a crashed thread: every container this instance started is labelled.
        listed = _docker("ps", "-aq", "--filter", f"label={LABEL}={self.instance}")
        if listed.stdout.split():
            _docker("rm", "--force", *listed.stdout.split())

    def _stop(self, group: Group) -> None:
        group.deleted.set()
        for container in group.containers:
            _docker("rm", "--force", container.docker_name)

    def _run(self, group: Group) -> None:
        if group.deleted.wait(self.startup_delay):
            return
        for container in group.containers:
            container.event("Pulling", f'pulling image "{container.spec["image"]}"')
            if _docker("image", "inspect", local_image(container.spec["image"])).returncode != 0:
                container.detail_status = "ImagePullBackOff"
                container.event("Failed", f'Failed to pull image "{container.spec["image"]}"', "Warning")
                group.provisioning_state = "Failed"
                return
            container.event("Pulled", f'Successfully pulled image "{container.spec["image"]}"')
        for container in group.containers:
            if group.deleted.is_set() or not self._start(group, container):
                return
        group.provisioning_state = "Succeeded"
        for container in group.containers:
            threading.Thread(target=self._wait, args=(group, container), daemon=True).start()

    def _start(self, group: Group, container: Container) -> bool:
        spec = container.spec
        variables = {
            v["name"]: str(v.get("value", v.get("secureValue", ""))) for v in spec.get("environmentVariables") or []
        }
        command = spec.get("command") or []
        args = [
            "run",
            "--detach",
            "--name",
            container.docker_name,
            "--network",
            self.network,
            "--label",
            f"{LABEL}={self.instance}",
            "--label",
            f"aci-group={group.id}",
            # Which process's emulator started it: the tests' leak check counts only its own session's.
            "--label",
            f"aci-emulator-owner={os.getpid()}",
        ]
        # Values travel in the docker client's environment (`-e NAME`), never on a command line.
        for variable in variables:
            args += ["--env", variable]
        if command:  # ACI's command replaces the image's ENTRYPOINT, as Kubernetes' does
            args += ["--entrypoint", command[0], local_image(spec["image"]), *command[1:]]
        else:
            args.append(local_image(spec["image"]))
        result = _docker(*args, env={**os.environ, **variables})
        if result.returncode != 0:
            container.detail_status = "Error"
            container.event("Failed", f"Error: failed to start container: {result.stderr.strip()}", "Warning")
            group.provisioning_state = "Failed"
            return False
        container.state, container.detail_status, container.start_time = "Running", "", now()
        container.event("Created", f"Created container {container.name}")
        container.event("Started", f"Started container {container.name}")
        return True

    def _wait(self, group: Group, container: Container) -> None:
        result = _docker("wait", container.docker_name, timeout=None)
        if group.deleted.is_set():
            return
        try:
            exit_code = int(result.stdout.strip())
        except ValueError:
            exit_code = -1
        container.exit_code, container.finish_time = exit_code, now()
        container.detail_status = "Completed" if exit_code == 0 else "Error"
        container.state = "Terminated"
