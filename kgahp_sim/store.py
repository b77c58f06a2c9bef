"""The sim's object store: etcd plus the apiserver's registry semantics, on one event loop.

Every method is synchronous and must be called on the sim's event loop thread (no locks).
Objects handed out by the public methods are copies; WatchEvent objects are shared between
all subscribers and must be treated as read-only.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import pickle
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from kgahp_sim.defaulting import (
    BUILTIN_PRIORITY_CLASSES,
    GENERATION_RESOURCES,
    GROUP_OF,
    KIND_OF,
    api_version,
    apply_defaults,
    order_metadata,
    order_object,
    qualified,
)
from kgahp_sim.selectors import field_matcher, label_matcher

RESOURCES = ("pods", "secrets", "configmaps", "events", "namespaces", "nodes", "priorityclasses",
             "jobs")
CLUSTER_SCOPED = frozenset({"namespaces", "nodes", "priorityclasses"})
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's generateName alphabet


class ApiStatusError(Exception):
    """An error the API renders as a Kubernetes ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict:
        body: dict = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def not_found(resource: str, name: str) -> ApiStatusError:
    details = {"name": name, "group": GROUP_OF[resource], "kind": resource} if (
        resource in GROUP_OF) else {"name": name, "kind": resource}
    return ApiStatusError(404, "NotFound", f'{qualified(resource)} "{name}" not found', details)


def conflict_modified(resource: str, name: str) -> ApiStatusError:
    return ApiStatusError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "kind": resource})


@dataclass
class WatchEvent:
    type: str
    resource: str
    namespace: str | None
    obj: dict
    rv: int
    old: dict | None = None            # the previous state for MODIFIED (selector transitions)
    _lines: dict = field(default_factory=dict, repr=False)

    def line(self, event_type: str | None = None) -> bytes:
        """The watch-stream line for this event, serialised once for every watcher."""
        kind = event_type or self.type
        cached = self._lines.get(kind)
        if cached is None:
            cached = (json.dumps({"type": kind, "object": self.obj}, separators=(",", ":"),
                                 ensure_ascii=False) + "\n").encode()
            self._lines[kind] = cached
        return cached


_uid_rng = random.Random()


def new_uid() -> str:
    """A random (version 4) UUID without a getrandom() syscall per call."""
    return str(uuid.UUID(int=_uid_rng.getrandbits(128), version=4))


_stamp_cache: tuple[int, str] = (0, "")


def now_rfc3339(offset_seconds: float = 0) -> str:
    """RFC 3339 UTC time with second precision, as metav1.Time serialises."""
    global _stamp_cache
    moment = time.time() + offset_seconds
    second = int(moment)
    if offset_seconds == 0 and _stamp_cache[0] == second:
        return _stamp_cache[1]  # many objects are stamped within the same second
    text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
    if offset_seconds == 0:
        _stamp_cache = (second, text)
    return text


def clone(value: object) -> object:
    """Deep copy for JSON-shaped data (pickle's C implementation: the fastest available)."""
    return pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))


def _finalized(obj: dict) -> bool:
    """Deleted, no finalizer left and no grace period still running."""
    meta = obj.get("metadata", {})
    return bool(meta.get("deletionTimestamp")) and not meta.get("finalizers") and int(
        meta.get("deletionGracePeriodSeconds") or 0) == 0


def _clone_obj(obj: dict) -> dict:
    copied = clone(obj)
    assert isinstance(copied, dict)
    return copied


class Store:
    def __init__(self, history_window: int = 10000) -> None:
        self.rv = 1
        self._objects: dict[str, dict[str, dict[str, dict]]] = {r: {} for r in RESOURCES}
        self._history: deque[WatchEvent] = deque()
        self._window = max(1, history_window)
        self._compacted_rv = 0
        self._subscribers: list[asyncio.Queue[WatchEvent]] = []
        self.resource_rv: dict[str, int] = {r: 0 for r in RESOURCES}
        for ns in ("default", "kube-system"):
            self.create("namespaces", None, {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": ns}})
        for name, value, description in BUILTIN_PRIORITY_CLASSES:
            self.create("priorityclasses", None, {
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name}, "value": value, "description": description})

    # ----- reading -------------------------------------------------------------------------
    def _bucket(self, resource: str, namespace: str | None) -> dict[str, dict]:
        return self._objects[resource].get(namespace or "", {})

    def peek(self, resource: str, namespace: str | None, name: str) -> dict | None:
        """The stored object itself (no copy; read-only) or None."""
        return self._bucket(resource, namespace).get(name)

    def get(self, resource: str, namespace: str | None, name: str) -> dict:
        obj = self.peek(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return _clone_obj(obj)

    def scan(self, resource: str, namespace: str | None) -> list[dict]:
        """Stored objects (no copies) in etcd key order: by namespace, then name."""
        if resource in CLUSTER_SCOPED or namespace:
            bucket = self._bucket(resource, None if resource in CLUSTER_SCOPED else namespace)
            return [bucket[n] for n in sorted(bucket)]
        out: list[dict] = []
        for ns in sorted(self._objects[resource]):
            bucket = self._objects[resource][ns]
            out.extend(bucket[n] for n in sorted(bucket))
        return out

    def list(self, resource: str, namespace: str | None, *, label_selector: str = "",
             field_selector: str = "") -> tuple[list[dict], int]:
        by_label = label_matcher(label_selector)
        by_field = field_matcher(resource, field_selector)
        items = [_clone_obj(o) for o in self.scan(resource, namespace)
                 if by_label(o) and by_field(o)]
        return items, self.rv

    @property
    def compacted_rv(self) -> int:
        """Events with a resourceVersion at or below this one are gone from history."""
        return self._compacted_rv

    def history_since(self, rv: int) -> builtins.list[WatchEvent]:
        return [e for e in self._history if e.rv > rv]

    # ----- writing -------------------------------------------------------------------------
    def _emit(self, event: WatchEvent) -> None:
        if len(self._history) >= self._window:
            self._compacted_rv = self._history.popleft().rv
        self._history.append(event)
        self.resource_rv[event.resource] = event.rv
        for q in self._subscribers:
            q.put_nowait(event)

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def _check_namespace(self, resource: str, namespace: str | None, name: str) -> None:
        if resource in CLUSTER_SCOPED:
            return
        ns = self.peek("namespaces", None, namespace or "")
        if ns is None:
            raise not_found("namespaces", namespace or "")
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise ApiStatusError(
                403, "Forbidden",
                f'{resource} "{name}" is forbidden: unable to create new content in namespace '
                f"{namespace} because it is being terminated",
                {"name": name, "kind": resource, "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": f"namespace {namespace} is being terminated",
                    "field": "metadata.namespace"}]})

    def create(self, resource: str, namespace: str | None, obj: dict, *,
               dry_run: bool = False, copy: bool = True) -> dict:
        """Store a new object; copy=False hands `obj` over and returns the stored object
        itself (the API's fast path: the caller must not mutate either afterwards)."""
        if copy:
            obj = _clone_obj(obj)
        meta = obj.setdefault("metadata", {})
        obj.setdefault("apiVersion", api_version(resource))
        obj.setdefault("kind", KIND_OF[resource])
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(_NAME_CHARS, k=5))
        name = meta.get("name", "")
        if resource not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        self._check_namespace(resource, namespace, name)
        if self.peek(resource, namespace, name) is not None:
            raise ApiStatusError(409, "AlreadyExists", f'{resource} "{name}" already exists',
                                 {"name": name, "kind": resource})
        for transient in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(transient, None)
        meta["uid"] = new_uid()
        if resource in GENERATION_RESOURCES:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        meta["creationTimestamp"] = now_rfc3339()
        obj = apply_defaults(resource, obj)
        if dry_run:
            return obj
        rv = self._next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        obj["metadata"] = order_metadata(obj["metadata"])
        key = "" if resource in CLUSTER_SCOPED else (namespace or "")
        self._objects[resource].setdefault(key, {})[name] = obj
        self._emit(WatchEvent("ADDED", resource, obj["metadata"].get("namespace"), obj, rv))
        return _clone_obj(obj) if copy else obj

    def update(self, resource: str, namespace: str | None, name: str,
               mutate: Callable[[dict], None], *, expect_rv: str | None = None,
               copy: bool = True) -> dict:
        """Mutate a copy; bump rv and emit MODIFIED unless nothing changed. With `copy=False`
        the stored object itself is returned: the caller must only read it."""
        current = self.peek(resource, namespace, name)
        if current is None:
            raise not_found(resource, name)
        if expect_rv and expect_rv != current["metadata"].get("resourceVersion"):
            raise conflict_modified(resource, name)
        new = _clone_obj(current)
        mutate(new)
        new["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        if new == current:
            return _clone_obj(current) if copy else current
        if current["metadata"].get("finalizers") and _finalized(new):
            # the last finalizer of a deleted object went: it goes at once, DELETED with no
            # MODIFIED before it; the event carries the last stored state (23a6, 23a7, 23b4)
            self.remove(resource, namespace, name)
            return _clone_obj(new) if copy else new
        new = order_object(new)
        rv = self._next_rv()
        new["metadata"]["resourceVersion"] = str(rv)
        self._store_replace(resource, namespace, name, new)
        self._emit(WatchEvent("MODIFIED", resource, new["metadata"].get("namespace"), new, rv,
                              old=current))
        return _clone_obj(new) if copy else new

    def _store_replace(self, resource: str, namespace: str | None, name: str, obj: dict) -> None:
        key = "" if resource in CLUSTER_SCOPED else (namespace or "")
        self._objects[resource][key][name] = obj

    def remove(self, resource: str, namespace: str | None, name: str) -> None:
        """Final removal: emits DELETED carrying a new resourceVersion."""
        key = "" if resource in CLUSTER_SCOPED else (namespace or "")
        bucket = self._objects[resource].get(key, {})
        current = bucket.pop(name, None)
        if current is None:
            raise not_found(resource, name)
        rv = self._next_rv()
        gone = dict(current)
        gone["metadata"] = {**current["metadata"], "resourceVersion": str(rv)}
        self._emit(WatchEvent("DELETED", resource, gone["metadata"].get("namespace"), gone, rv))

    def delete(self, resource: str, namespace: str | None, name: str, *,
               grace_seconds: int | None = None, uid_precondition: str | None = None,
               dry_run: bool = False) -> tuple[dict, bool]:
        current = self.peek(resource, namespace, name)
        if current is None:
            raise not_found(resource, name)
        uid = current["metadata"].get("uid")
        if uid_precondition is not None and uid_precondition != uid:
            raise ApiStatusError(
                409, "Conflict",
                f'Operation cannot be fulfilled on {KIND_OF[resource]} "{name}": the UID in the '
                f"precondition ({uid_precondition}) does not match the UID in record ({uid}). "
                "The object might have been deleted and then recreated",
                {"name": name, "kind": KIND_OF[resource]})
        if resource == "pods":
            return self._delete_pod(current, namespace, name, grace_seconds, dry_run)
        if resource == "namespaces":
            return self._delete_namespace(current, name, dry_run)
        if dry_run:
            return _clone_obj(current), True
        if current["metadata"].get("finalizers"):
            if current["metadata"].get("deletionTimestamp"):
                return _clone_obj(current), False

            def mark_deleted(obj: dict) -> None:
                obj["metadata"]["deletionTimestamp"] = now_rfc3339()
                obj["metadata"]["deletionGracePeriodSeconds"] = 0
                if "generation" in obj["metadata"]:
                    obj["metadata"]["generation"] = int(obj["metadata"]["generation"]) + 1

            return self.update(resource, namespace, name, mark_deleted), False
        self.remove(resource, namespace, name)
        return _clone_obj(current), True

    def _delete_pod(self, current: dict, namespace: str | None, name: str,
                    grace_seconds: int | None, dry_run: bool) -> tuple[dict, bool]:
        spec, meta = current.get("spec", {}), current["metadata"]
        grace = grace_seconds if grace_seconds is not None else int(
            spec.get("terminationGracePeriodSeconds", 30))
        if grace < 0:
            grace = 1  # what the apiserver turns a negative grace period into (09f)
        phase = current.get("status", {}).get("phase")
        if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            grace = 0  # nothing runs, so nothing to wait for
        existing = meta.get("deletionGracePeriodSeconds")
        if meta.get("deletionTimestamp") and existing is not None and grace >= int(existing):
            return _clone_obj(current), False  # already terminating at least as fast
        if dry_run:
            out = _clone_obj(current)
            out["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
            out["metadata"]["deletionGracePeriodSeconds"] = grace
            out["metadata"]["generation"] = int(out["metadata"].get("generation") or 1) + 1
            return out, grace == 0

        def mark(pod: dict) -> None:
            pod["metadata"]["deletionTimestamp"] = now_rfc3339(grace)
            pod["metadata"]["deletionGracePeriodSeconds"] = grace
            pod["metadata"]["generation"] = int(pod["metadata"].get("generation") or 1) + 1

        marked = self.update("pods", namespace, name, mark)
        if grace > 0 or marked["metadata"].get("finalizers"):
            return marked, False   # finalizers keep it, with deletionTimestamp (23a2, 23b2)
        self.remove("pods", namespace, name)
        marked["metadata"]["resourceVersion"] = str(self.rv)
        return marked, True

    def _delete_namespace(self, current: dict, name: str, dry_run: bool) -> tuple[dict, bool]:
        if dry_run or current["metadata"].get("deletionTimestamp"):
            return _clone_obj(current), False

        def terminate(ns: dict) -> None:
            ns["metadata"]["deletionTimestamp"] = now_rfc3339()
            ns["status"] = {"phase": "Terminating"}

        marked = self.update("namespaces", None, name, terminate)
        try:
            asyncio.get_running_loop().call_later(0.05, self._finalize_namespace, name)
        except RuntimeError:
            self._finalize_namespace(name)
        return marked, False

    def _finalize_namespace(self, name: str) -> None:
        """The namespace controller: delete the content (pods gracefully), then the namespace
        once nothing is left; re-checks while graceful deletions are still running."""
        left = 0
        for resource in RESOURCES:
            if resource in CLUSTER_SCOPED:
                continue
            for obj in list(self._objects[resource].get(name, {}).values()):
                obj_name = obj["metadata"]["name"]
                if not obj["metadata"].get("deletionTimestamp"):
                    self.delete(resource, name, obj_name)
                if self.peek(resource, name, obj_name) is not None:
                    left += 1
        if left:
            try:
                asyncio.get_running_loop().call_later(0.2, self._finalize_namespace, name)
            except RuntimeError:
                pass  # no loop (unit use): the namespace stays Terminating
            return
        if self.peek("namespaces", None, name) is not None:
            self.remove("namespaces", None, name)

    def replace(self, resource: str, namespace: str | None, name: str, obj: dict) -> dict:
        """Store a whole new version (PUT/PATCH path), keeping identity fields."""
        current = self.peek(resource, namespace, name)
        if current is None:
            raise not_found(resource, name)
        keep = {k: current["metadata"][k] for k in ("uid", "creationTimestamp", "namespace",
                                                     "deletionTimestamp",
                                                     "deletionGracePeriodSeconds", "generation")
                if k in current["metadata"]}
        if "generation" in keep and obj.get("spec") != current.get("spec"):
            keep["generation"] = int(keep["generation"]) + 1   # a spec change is a generation

        def swap(target: dict) -> None:
            target.clear()
            target.update(_clone_obj(obj))
            target.setdefault("metadata", {}).update(keep)
            target["metadata"]["name"] = name

        return self.update(resource, namespace, name, swap)

    # ----- watching ------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[WatchEvent]:
        q: asyncio.Queue[WatchEvent] = asyncio.Queue()
        self._subscribers.append(q)
        return q

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions (controllers plus API watches)."""
        return len(self._subscribers)

    def unsubscribe(self, q: asyncio.Queue[WatchEvent]) -> None:
        if q in self._subscribers:
            self._subscribers.remove(q)

    def compact(self) -> None:
        """Forget all history: watching or listing from any older version now gets 410."""
        self._history.clear()
        self.rv += 1  # every version handed out so far is now older than the compaction
        self._compacted_rv = self.rv
