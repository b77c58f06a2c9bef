"""core/v1 Events as the sim's controllers (kubelet, scheduler) record them."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.store import Store

log = logging.getLogger(__name__)


def record_event(store: Store, involved: Mapping[str, Any], reason: str, message: str, *,
                 event_type: str = "Normal", component: str = "kubelet",
                 host: Optional[str] = None, field_path: Optional[str] = None) -> None:
    """Write a core/v1 Event about `involved` (named like the kubelet's: <object>.<hex>)."""
    meta = involved["metadata"]
    namespace = meta.get("namespace") or "default"
    now = now_rfc3339()
    involved_ref: dict[str, Any] = {"kind": involved.get("kind", "Pod"), "namespace": namespace,
                                    "name": meta["name"], "uid": meta.get("uid"),
                                    "apiVersion": involved.get("apiVersion", "v1"),
                                    "resourceVersion": meta.get("resourceVersion")}
    if field_path:
        involved_ref["fieldPath"] = field_path
    source: dict[str, Any] = {"component": component}
    if host:
        source["host"] = host
    event = {
        "kind": "Event", "apiVersion": "v1",
        "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": involved_ref, "reason": reason, "message": message, "source": source,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1, "type": event_type,
        "eventTime": None, "reportingComponent": component, "reportingInstance": host or component,
    }
    try:
        store.create("events", namespace, event)
    except Exception as error:   # namespace gone or terminating: the event is lost, as in k8s
        log.debug("event %s for %s not recorded: %s", reason, meta["name"], error)
