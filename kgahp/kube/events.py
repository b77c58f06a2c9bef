"""A pod's FailedMount events: the only place a volume that cannot be mounted shows (the pod
just stays ContainerCreating, with no reason in its status)."""

from __future__ import annotations

from typing import Any

from kgahp.kube.api import Kube


def _when(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or meta.get("creationTimestamp") or "")


def newest_mount_failure(kube: Kube, namespace: str, pod_name: str) -> str:
    """The message of the pod's newest FailedMount event, or "" when it has none."""
    selector = (f"involvedObject.kind=Pod,involvedObject.name={pod_name},"
                "reason=FailedMount")
    answer = kube.list_events(namespace, selector,
                              what=f"listing the events of pod {namespace}/{pod_name}")
    events = [e for e in answer.get("items") or () if e.get("reason") == "FailedMount"]
    if not events:
        return ""
    return str(max(events, key=_when).get("message") or "")
