"""Strategic merge of pod-shaped dicts, the way `kubectl patch --type strategic` treats a Pod.

Maps merge recursively, scalars are replaced, `None` deletes a key, lists named in
`MERGE_KEYS` merge item by item on their key (an item `{<key>: x, "$patch": "delete"}` removes
x), lists in `APPEND_LISTS` are concatenated, and every other list is replaced whole.
Inputs are never modified: the result is copied once (`tree_copy`) and merged into in place.
"""

from __future__ import annotations

import copy
from typing import Any

# list field -> the key its items are matched on (the patchMergeKey of the Kubernetes API)
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",   # Kubernetes' key: one volume may be mounted at several paths
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
}
APPEND_LISTS = frozenset({"tolerations"})
PATCH_DIRECTIVE = "$patch"


_IMMUTABLE = (str, int, float, bool, type(None))


def tree_copy(value: Any) -> Any:
    """A copy of a JSON/YAML-shaped tree: new dicts and lists all the way down, scalars shared.

    Several times faster than `copy.deepcopy` (no memo, no dispatch per object), and a part
    that appears twice in the input (a YAML alias) becomes two independent copies, so changing
    one never changes the other. Anything else (a date from YAML, a tuple) is deep-copied."""
    if isinstance(value, dict):
        return {k: tree_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [tree_copy(v) for v in value]
    if isinstance(value, _IMMUTABLE):
        return value
    return copy.deepcopy(value)


def strategic_merge(base: Any, patch: Any) -> Any:
    """A new object: `patch` applied to `base` (both left untouched)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return _merge_into(tree_copy(base), patch)
    return tree_copy(patch)


def _merge_into(out: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """`patch` applied to `out`, which is the caller's own copy (changed in place)."""
    for key, value in patch.items():
        if key == PATCH_DIRECTIVE:
            continue
        if value is None:
            out.pop(key, None)
        elif key in MERGE_KEYS and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = _merge_keyed_list(out[key], value, MERGE_KEYS[key])
        elif key in APPEND_LISTS and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + tree_copy(value)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_into(out[key], value)
        else:
            out[key] = _strip_directives(value)
    return out


def _merge_keyed_list(out: list[Any], patch: list[Any], key: str) -> list[Any]:
    """`patch` merged item by item into `out` (the caller's own copy, changed in place)."""
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(_strip_directives(item))
            continue
        index = next((i for i, old in enumerate(out)
                      if isinstance(old, dict) and old.get(key) == item[key]), None)
        if item.get(PATCH_DIRECTIVE) == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append(_strip_directives(item))
        else:
            out[index] = _merge_into(out[index], item)
    return out


def _strip_directives(value: Any) -> Any:
    """A deep copy without `$patch` keys or null map values (nothing to delete in new content)."""
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if k != PATCH_DIRECTIVE and v is not None}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value if isinstance(value, _IMMUTABLE) else copy.deepcopy(value)
