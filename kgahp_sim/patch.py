"""The three PATCH flavours of the apiserver: JSON merge, strategic merge and JSON patch."""

from __future__ import annotations

from typing import Any

from kgahp_sim.store import clone

# Strategic-merge keys of the lists kgahp and the kubelet touch (patchMergeKey in the Go types);
# lists not named here are replaced wholesale, as Kubernetes does (e.g. containerStatuses).
MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "podIPs": "ip",
    "hostIPs": "ip",
    "readinessGates": "conditionType",
    "finalizers": "",  # merged as a set of scalars
}


class PatchError(ValueError):
    """The patch cannot be applied (the API answers 422 or 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    if isinstance(patch, list):
        return _merge_list(target if isinstance(target, list) else [], patch, field)
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = strategic_merge_patch(result.get(key), value, key)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_list(target: list, patch: list, field: str) -> list:
    if field not in MERGE_KEYS:
        return [clone(v) for v in patch if not (isinstance(v, dict) and v.get("$patch"))]
    key = MERGE_KEYS[field]
    if not key:
        return list(target) + [v for v in patch if v not in target]
    result = list(target)
    added: list = []
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        index = next((i for i, cur in enumerate(result)
                      if isinstance(cur, dict) and cur.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            added.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    # New entries go first, as the apiserver orders them (recording 10d).
    return added + result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> Any:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise PatchError("missing path")
    return cur


def _get(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return doc
    parent = _parent(doc, parts)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError("missing path")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 on a copy of doc."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list")
    doc = clone(doc)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError("invalid operation")
        kind, parts = op["op"], _pointer(op["path"])
        if kind == "test":
            if _get(doc, parts) != op.get("value"):
                raise PatchError("test failed")
            continue
        if kind in ("move", "copy"):
            value = clone(_get(doc, _pointer(op.get("from", ""))))
            if kind == "move":
                doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
            doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
            continue
        if not parts:
            if kind in ("add", "replace"):
                doc = clone(op.get("value"))
                continue
            raise PatchError("cannot remove the root")
        parent, last = _parent(doc, parts), parts[-1]
        if isinstance(parent, dict):
            if kind == "add":
                parent[last] = clone(op.get("value"))
            elif kind == "replace":
                if last not in parent:
                    raise PatchError("missing path")
                parent[last] = clone(op.get("value"))
            elif kind == "remove":
                if last not in parent:
                    raise PatchError("missing path")
                del parent[last]
            else:
                raise PatchError(f"unknown op {kind}")
        elif isinstance(parent, list):
            index = len(parent) if last == "-" else (int(last) if last.isdigit() else -1)
            if index < 0 or index > len(parent) or (kind != "add" and index >= len(parent)):
                raise PatchError("index out of range")
            if kind == "add":
                parent.insert(index, clone(op.get("value")))
            elif kind == "replace":
                parent[index] = clone(op.get("value"))
            elif kind == "remove":
                parent.pop(index)
            else:
                raise PatchError(f"unknown op {kind}")
        else:
            raise PatchError("missing path")
    return doc
