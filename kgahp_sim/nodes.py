"""The sim's nodes and their host side: Node objects as a kubelet registers them, and the
per-pod directories and log files on the machine that runs the sim.

Shared by the controllers (which create the nodes) and the kubelet (which runs pods on them).
"""

from __future__ import annotations

import pathlib
import secrets
import tempfile
from typing import TYPE_CHECKING, Any

from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig

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
