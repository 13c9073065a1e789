"""Names for the container groups, pods and containers that run dbt nodes.

Every runtime has its own rules; one name satisfies all of them at once:
- Azure Container Instances: container group names are lowercase letters, digits and hyphens,
  start and end with a letter or digit, 1-63 characters;
- Kubernetes (and EKS): pod names are RFC 1123 subdomains, and label values (the name is copied
  into one) at most 63 characters;
- Cloud Run: lowercase letters, digits and hyphens, starting with a letter, at most 63;
- Docker: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
So a name is `^[a-z]([a-z0-9-]*[a-z0-9])?$`, at most 63 characters. It ends in a hash of the full
identity (DAG, task, run, map index, try), so two tasks or two runs never share a name, however
the readable part was shortened or however similar their dbt node names are.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

MAX_LENGTH = 63
NAME_RULE = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_HASH_LENGTH = 8
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    """Lowercase ASCII letters and digits joined by single hyphens ('Stg_Orders.run' -> 'stg-orders-run')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_ALLOWED.sub("-", ascii_text.lower()).strip("-")


def runtime_name(
    dag_id: str,
    task_id: str,
    run_id: str = "",
    map_index: int = -1,
    try_number: int = 1,
    prefix: str = "dbt",
    max_length: int = MAX_LENGTH,
) -> str:
    """A name that satisfies every runtime's rules and is unique per task instance and try."""
    identity = "\x1f".join((dag_id, task_id, run_id, str(map_index), str(try_number)))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_HASH_LENGTH]
    readable = "-".join(part for part in (slug(prefix), slug(dag_id), slug(task_id)) if part)
    if not readable or not readable[0].isalpha():
        readable = f"x-{readable}".rstrip("-")
    budget = max_length - _HASH_LENGTH - 1
    readable = readable[:budget].rstrip("-")
    name = f"{readable}-{digest}"
    if not NAME_RULE.match(name) or len(name) > max_length:  # a bug here must never reach a cloud API
        raise ValueError(f"generated an invalid runtime name {name!r} for {dag_id}.{task_id}")
    return name


# The DAG-level macro the container modes use in their `name` template fields.
NAME_TEMPLATE = "{{ runtime_name(ti.dag_id, ti.task_id, run_id, ti.map_index, ti.try_number) }}"
TEMPLATE_MACROS = {"runtime_name": runtime_name}
