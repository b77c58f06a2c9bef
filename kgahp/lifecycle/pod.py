"""Reading a pod dict (camelCase, as the API server returns it) into the few facts the rules look
at: `read_pod`, and `restarts_of` for the disruption count kgahp keeps in an annotation.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from kubernetes.utils.quantity import parse_quantity

RESTARTS_ANNOTATION = "kgahp.htcondor.org/restarts"


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    init: bool
    waiting_reason: str = ""
    waiting_message: str = ""
    running: bool = False
    terminated: bool = False
    exit_code: Optional[int] = None
    terminated_reason: str = ""
    terminated_message: str = ""
    memory_limit: str = ""
    finished_at: Optional[float] = None          # state.terminated.finishedAt


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    phase: str
    reason: str                                  # status.reason
    message: str                                 # status.message
    node: Optional[str]
    conditions: Mapping[str, Mapping[str, Any]]  # by type
    created: Optional[float]
    start_time: Optional[float]
    deletion_at: Optional[float]                 # deletionTimestamp (already includes the grace)
    deletion_grace: Optional[int]                # deletionGracePeriodSeconds
    active_deadline: Optional[int]
    main: Optional[Container]
    init_containers: tuple[Container, ...]
    cpus: Optional[float]
    memory_mib: Optional[int]
    disk_kib: Optional[int]
    scheduling_gates: tuple[str, ...] = ()       # spec.schedulingGates names
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def condition(self, kind: str) -> Mapping[str, Any]:
        return self.conditions.get(kind, {})


def parse_time(value: Any) -> Optional[float]:
    """RFC 3339 time (as the API or sanitize_for_serialization writes it) → epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _parse_time_text(value)
    return _parse_time(value)


@functools.lru_cache(maxsize=4096)
def _parse_time_text(value: str) -> Optional[float]:
    """The same pod's timestamps come back in every event and every look at it."""
    return _parse_time(value)


def _parse_time(value: Any) -> Optional[float]:
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
        # Python 3.9's fromisoformat wants 0, 3 or 6 fraction digits; the API may send up to 9.
        text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _quantity(value: Any) -> Optional[Decimal]:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return _text_quantity(value)
    return _any_quantity(value)


@functools.lru_cache(maxsize=1024)
def _text_quantity(value: str) -> Optional[Decimal]:
    """Pods ask for a handful of distinct quantities ("1", "64Mi"): each is read once."""
    return _any_quantity(value)


def _any_quantity(value: Any) -> Optional[Decimal]:
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError):
        return None


def _container(spec: Mapping[str, Any], status: Mapping[str, Any], init: bool) -> Container:
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated")
    limits = (spec.get("resources") or {}).get("limits") or {}
    exit_code = terminated.get("exitCode") if terminated else None
    return Container(
        name=str(spec.get("name") or status.get("name") or ""),
        image=str(spec.get("image") or status.get("image") or ""),
        init=init,
        waiting_reason=str(waiting.get("reason") or ""),
        waiting_message=str(waiting.get("message") or ""),
        running=state.get("running") is not None,
        terminated=terminated is not None,
        exit_code=int(exit_code) if exit_code is not None else None,
        terminated_reason=str((terminated or {}).get("reason") or ""),
        terminated_message=str((terminated or {}).get("message") or ""),
        memory_limit=str(limits.get("memory") or ""),
        finished_at=parse_time((terminated or {}).get("finishedAt")),
    )


def _containers(specs: list[Any], statuses: list[Any], init: bool) -> list[Container]:
    by_name = {s.get("name"): s for s in statuses if isinstance(s, Mapping)}
    return [_container(s, by_name.get(s.get("name"), {}), init)
            for s in specs if isinstance(s, Mapping)]


def read_pod(pod: Mapping[str, Any], main_container: str = "job") -> Pod:
    """The facts of one pod dict; missing fields read as empty, never raise."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    mains = _containers(spec.get("containers") or [], status.get("containerStatuses") or [], False)
    main = next((c for c in mains if c.name == main_container), mains[0] if mains else None)
    inits = _containers(spec.get("initContainers") or [],
                        status.get("initContainerStatuses") or [], True)
    main_spec = next((c for c in spec.get("containers") or []
                      if isinstance(c, Mapping) and c.get("name") == (main.name if main else None)),
                     {})
    resources = main_spec.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}

    def requested(name: str) -> Optional[Decimal]:
        return _quantity(requests.get(name, limits.get(name)))

    cpus, memory, disk = requested("cpu"), requested("memory"), requested("ephemeral-storage")
    deadline = spec.get("activeDeadlineSeconds")
    grace = meta.get("deletionGracePeriodSeconds")
    return Pod(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        phase=str(status.get("phase") or ""),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        node=spec.get("nodeName") or None,
        conditions={str(c.get("type")): c for c in status.get("conditions") or []
                    if isinstance(c, Mapping)},
        created=parse_time(meta.get("creationTimestamp")),
        start_time=parse_time(status.get("startTime")),
        deletion_at=parse_time(meta.get("deletionTimestamp")),
        deletion_grace=int(grace) if isinstance(grace, (int, float, str)) and
        str(grace).lstrip("-").isdigit() else None,
        active_deadline=int(deadline) if deadline is not None else None,
        main=main,
        init_containers=tuple(inits),
        cpus=float(cpus) if cpus is not None else None,
        memory_mib=int(memory / (1 << 20)) if memory is not None else None,
        disk_kib=int(disk / (1 << 10)) if disk is not None else None,
        scheduling_gates=tuple(str(g.get("name") or "") for g in spec.get("schedulingGates")
                               or () if isinstance(g, Mapping)),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


def restarts_of(pod: Mapping[str, Any]) -> int:
    """Disruptions so far, from the pod's restarts annotation (0 when absent or unreadable)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return max(0, int(str(annotations.get(RESTARTS_ANNOTATION, "0")).strip()))
    except ValueError:
        return 0
