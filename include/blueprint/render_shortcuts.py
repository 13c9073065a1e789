"""Three shortcuts that make DAG construction cheaper without changing the DAG it builds.

1. Cosmos's operators split their keyword arguments by inspecting constructor signatures, for every
   task it builds: `inspect.signature(BaseOperator.__init__)` and two `getfullargspec` calls per
   local task, one signature per class of the operator's MRO per container task. A signature never
   changes while the process runs, so `cache_cosmos_signatures` gives Cosmos's operator modules an
   `inspect` whose `signature` and `getfullargspec` remember their answer (everything else is the
   real `inspect`). At 1,000 models that is 3,000 inspections fewer.
   This reaches into Cosmos's modules, so it is pinned: on any Cosmos version other than
   COSMOS_VERSION it does nothing (correct, only slower), and tests/unit/test_render_shortcuts.py
   fails until someone has checked the new version and moved the pin.

2. `airflow.sdk.Asset` sends every URI scheme except `file` and `x-*` to the providers' URI
   normalizers, and the first lookup imports every provider's asset module (S3, GCS and their
   SDKs): 0.3-0.6 s of each fresh DAG-file parse, for a `dbt://` URI that no provider normalizes.
   `dbt_asset` builds the same Asset with a URI that is already in normal form (checked by pattern,
   else the ordinary constructor runs), running Airflow's field validators but not the normalizer.

3. `paused_gc` keeps Python's cycle collector from running while a DAG is built: every object made
   then stays reachable from the DAG, so the collections find nothing, yet each one walks every
   object of the process (Airflow, Cosmos and the manifest: 270,000 at 1,000 models), 0.13 s of
   CPU per 1,000-model build. The collector runs again, as before, once the DAG is built.

`BLUEPRINT_RENDER_SHORTCUTS=0` turns all three off (the DAG is the same, so this is for comparison).
"""

from __future__ import annotations

import functools
import gc
import inspect
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Asset

COSMOS_VERSION = "1.15.1"
SWITCH = "BLUEPRINT_RENDER_SHORTCUTS"
# What Airflow's _sanitize_uri leaves unchanged: lowercase scheme, a host without user info, a path
# without trailing slash, no query, fragment or percent-escapes.
NORMAL_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]*[A-Za-z0-9_-]$")


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


class _CachedInspect(ModuleType):
    """The `inspect` module, with `signature` and `getfullargspec` remembered per callable."""

    signature = staticmethod(functools.cache(inspect.signature))
    getfullargspec = staticmethod(functools.cache(inspect.getfullargspec))

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)


_CACHED_INSPECT = _CachedInspect("inspect")


def cache_cosmos_signatures(execution_mode: str) -> list[str]:
    """Give Cosmos's operator modules (the mode's, imported here as Cosmos would a moment later)
    the caching `inspect`; returns the modules changed. Idempotent."""
    if not enabled() or _cosmos_version() != COSMOS_VERSION:
        return []
    import importlib

    importlib.import_module(f"cosmos.operators.{execution_mode}")
    changed = []
    for name, module in list(sys.modules.items()):
        if name.startswith("cosmos.operators") and getattr(module, "inspect", None) is inspect:
            module.inspect = _CACHED_INSPECT  # type: ignore[attr-defined]
            changed.append(name)
    return changed


def _cosmos_version() -> str:
    import cosmos

    return str(cosmos.__version__)


def dbt_asset(name: str, uri: str, group: str) -> Asset:
    """`Asset(name=name, uri=uri, group=group)`, without the providers' URI normalizer when `uri`
    is already in normal form."""
    import attrs
    from airflow.sdk import Asset
    from airflow.sdk.definitions.asset import AssetAccessControl

    if not enabled() or not NORMAL_URI.match(uri) or uri.startswith("airflow:"):
        return Asset(name=name, uri=uri, group=group)
    made = Asset.__new__(Asset)
    values = {"name": name, "uri": uri, "group": group, "extra": {}, "watchers": [],
              "access_control": AssetAccessControl()}  # fmt: skip
    for field, value in values.items():
        object.__setattr__(made, field, value)
    attrs.validate(made)
    return made


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside (reference counting still frees what is dropped); the
    collector's previous state is restored on the way out, also when building fails."""
    if not enabled() or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
