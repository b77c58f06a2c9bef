"""The sim's control plane besides the API server: nodes, scheduler, kubelet and garbage collector.

`start` is called once by the cluster on the sim's event loop. One store subscription feeds every
controller, in order, so each sees the same event sequence a watch would.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import secrets
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from kgahp.sim.store import now_rfc3339  # re-exported: one cached clock for the sim

if TYPE_CHECKING:
    from kgahp.sim.simconfig import SimConfig
    from kgahp.sim.store import Store

log = logging.getLogger(__name__)

KUBELET_VERSION = "v1.36.2"



def ensure_workdir(config: SimConfig) -> pathlib.Path:
    """The sim's working directory; an empty `workdir` is replaced by a fresh temp dir (once)."""
    if not config.workdir:
        config.workdir = tempfile.mkdtemp(prefix="kgahp-sim-")
    path = pathlib.Path(config.workdir)
    if config.workdir not in _made_workdirs:   # called per container: create once
        path.mkdir(parents=True, exist_ok=True)
        _made_workdirs.add(config.workdir)
    return path


_made_workdirs: set[str] = set()


def pod_dir(config: SimConfig, namespace: str, pod: str) -> pathlib.Path:
    """Per-pod host directory: root/ is the working directory, volumes/<name> back the volumes."""
    return ensure_workdir(config) / "pods" / namespace / pod


def pod_log_path(config: SimConfig, namespace: str, pod: str, container: str) -> pathlib.Path:
    """Where the kubelet writes a container's combined stdout+stderr (may not exist yet)."""
    return ensure_workdir(config) / "logs" / namespace / pod / f"{container}.log"


def node_name(index: int) -> str:
    return f"sim-node-{index}"


def node_object(config: SimConfig, index: int) -> dict[str, Any]:
    """A Node as a kubelet registers it: capacity = allocatable, Ready, one address."""
    name = node_name(index)
    capacity = {"cpu": config.cpu, "memory": config.memory, "ephemeral-storage": "100Gi",
                "pods": "110"}
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
              "kubernetes.io/os": "linux", "type": "kgahp-sim"}
    if config.gpus > 0:
        capacity["nvidia.com/gpu"] = str(config.gpus)
        labels["nvidia.com/gpu.present"] = "true"
        labels["nvidia.com/gpu.product"] = config.gpu_product
        labels["nvidia.com/gpu.count"] = str(config.gpus)
    now = now_rfc3339()
    return {
        "kind": "Node", "apiVersion": "v1",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": dict(capacity), "allocatable": dict(capacity),
            "conditions": [node_ready_condition("True", now)],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": secrets.token_hex(16), "systemUUID": secrets.token_hex(16),
                         "bootID": secrets.token_hex(16), "kernelVersion": "6.1.0",
                         "osImage": "kgahp sim", "containerRuntimeVersion": "containerd://1.7.0",
                         "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": KUBELET_VERSION,
                         "operatingSystem": "linux", "architecture": "amd64"},
        },
    }


def node_ready_condition(status: str, when: str) -> dict[str, Any]:
    if status == "True":
        reason, message = "KubeletReady", "kubelet is posting ready status"
    else:
        reason, message = "NodeStatusUnknown", "Kubelet stopped posting node status."
    return {"type": "Ready", "status": status, "lastHeartbeatTime": when,
            "lastTransitionTime": when, "reason": reason, "message": message}


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


async def start(store: Store, config: SimConfig) -> list[asyncio.Task[Any]]:
    """Create the Node objects and start scheduler, kubelet and GC; their tasks."""
    from kgahp.sim.gc import GarbageCollector
    from kgahp.sim.kubelet import Kubelet
    from kgahp.sim.scheduler import Scheduler
    from kgahp.sim.store import WatchEvent

    ensure_workdir(config)
    queue = store.subscribe()   # before creating anything, so every object is seen once
    for resource in ("nodes", "secrets", "configmaps", "pods", "jobs"):
        existing, _ = store.list(resource, None)
        for obj in existing:
            queue.put_nowait(WatchEvent("ADDED", resource, obj["metadata"].get("namespace"), obj,
                                        store.rv))
    names = {obj["metadata"]["name"] for obj in store.list("nodes", None)[0]}
    for index in range(1, config.nodes + 1):
        if node_name(index) not in names:
            store.create("nodes", None, node_object(config, index))
    scheduler = Scheduler(store, config)
    kubelet = Kubelet(store, config)
    collector = GarbageCollector(store)
    from kgahp.sim.kueue import KueueStandIn

    kueue = KueueStandIn(store, config)
    from kgahp.sim.jobs import JobController

    jobs = JobController(store)

    async def dispatch() -> None:
        while True:
            event = await queue.get()
            for observer in (scheduler.observe, kubelet.observe, collector.observe,
                             kueue.observe, jobs.observe):
                try:
                    observer(event)
                except Exception:   # one bad object must not stop the control plane
                    log.exception("controller failed on %s %s", event.type, event.resource)

    return [asyncio.create_task(dispatch(), name="sim-dispatch"),
            asyncio.create_task(scheduler.run(), name="sim-scheduler"),
            asyncio.create_task(kubelet.run(), name="sim-kubelet")]
