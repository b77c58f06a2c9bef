"""Server-side printing (meta.k8s.io/v1 Table) so `kubectl get` shows the usual columns."""

from __future__ import annotations

import calendar
import time
from typing import Any, Callable

Column = tuple[str, str, int, Callable[[dict], Any]]  # name, type, priority, cell


def _age(obj: dict) -> str:
    created = obj.get("metadata", {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int(time.time() - calendar.timegm(time.strptime(created, "%Y-%m-%dT%H:%M:%SZ")))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_status(pod: dict) -> str:
    """The STATUS column as kubectl's pod printer derives it (common cases)."""
    status = pod.get("status", {})
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating"
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("initContainerStatuses") or []:
        state = cs.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason") not in (None,
                                                                         "PodInitializing"):
            return "Init:" + state["waiting"]["reason"]
    for cs in reversed(status.get("containerStatuses") or []):
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    return str(reason)


def _ready(pod: dict) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _restarts(pod: dict) -> int:
    return sum(int(s.get("restartCount", 0))
               for s in pod.get("status", {}).get("containerStatuses") or [])


def _node_status(node: dict) -> str:
    ready: dict = next((c for c in node.get("status", {}).get("conditions") or []
                  if c.get("type") == "Ready"), {})
    text = "Ready" if ready.get("status") == "True" else "NotReady"
    return text + (",SchedulingDisabled" if node.get("spec", {}).get("unschedulable") else "")


def _name(obj: dict) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


COLUMNS: dict[str, list[Column]] = {
    "pods": [
        ("Name", "string", 0, _name), ("Ready", "string", 0, _ready),
        ("Status", "string", 0, _pod_status), ("Restarts", "string", 0, _restarts),
        ("Age", "string", 0, _age),
        ("IP", "string", 1, lambda p: p.get("status", {}).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda p: p.get("spec", {}).get("nodeName") or "<none>"),
    ],
    "nodes": [
        ("Name", "string", 0, _name), ("Status", "string", 0, _node_status),
        ("Roles", "string", 0, lambda n: "<none>"), ("Age", "string", 0, _age),
        ("Version", "string", 0,
         lambda n: n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")),
    ],
    "namespaces": [
        ("Name", "string", 0, _name),
        ("Status", "string", 0, lambda n: n.get("status", {}).get("phase", "")),
        ("Age", "string", 0, _age),
    ],
}
DEFAULT_COLUMNS: list[Column] = [("Name", "string", 0, _name), ("Age", "string", 0, _age)]


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(resource: str, objects: list[dict], list_meta: dict) -> dict:
    columns = COLUMNS.get(resource, DEFAULT_COLUMNS)
    return {
        "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta,
        "columnDefinitions": [
            {"name": name, "type": kind, "format": "name" if name == "Name" else "",
             "description": "", "priority": priority}
            for name, kind, priority, _ in columns],
        "rows": [{"cells": [cell(obj) for *_, cell in columns],
                  "object": {"kind": "PartialObjectMetadata",
                             "apiVersion": "meta.k8s.io/v1",
                             "metadata": obj.get("metadata", {})}}
                 for obj in objects],
    }
