"""Deep merge of layered configuration, remembering which layer set each value."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Path = tuple[str, ...]


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Return `base` with `overlay` merged in: mappings merge key by key, anything else replaces.

    Lists replace rather than concatenate, so an overlay can shorten one (e.g. fewer tags).
    Neither input is modified.
    """
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def leaf_paths(tree: Mapping[str, Any], prefix: Path = ()) -> dict[Path, Any]:
    """Every non-mapping value of a nested mapping, keyed by its path of keys."""
    leaves: dict[Path, Any] = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping) and value:
            leaves.update(leaf_paths(value, path))
        else:
            leaves[path] = value
    return leaves
