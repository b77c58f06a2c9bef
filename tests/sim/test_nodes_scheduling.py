"""Scheduling (capacity, GPUs, nodeSelector, Unschedulable reporting) and ownerReference GC."""

from __future__ import annotations

from kubernetes import client
from test_nodes_support import (
    NAMESPACE,
    SimFactory,
    condition,
    core,
    events_for,
    phase_in,
    pod_manifest,
    wait_for,
    wait_pod,
)
from test_nodes_support import make_sim as make_sim_fixture

make_sim = make_sim_fixture   # the fixture, under the name the tests ask for


def _requests(**requests: str) -> dict:  # type: ignore[type-arg]
    return {"resources": {"requests": requests, "limits": dict(requests)}}


def test_unschedulable_condition_event_and_retry(make_sim: SimFactory) -> None:
    api = core(make_sim(nodes=2, cpu="2"))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "hog", image="sim.invalid/sleep", container=_requests(cpu="2")))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "hog2", image="sim.invalid/sleep", container=_requests(cpu="2")))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "waiter", image="sim.invalid/ok:50ms", container=_requests(cpu="1500m")))
    message = ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are "
               "available: 2 No preemption victims found for incoming pod.")
    pod = wait_pod(api, "waiter", lambda p: condition(p, "PodScheduled") is not None)
    scheduled = condition(pod, "PodScheduled")
    assert (scheduled.status, scheduled.reason, scheduled.message) == \
        ("False", "Unschedulable", message)
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    assert ("FailedScheduling", message) in events_for(api, "waiter")
    api.delete_namespaced_pod("hog", NAMESPACE)
    pod = wait_pod(api, "waiter", phase_in("Succeeded"))
    assert condition(pod, "PodScheduled").status == "True"


def test_gpu_pods_go_to_matching_nodes(make_sim: SimFactory) -> None:
    api = core(make_sim(nodes=2, gpus=1, gpu_product="NVIDIA-H100"))
    gpu = _requests(**{"nvidia.com/gpu": "1"})
    selector = {"nvidia.com/gpu.product": "NVIDIA-H100"}
    for name in ("g1", "g2", "g3"):
        api.create_namespaced_pod(NAMESPACE, pod_manifest(
            name, image="sim.invalid/sleep", container=gpu, nodeSelector=selector))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "wrong-model", image="sim.invalid/ok", container=gpu,
        nodeSelector={"nvidia.com/gpu.product": "NVIDIA-A100"}))
    nodes = {wait_pod(api, n, phase_in("Running")).spec.node_name for n in ("g1", "g2")}
    assert nodes == {"sim-node-1", "sim-node-2"}
    third = wait_pod(api, "g3", lambda p: condition(p, "PodScheduled") is not None)
    assert condition(third, "PodScheduled").message.startswith(
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.")
    wrong = wait_pod(api, "wrong-model", lambda p: condition(p, "PodScheduled") is not None)
    assert condition(wrong, "PodScheduled").message == (
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    node = api.read_node("sim-node-1")
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100"


def test_secret_owned_by_deleted_pod_is_collected(make_sim: SimFactory) -> None:
    api = core(make_sim())
    pod = api.create_namespaced_pod(NAMESPACE, pod_manifest("owner", image="sim.invalid/sleep"))
    owner = client.V1OwnerReference(api_version="v1", kind="Pod", name="owner",
                                    uid=pod.metadata.uid)
    for name, refs in (("owned", [owner]), ("unowned", None)):
        api.create_namespaced_secret(NAMESPACE, client.V1Secret(
            metadata=client.V1ObjectMeta(name=name, owner_references=refs),
            string_data={"k": "v"}))
    wait_pod(api, "owner", phase_in("Running"))
    api.delete_namespaced_pod("owner", NAMESPACE)

    def names() -> set[str]:
        return {s.metadata.name for s in api.list_namespaced_secret(NAMESPACE).items}

    remaining = wait_for(names, lambda found: "owned" not in found)
    assert "unowned" in remaining
