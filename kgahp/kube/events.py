"""FailedMount events: the only place a volume that cannot be mounted shows (the pod just stays
ContainerCreating, with no reason in its status)."""

from __future__ import annotations

from typing import Any

from kgahp.kube.api import Kube


def _when(event: dict[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or meta.get("creationTimestamp") or "")


def mount_failures(kube: Kube, namespace: str) -> dict[str, str]:
    """Pod name -> message of its newest FailedMount event, for the whole namespace.

    One request however many pods wait (events live an hour, so the answer stays small); a
    request per waiting pod would flood the API server when many pods pull a large image."""
    answer = kube.list_events(namespace, "involvedObject.kind=Pod,reason=FailedMount",
                              what=f"listing FailedMount events in {namespace}")
    newest: dict[str, dict[str, Any]] = {}
    for event in answer.get("items") or ():
        if event.get("reason") != "FailedMount":
            continue
        pod = str((event.get("involvedObject") or {}).get("name") or "")
        if pod and (pod not in newest or _when(event) >= _when(newest[pod])):
            newest[pod] = event
    return {pod: str(event.get("message") or "") for pod, event in newest.items()}
