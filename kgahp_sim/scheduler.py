"""The sim's kube-scheduler: first-fit binding of pending pods, with kube-scheduler's messages.

`fit` is pure: given a pod's requests/selector/tolerations and the nodes with what is already used
on them, it names the first node that fits or explains, in kube-scheduler's words, why none does.
`Scheduler` is the controller around it: it tracks usage from store events, binds, and writes the
`PodScheduled=False` condition and `FailedScheduling` event for pods that do not fit.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Optional

from kgahp_sim.events import record_event
from kgahp_sim.quantity import QuantityError
from kgahp_sim.quantity import parse_quantity as exact_quantity
from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig
    from kgahp_sim.store import Store, WatchEvent

log = logging.getLogger(__name__)

SCHEDULER_NAME = "default-scheduler"
FITTED_RESOURCES = ("cpu", "memory", "ephemeral-storage", "nvidia.com/gpu")
TERMINAL_PHASES = ("Succeeded", "Failed")

def parse_quantity(text: Any) -> float:
    """A Kubernetes quantity as a number ('100m' -> 0.1, '1Gi' -> 1073741824); 0 if invalid."""
    try:
        return float(exact_quantity(text))
    except QuantityError:
        return 0.0


@dataclass(frozen=True)
class NodeInfo:
    name: str
    allocatable: Mapping[str, float]
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, str]] = ()
    unschedulable: bool = False

    @classmethod
    def from_object(cls, node: Mapping[str, Any]) -> NodeInfo:
        status = node.get("status") or {}
        spec = node.get("spec") or {}
        allocatable = {k: parse_quantity(v) for k, v in (status.get("allocatable") or {}).items()}
        return cls(name=node["metadata"]["name"], allocatable=allocatable,
                   labels=dict(node["metadata"].get("labels") or {}),
                   taints=tuple(spec.get("taints") or ()),
                   unschedulable=bool(spec.get("unschedulable")))


@dataclass(frozen=True)
class PodNeeds:
    requests: Mapping[str, float]
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: Sequence[Mapping[str, Any]] = ()

    @cached_property
    def signature(self) -> tuple[Any, ...]:
        """Equal for pods that fit exactly the same nodes."""
        return (tuple(sorted(self.requests.items())), tuple(sorted(self.node_selector.items())),
                repr(self.tolerations))

    @classmethod
    def from_object(cls, pod: Mapping[str, Any]) -> PodNeeds:
        spec = pod.get("spec") or {}
        return cls(requests=pod_requests(spec), node_selector=dict(spec.get("nodeSelector") or {}),
                   tolerations=tuple(spec.get("tolerations") or ()))


def _container_requests(container: Mapping[str, Any]) -> dict[str, float]:
    resources = container.get("resources") or {}
    merged = dict(resources.get("limits") or {})   # a limit without a request is the request
    merged.update(resources.get("requests") or {})
    return {name: parse_quantity(value) for name, value in merged.items()}


def pod_requests(spec: Mapping[str, Any]) -> dict[str, float]:
    """Effective requests: sum over containers, at least any init container's, plus a pod slot."""
    total: dict[str, float] = {}
    for container in spec.get("containers") or ():
        for name, value in _container_requests(container).items():
            total[name] = total.get(name, 0.0) + value
    for init in spec.get("initContainers") or ():
        for name, value in _container_requests(init).items():
            total[name] = max(total.get(name, 0.0), value)
    total["pods"] = 1.0
    return total


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, str]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
            continue
        operator = toleration.get("operator") or "Equal"
        if not toleration.get("key"):
            if operator == "Exists":
                return True
            continue
        if toleration.get("key") != taint.get("key"):
            continue
        if operator == "Exists" or toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def node_failures(needs: PodNeeds, node: NodeInfo, used: Mapping[str, float]) -> list[str]:
    """Why `node` cannot take the pod, in kube-scheduler's words (filter plugin order)."""
    if node.unschedulable:
        return ["node(s) were unschedulable"]
    for taint in node.taints:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and \
                not tolerates(needs.tolerations, taint):
            shown = f"{taint.get('key')}: {taint.get('value', '')}"
            return [f"node(s) had untolerated taint {{{shown}}}"]
    if any(node.labels.get(k) != v for k, v in needs.node_selector.items()):
        return ["node(s) didn't match Pod's node affinity/selector"]
    failures = []
    if used.get("pods", 0.0) + 1 > node.allocatable.get("pods", float("inf")):
        failures.append("Too many pods")
    for resource in FITTED_RESOURCES:
        wanted = needs.requests.get(resource, 0.0)
        available = node.allocatable.get(resource, 0.0) - used.get(resource, 0.0)
        if wanted > 0 and wanted > available + 1e-9:
            failures.append(f"Insufficient {resource}")
    return failures


def _is_resource_failure(reason: str) -> bool:
    return reason.startswith("Insufficient ") or reason == "Too many pods"


def unschedulable_message(per_node: Sequence[Sequence[str]]) -> str:
    """kube-scheduler's FitError message for nodes that all failed (recording 14a form)."""
    total = len(per_node)
    counts: dict[str, int] = {}
    preemption: dict[str, int] = {}
    for failures in per_node:
        for reason in failures:
            counts[reason] = counts.get(reason, 0) + 1
        verdict = "No preemption victims found for incoming pod" \
            if failures and all(_is_resource_failure(r) for r in failures) \
            else "Preemption is not helpful for scheduling"
        preemption[verdict] = preemption.get(verdict, 0) + 1
    reasons = ", ".join(f"{n} {r}" for r, n in sorted(counts.items()))
    victims = ", ".join(f"{n} {r}" for r, n in sorted(preemption.items()))
    if total == 0:
        return "no nodes available to schedule pods"
    return (f"0/{total} nodes are available: {reasons}. "
            f"preemption: 0/{total} nodes are available: {victims}.")


def fit(needs: PodNeeds, nodes: Sequence[NodeInfo],
        used: Mapping[str, Mapping[str, float]]) -> tuple[Optional[str], str]:
    """(first node that fits, "") or (None, the scheduler's message)."""
    per_node = []
    for node in nodes:
        failures = node_failures(needs, node, used.get(node.name, {}))
        if not failures:
            return node.name, ""
        per_node.append(failures)
    return None, unschedulable_message(per_node)


Key = tuple[str, str]


class Scheduler:
    """Binds pending `default-scheduler` pods; retries them whenever capacity or nodes change."""

    def __init__(self, store: Store, config: SimConfig) -> None:
        self._store = store
        self._config = config
        self._nodes: dict[str, NodeInfo] = {}
        # insertion order = creation order; needs parsed once per pod
        self._pending: dict[Key, tuple[dict[str, Any], PodNeeds]] = {}
        self._placed: dict[Key, tuple[str, Mapping[str, float]]] = {}
        # what the placed pods request, per node, kept as they come and go (kube-scheduler's
        # node cache does the same): summing every placed pod on each pass made a pass cost
        # O(pods), 100,000 of them in the scale benchmark
        self._used: dict[str, dict[str, float]] = {}
        self._reported: dict[Key, str] = {}               # last Unschedulable message written
        self._wake = asyncio.Event()

    def observe(self, event: WatchEvent) -> None:
        if event.resource == "nodes":
            if event.type == "DELETED":
                self._nodes.pop(event.obj["metadata"]["name"], None)
            else:
                self._nodes[event.obj["metadata"]["name"]] = NodeInfo.from_object(event.obj)
            self._wake.set()
        elif event.resource == "pods":
            self._observe_pod(event)

    def _observe_pod(self, event: WatchEvent) -> None:
        pod = event.obj
        key = (pod["metadata"].get("namespace") or "", pod["metadata"]["name"])
        node = (pod.get("spec") or {}).get("nodeName")
        phase = (pod.get("status") or {}).get("phase")
        if event.type == "DELETED" or node or pod["metadata"].get("deletionTimestamp"):
            self._pending.pop(key, None)
            self._reported.pop(key, None)
        if event.type == "DELETED" or phase in TERMINAL_PHASES:
            if self._unplace(key):
                self._wake.set()       # capacity freed: pending pods may fit now
            return
        if node:
            if self._placed.get(key, ("",))[0] != node:   # requests are immutable once bound
                self._place(key, node, pod_requests(pod.get("spec") or {}))
        elif (pod.get("spec") or {}).get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME \
                and not pod["metadata"].get("deletionTimestamp"):
            if (pod.get("spec") or {}).get("schedulingGates"):
                self._pending.pop(key, None)   # gated: not the scheduler's until ungated (24)
                return
            if key not in self._pending:
                self._pending[key] = (pod, PodNeeds.from_object(pod))
                self._wake.set()

    def _place(self, key: Key, node: str, requests: Mapping[str, float]) -> None:
        self._unplace(key)
        self._placed[key] = (node, requests)
        self._count(node, requests, 1)

    def _unplace(self, key: Key) -> bool:
        placed = self._placed.pop(key, None)
        if placed is not None:
            self._count(*placed, -1)
        return placed is not None

    def _count(self, node: str, requests: Mapping[str, float], sign: int) -> None:
        bucket = self._used.setdefault(node, {})
        for name, value in requests.items():
            # rounded to the nano units quantities have: adding and taking away 0.1 CPU
            # 100,000 times must not leave a node looking full by a float's error
            bucket[name] = round(bucket.get(name, 0.0) + sign * value, 9)
        if bucket.get("pods", 0.0) <= 0:
            del self._used[node]

    def usage(self) -> dict[str, dict[str, float]]:
        """What the placed pods request, per node (a copy)."""
        return {node: dict(bucket) for node, bucket in self._used.items()}

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._config.schedule_delay)
            self._wake.clear()
            try:
                self.schedule_pending()
            except Exception:  # a controller must survive one bad pod
                log.exception("scheduling pass failed")

    def schedule_pending(self) -> None:
        nodes = sorted(self._nodes.values(), key=lambda n: _natural_key(n.name))
        used = self._used     # kept current by _place as this pass binds
        # Usage only grows during a pass, so a pod needing what an earlier pod could not get
        # cannot fit either: one fit per distinct set of needs.
        failed: dict[tuple[Any, ...], str] = {}
        for key, (pod, needs) in list(self._pending.items()):
            signature = needs.signature
            if signature in failed:
                node, message = None, failed[signature]
            else:
                node, message = fit(needs, nodes, used)
            if node is None:
                failed[signature] = message
                if self._reported.get(key) != message:
                    self._reported[key] = message
                    self._mark_unschedulable(pod, message)
                continue
            if self._bind(pod, node):
                self._place(key, node, needs.requests)
            self._pending.pop(key, None)
            self._reported.pop(key, None)

    def _bind(self, pod: dict[str, Any], node: str) -> bool:
        meta = pod["metadata"]
        uid = meta.get("uid")
        bound = False

        def mutate(obj: dict[str, Any]) -> None:
            nonlocal bound
            if obj["metadata"].get("uid") != uid or obj["spec"].get("nodeName"):
                return
            bound = True
            obj["spec"]["nodeName"] = node
            status = obj.setdefault("status", {})
            conditions = [c for c in status.get("conditions") or ()
                          if c.get("type") != "PodScheduled"]
            conditions.insert(0, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                  "lastTransitionTime": now_rfc3339()})
            status["conditions"] = conditions

        try:
            self._store.update("pods", meta.get("namespace"), meta["name"], mutate, copy=False)
        except Exception as error:   # deleted meanwhile: nothing to bind
            log.debug("binding %s/%s failed: %s", meta.get("namespace"), meta["name"], error)
            return False
        if bound:
            record_event(self._store, pod, "Scheduled",
                         f"Successfully assigned {meta.get('namespace')}/{meta['name']} to {node}",
                         component=SCHEDULER_NAME)
        return bound

    def _mark_unschedulable(self, pod: dict[str, Any], message: str) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid")

        def mutate(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") != uid or obj["spec"].get("nodeName"):
                return
            status = obj.setdefault("status", {})
            old = next((c for c in status.get("conditions") or ()
                        if c.get("type") == "PodScheduled"), None)
            condition = {"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                         "lastTransitionTime": now_rfc3339(), "reason": "Unschedulable",
                         "message": message}
            if old and old.get("status") == "False":
                condition["lastTransitionTime"] = old.get("lastTransitionTime")
            others = [c for c in status.get("conditions") or () if c.get("type") != "PodScheduled"]
            status["conditions"] = [condition, *others]

        try:
            self._store.update("pods", meta.get("namespace"), meta["name"], mutate, copy=False)
        except Exception as error:
            log.debug("unschedulable update failed: %s", error)
            return
        record_event(self._store, pod, "FailedScheduling", message, event_type="Warning",
                     component=SCHEDULER_NAME)


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
