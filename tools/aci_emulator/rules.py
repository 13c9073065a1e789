"""The rules Azure enforces on a container group request that matter to the blueprint, with the
400 responses Azure sends when they are broken (error code and a message naming the property)."""

from __future__ import annotations

import re
from typing import Any

NAME_RULE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MAX_NAME_LENGTH = 63
OS_TYPES = ("Linux", "Windows")
RESTART_POLICIES = ("Always", "OnFailure", "Never")


class ApiError(Exception):
    """An Azure-style error: HTTP status plus the `{"error": {"code", "message"}}` body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def name_problem(name: str) -> str | None:
    """Why Azure would refuse `name` for a container group (or a container in one), or None."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"must be 1 to {MAX_NAME_LENGTH} characters long, not {len(name)}"
    if not NAME_RULE.match(name):
        return "must contain only lowercase letters, digits and '-', and start and end with a letter or digit"
    if "--" in name:
        return "must not contain consecutive hyphens"
    return None


def check_group_name(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise ApiError(400, "ContainerGroupNameInvalid", f"The container group name '{name}' is invalid: it {problem}.")


def _missing(path: str) -> ApiError:
    return ApiError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: 'Required property missing at '{path}'.'",
    )


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _missing(path)
    if value <= 0:
        raise ApiError(400, "InvalidContainerResourceRequests", f"'{path}' must be greater than 0, not {value}.")
    return float(value)


def check_group(body: Any) -> None:
    """Raise the first ApiError Azure would answer a PUT of this container group with."""
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
    if not body.get("location"):
        raise ApiError(400, "LocationRequired", "The location property is required for this definition.")
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise _missing("properties")
    os_type = properties.get("osType")
    if not os_type:
        raise _missing("properties.osType")
    if os_type not in OS_TYPES:
        raise ApiError(400, "InvalidOsType", f"The OS type '{os_type}' is not supported; use one of {OS_TYPES}.")
    policy = properties.get("restartPolicy", "Always")
    if policy not in RESTART_POLICIES:
        raise ApiError(400, "InvalidRestartPolicy", f"The restart policy '{policy}' is not one of {RESTART_POLICIES}.")
    containers = properties.get("containers")
    if not isinstance(containers, list) or not containers:
        raise _missing("properties.containers")
    seen: set[str] = set()
    for index, container in enumerate(containers):
        where = f"properties.containers[{index}]"
        name = container.get("name") if isinstance(container, dict) else None
        if not name:
            raise _missing(f"{where}.name")
        problem = name_problem(name)
        if problem:
            raise ApiError(400, "InvalidContainerName", f"The container name '{name}' is invalid: it {problem}.")
        if name in seen:
            raise ApiError(400, "DuplicateContainerName", f"The container name '{name}' is used more than once.")
        seen.add(name)
        spec = container.get("properties")
        if not isinstance(spec, dict):
            raise _missing(f"{where}.properties")
        if not spec.get("image"):
            raise _missing(f"{where}.properties.image")
        requests = (spec.get("resources") or {}).get("requests")
        if not isinstance(requests, dict):
            raise _missing(f"{where}.properties.resources.requests")
        _number(requests.get("cpu"), f"{where}.properties.resources.requests.cpu")
        _number(requests.get("memoryInGB"), f"{where}.properties.resources.requests.memoryInGB")
        for variable in spec.get("environmentVariables") or []:
            if not isinstance(variable, dict) or not variable.get("name"):
                raise _missing(f"{where}.properties.environmentVariables.name")
