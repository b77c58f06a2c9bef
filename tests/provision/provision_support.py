"""Shared pieces of the provisioner tests: shapes as an admin writes them, the condor_q snapshot
in data/, and pods and startd ads shaped as the API server and a startd report them."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import classad2

from kgahp.provision.shapes import parse_shapes

DATA = Path(__file__).resolve().parent / "data"
IDLE_JOBS = DATA / "idle_jobs.ads"

CPU_ONLY = "TARGET.RequestGPUs =?= undefined || TARGET.RequestGPUs == 0"
SHAPES_YAML: dict[str, Any] = {
    "defaults": {"image": "sim.invalid/sleep"},
    "shapes": {
        "cpu-1": {"cpus": 1, "memory": "2Gi", "disk": "10Gi", "start": CPU_ONLY},
        "cpu-8": {"cpus": 8, "memory": "16Gi", "disk": "40Gi", "start": CPU_ONLY},
        "gpu-1": {"cpus": 4, "memory": "16Gi", "disk": "20Gi", "gpus": 1,
                  "gpuModel": "NVIDIA-A100", "start": "TARGET.RequestGPUs >= 1"},
    },
}


def shapes(data: Optional[dict[str, Any]] = None):  # type: ignore[no-untyped-def]
    return parse_shapes(data or SHAPES_YAML, "shapes.yaml")


def job_ads(text: Optional[str] = None) -> list[classad2.ClassAd]:
    return list(classad2.parseAds(text if text is not None else IDLE_JOBS.read_text()))


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, shape: str, *, created: float, phase: str = "Pending",
        waiting: Optional[tuple[str, str]] = None, started: Optional[float] = None,
        terminated: Optional[int] = None, deleting: bool = False,
        cost: Optional[str] = None, scheduled: bool = True,
        unschedulable_since: Optional[float] = None) -> dict[str, Any]:
    """A pilot pod as the API returns it, in one of the situations the tests need."""
    meta: dict[str, Any] = {
        "name": name, "namespace": "pilots", "creationTimestamp": rfc3339(created),
        "labels": {"kgahp.htcondor.org/pilot-shape": shape,
                   "kgahp.htcondor.org/role": "pilot"},
        "annotations": {},
    }
    if cost is not None:
        meta["annotations"]["controller.kubernetes.io/pod-deletion-cost"] = cost
    if deleting:
        meta["deletionTimestamp"] = rfc3339(created + 5)
    status: dict[str, Any] = {"phase": phase, "conditions": []}
    if scheduled:
        status["conditions"].append({"type": "PodScheduled", "status": "True"})
    elif unschedulable_since is not None:
        status["conditions"].append({
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "lastTransitionTime": rfc3339(unschedulable_since),
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."})
    container: dict[str, Any] = {"name": "job", "image": "pilot:1", "ready": False,
                                 "restartCount": 0}
    if waiting is not None:
        container["state"] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
        container["lastState"] = {}
    elif terminated is not None:
        container["state"] = {"terminated": {"exitCode": terminated,
                                             "reason": "Completed" if terminated == 0
                                             else "Error",
                                             "finishedAt": rfc3339(created + 30)}}
    elif phase == "Running":
        container["state"] = {"running": {"startedAt": rfc3339(started or created)}}
        container["ready"] = True
    if phase == "Running":
        status["startTime"] = rfc3339(started or created)
    if phase != "Pending" or waiting is not None:
        status["containerStatuses"] = [container]
    return {"metadata": meta, "spec": {"containers": [{"name": "job", "image": "pilot:1"}]},
            "status": status}


def startd(pod_name: str, state: str = "Unclaimed", *, entered: float = 0,
           dynamic: Optional[int] = None, slot: str = "slot1") -> classad2.ClassAd:
    """A startd slot ad as `condor_status -l` prints one (the attributes supply reads)."""
    text = (f'MyType = "Machine"\nName = "{slot}@{pod_name}"\n'
            f'Machine = "{pod_name}.pilots.pod.cluster.local"\nState = "{state}"\n'
            f'Activity = "{"Busy" if state == "Claimed" else "Idle"}"\n'
            f'EnteredCurrentState = {int(entered)}\nKgahpPilotShape = "cpu-1"\n')
    if dynamic is not None:
        text += f"PartitionableSlot = true\nNumDynamicSlots = {dynamic}\n"
    return next(iter(classad2.parseAds(text)))
