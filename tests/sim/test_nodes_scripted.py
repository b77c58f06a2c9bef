"""Scripted outcomes (sim.invalid/ images and the sim.kgahp.io/outcome annotation), end to end."""

from __future__ import annotations

import gc
import time

import pytest
from kubernetes import watch
from test_nodes_support import (
    NAMESPACE,
    SimFactory,
    condition,
    core,
    events_for,
    gone,
    phase_in,
    pod_manifest,
    terminated,
    wait_for,
    wait_pod,
    waiting_reason,
)
from test_nodes_support import make_sim as make_sim_fixture

from kgahp_sim import SimCluster

make_sim = make_sim_fixture   # the fixture, under the name the tests ask for


def scripted(name: str, image: str, **spec: object) -> dict:  # type: ignore[type-arg]
    return pod_manifest(name, image=image, **spec)


@pytest.mark.parametrize("image, phase, code, reason", [
    ("sim.invalid/ok:100ms", "Succeeded", 0, "Completed"),
    ("sim.invalid/exit3:100ms", "Failed", 3, "Error"),
    ("sim.invalid/signal9:100ms", "Failed", 137, "Error"),
    ("sim.invalid/oom:100ms", "Failed", 137, "OOMKilled"),
])
def test_terminating_outcomes(sim: SimCluster, image: str, phase: str, code: int,
                              reason: str) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("p", image))
    pod = wait_pod(api, "p", phase_in("Succeeded", "Failed"))
    assert (pod.status.phase, terminated(pod).exit_code, terminated(pod).reason) == \
        (phase, code, reason)


def test_annotation_selects_outcome_and_scripted_mode(make_sim: SimFactory) -> None:
    api = core(make_sim(run_processes=False))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "annotated", ["this-command-is-never-run"],
        metadata={"annotations": {"sim.kgahp.io/outcome": "exit5:50ms"}}))
    api.create_namespaced_pod(NAMESPACE, pod_manifest("plain", ["never-run"]))
    assert terminated(wait_pod(api, "annotated", phase_in("Failed"))).exit_code == 5
    assert terminated(wait_pod(api, "plain", phase_in("Succeeded"))).exit_code == 0


def test_pull_error_alternates_with_backoff(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("pull", "sim.invalid/pull-error"))
    pod = wait_pod(api, "pull", lambda p: waiting_reason(p) == "ErrImagePull")
    message = pod.status.container_statuses[0].state.waiting.message
    assert message.startswith('rpc error: code = NotFound desc = failed to pull and unpack image '
                              '"sim.invalid/pull-error:latest"') and message.endswith("not found")
    pod = wait_pod(api, "pull", lambda p: waiting_reason(p) == "ImagePullBackOff")
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.message == \
        'Back-off pulling image "sim.invalid/pull-error"'
    wait_pod(api, "pull", lambda p: waiting_reason(p) == "ErrImagePull")
    assert ("Failed", "Error: ErrImagePull") in events_for(api, "pull")


@pytest.mark.parametrize("image, reason", [
    ("sim.invalid/invalid-name", "InvalidImageName"),
    ("sim.invalid/config-error", "CreateContainerConfigError"),
])
def test_never_starting_outcomes(sim: SimCluster, image: str, reason: str) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("stuck", image))
    pod = wait_pod(api, "stuck", lambda p: waiting_reason(p) == reason)
    assert pod.status.phase == "Pending"
    time.sleep(0.3)
    assert waiting_reason(api.read_namespaced_pod("stuck", NAMESPACE)) == reason
    api.delete_namespaced_pod("stuck", NAMESPACE)
    wait_for(lambda: gone(api, "stuck"), bool)


def test_evict_happens_once_per_image(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("ev1", "sim.invalid/evict:200ms"))
    pod = wait_pod(api, "ev1", phase_in("Failed", "Succeeded"))
    assert (pod.status.phase, pod.status.reason) == ("Failed", "Evicted")
    assert pod.status.message == "The node was low on resource: memory."
    assert terminated(pod).exit_code == 137   # hard eviction: no grace period
    target = condition(pod, "DisruptionTarget")
    assert (target.status, target.reason) == ("True", "TerminationByKubelet")
    api.create_namespaced_pod(NAMESPACE, scripted("ev2", "sim.invalid/evict:200ms"))
    pod = wait_pod(api, "ev2", phase_in("Failed", "Succeeded"))
    assert pod.status.phase == "Succeeded" and pod.status.reason is None


def test_preempt_deletes_pod_with_disruption_condition(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("pre", "sim.invalid/preempt:200ms"))
    seen = []
    # Read until the server ends the stream, so no watch is left open when the sim stops.
    for event in watch.Watch().stream(api.list_namespaced_pod, NAMESPACE,
                                      field_selector="metadata.name=pre", timeout_seconds=2):
        seen.append((event["type"], event["object"]))
    assert seen[-1][0] == "DELETED"
    marked = [pod for _, pod in seen if condition(pod, "DisruptionTarget") is not None]
    assert marked and condition(marked[-1], "DisruptionTarget").reason == "PreemptionByScheduler"
    assert marked[-1].metadata.deletion_timestamp is not None
    assert terminated(marked[-1]).exit_code == 143


def test_node_lost_taint_manager_deletion(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("lost", "sim.invalid/node-lost:100ms",
                                                  terminationGracePeriodSeconds=1))
    pod = wait_pod(api, "lost", lambda p: p.metadata.deletion_timestamp is not None)
    target = condition(pod, "DisruptionTarget")
    assert (target.reason, condition(pod, "Ready").status) == ("DeletionByTaintManager", "False")
    node = api.read_node(pod.spec.node_name)
    ready = next(c for c in node.status.conditions if c.type == "Ready")
    assert ready.status == "Unknown"
    assert [t.key for t in node.spec.taints] == ["node.kubernetes.io/unreachable"]
    wait_for(lambda: gone(api, "lost"), bool, timeout=5)
    node = api.read_node(pod.spec.node_name)
    assert next(c for c in node.status.conditions if c.type == "Ready").status == "True"
    assert not node.spec.taints


def test_slow_delete_uses_full_grace(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("slow", "sim.invalid/slow-delete",
                                                  terminationGracePeriodSeconds=1))
    wait_pod(api, "slow", phase_in("Running"))
    began = time.monotonic()
    api.delete_namespaced_pod("slow", NAMESPACE)
    wait_for(lambda: gone(api, "slow"), bool)
    assert 0.9 < time.monotonic() - began < 3


def test_stuck_terminating_until_forced(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("stuck", "sim.invalid/stuck-terminating",
                                                  terminationGracePeriodSeconds=1))
    wait_pod(api, "stuck", phase_in("Running"))
    api.delete_namespaced_pod("stuck", NAMESPACE)
    time.sleep(1.5)
    pod = api.read_namespaced_pod("stuck", NAMESPACE)
    assert pod.metadata.deletion_timestamp is not None and pod.status.phase == "Running"
    api.delete_namespaced_pod("stuck", NAMESPACE, grace_period_seconds=0)
    wait_for(lambda: gone(api, "stuck"), bool, timeout=2)


def test_sleep_runs_until_deleted_with_sigterm(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("sleeper", "sim.invalid/sleep"))
    wait_pod(api, "sleeper", phase_in("Running"))
    time.sleep(0.3)
    assert api.read_namespaced_pod("sleeper", NAMESPACE).status.phase == "Running"
    api.delete_namespaced_pod("sleeper", NAMESPACE)
    wait_for(lambda: gone(api, "sleeper"), bool)
    assert ("Killing", "Stopping container main") in events_for(api, "sleeper")


def test_deadline_exceeded_for_scripted_container(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, scripted("deadline", "sim.invalid/sleep",
                                                  activeDeadlineSeconds=1))
    pod = wait_pod(api, "deadline", phase_in("Failed"), timeout=5)
    assert (pod.status.reason, terminated(pod).exit_code) == ("DeadlineExceeded", 143)
    assert ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline") \
        in events_for(api, "deadline")


def test_a_deleted_pods_worker_leaves_no_reference_cycle(sim: SimCluster) -> None:
    """The benchmarks' simulator process freezes what outlives a full garbage collection
    (benchmarks/simproc.py), so what a pod leaves behind must be freed by reference counting.
    A worker cancelled when its pod went stayed in a cycle (its task, the task's CancelledError,
    the traceback's frames, the worker): 44 objects a pod."""
    from kgahp_sim.kubelet import PodWorker

    api = core(sim)
    names = [f"cycle-{i}" for i in range(5)]
    for name in names:
        api.create_namespaced_pod(NAMESPACE, scripted(name, "sim.invalid/sleep"))
    for name in names:
        wait_pod(api, name, phase_in("Running"))
    for name in names:
        api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
    for name in names:
        wait_for(lambda name=name: gone(api, name), bool)
    time.sleep(0.3)    # the workers' cancellation runs on the simulator's loop
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        # only this test's: a stopped simulator of an earlier test may be garbage too
        left = [o for o in gc.garbage if isinstance(o, PodWorker) and o.name in names]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
