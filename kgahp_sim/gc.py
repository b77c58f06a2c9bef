"""The sim's garbage collector: background cascading deletion through ownerReferences.

When an object goes away, every object that names its uid in `metadata.ownerReferences` and has no
other owner left is deleted (pods gracefully, like any DELETE). An object created with owners that
are all already gone is collected too, as Kubernetes' GC does for absent owners.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kgahp_sim.store import Store, WatchEvent

log = logging.getLogger(__name__)

# Owner kinds the sim serves; owners of other kinds cannot be checked and are left alone.
KNOWN_KINDS = {"Pod": "pods", "Secret": "secrets", "ConfigMap": "configmaps",
               "Namespace": "namespaces", "Node": "nodes", "Event": "events", "Job": "jobs"}

Ref = tuple[str, str, str]   # (resource, namespace, name)


def owner_uids(obj: dict[str, Any]) -> set[str]:
    """uids of the object's owners whose kind the sim knows."""
    return {ref["uid"] for ref in obj["metadata"].get("ownerReferences") or ()
            if ref.get("uid") and ref.get("kind") in KNOWN_KINDS}


def orphaned(owners: Iterable[str], alive: set[str]) -> bool:
    """True when the object has known owners and none of them exists any more."""
    owners = set(owners)
    return bool(owners) and not owners & alive


class GarbageCollector:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._alive: set[str] = set()                      # uids of existing objects
        self._dependents: dict[str, set[Ref]] = {}         # owner uid -> dependents
        self._owners_of: dict[Ref, set[str]] = {}          # dependent -> owner uids

    def observe(self, event: WatchEvent) -> None:
        obj = event.obj
        meta = obj["metadata"]
        uid = meta.get("uid")
        ref: Ref = (event.resource, meta.get("namespace") or "", meta["name"])
        if event.type == "DELETED":
            self._forget(ref)
            if uid:
                self._alive.discard(uid)
                self._collect_dependents_of(uid)
            return
        if event.type not in ("ADDED", "MODIFIED"):
            return
        if uid:
            self._alive.add(uid)
        owners = owner_uids(obj)
        self._forget(ref)
        if not owners:
            return
        self._owners_of[ref] = owners
        for owner in owners:
            self._dependents.setdefault(owner, set()).add(ref)
        if orphaned(owners, self._alive) and not meta.get("deletionTimestamp"):
            self._delete(ref)

    def _forget(self, ref: Ref) -> None:
        for owner in self._owners_of.pop(ref, ()):
            dependents = self._dependents.get(owner)
            if dependents is not None:
                dependents.discard(ref)
                if not dependents:
                    del self._dependents[owner]

    def _collect_dependents_of(self, uid: str) -> None:
        for ref in sorted(self._dependents.pop(uid, ())):
            if orphaned(self._owners_of.get(ref, ()), self._alive):
                self._delete(ref)

    def _delete(self, ref: Ref) -> None:
        resource, namespace, name = ref
        try:
            self._store.delete(resource, namespace or None, name)
            log.debug("garbage-collected %s %s/%s", resource, namespace, name)
        except Exception as error:   # already gone
            log.debug("garbage collection of %s %s/%s: %s", resource, namespace, name, error)
