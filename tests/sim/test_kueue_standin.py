"""The sim's Kueue stand-in (kgahp_sim.kueue): webhook, quota admission, preemption.

Kueue's own behaviour is the reference (kubernetes-sigs/kueue pkg/controller/jobs/pod): the
webhook gates a queue-labelled pod with `kueue.x-k8s.io/admission`, admission removes the gate,
preemption marks the pod `TerminationTarget` and deletes it, and nothing recreates it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from harness import wait_until
from kubernetes import client
from kubernetes.client.rest import ApiException

from kgahp_sim.kueue import GATE, PREEMPT_REASON, parse_queue_flag


def _pod(name: str, queue: str = "lq", cpu: str = "1", command: str = "sleep 30") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": queue}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "command": ["sh", "-c", command],
                                     "resources": {"requests": {"cpu": cpu}}}]}}



@pytest.fixture
def kueue_sim(sim: Any) -> Any:
    sim.require_sim("the Kueue stand-in is part of the sim")
    sim.config.kueue_queues = {"lq": {"cpu": "1"}}
    return sim


def test_webhook_gates_and_quota_admits_one_at_a_time(kueue_sim):
    core = client.CoreV1Api(kueue_sim.api_client())
    first = core.create_namespaced_pod("default", _pod("first", command="sleep 1"))
    assert [g.name for g in first.spec.scheduling_gates] == [GATE]
    assert first.metadata.labels["kueue.x-k8s.io/managed"] == "true"
    assert first.status.conditions[0].reason == "SchedulingGated"
    core.create_namespaced_pod("default", _pod("second", command="sleep 1"))
    wait_until(lambda: core.read_namespaced_pod("first", "default").spec.node_name)
    second = core.read_namespaced_pod("second", "default")
    assert [g.name for g in second.spec.scheduling_gates] == [GATE]   # no quota left
    assert second.status.phase == "Pending"
    # the first ends: its quota goes to the second, which then runs
    wait_until(lambda: core.read_namespaced_pod("second", "default").spec.node_name)
    done = wait_until(lambda: core.read_namespaced_pod("first", "default").status.phase
                 in ("Succeeded",) and core.read_namespaced_pod("first", "default"))
    assert not done.metadata.finalizers          # released once the pod ended


def test_pods_of_unknown_queues_or_without_the_label_are_left_alone(kueue_sim):
    core = client.CoreV1Api(kueue_sim.api_client())
    plain = _pod("plain")
    del plain["metadata"]["labels"]
    assert core.create_namespaced_pod("default", plain).spec.scheduling_gates is None
    core.create_namespaced_pod("default", _pod("nowhere", queue="missing"))
    time.sleep(0.5)
    assert core.read_namespaced_pod("nowhere", "default").spec.scheduling_gates


def test_preemption_marks_terminates_and_deletes_without_recreating(kueue_sim):
    core = client.CoreV1Api(kueue_sim.api_client())
    victim = _pod("victim")
    # a finalizer of the test's keeps the deleted pod readable: the sim's kubelet may stop
    # and remove it before a loaded machine gets to the read below
    victim["metadata"]["finalizers"] = ["example.com/keep"]
    core.create_namespaced_pod("default", victim)
    wait_until(lambda: core.read_namespaced_pod("victim", "default").status.phase == "Running")
    kueue_sim.kueue_preempt("default", "victim")
    pod = core.read_namespaced_pod("victim", "default")
    assert pod.metadata.deletion_timestamp is not None
    marks = [c for c in pod.status.conditions if c.type == "TerminationTarget"]
    assert marks and marks[0].status == "True" and marks[0].reason == PREEMPT_REASON
    core.patch_namespaced_pod("victim", "default", [
        {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/keep"},
        {"op": "remove", "path": "/metadata/finalizers/0"}])

    def gone() -> bool:
        try:
            core.read_namespaced_pod("victim", "default")
        except ApiException as err:
            return err.status == 404
        return False

    wait_until(gone)
    time.sleep(0.3)
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == []


def test_queue_flag_parsing():
    assert parse_queue_flag("lq=cpu=2,memory=4Gi,pods=3") == (
        "lq", {"cpu": "2", "memory": "4Gi", "pods": "3"})
    with pytest.raises(ValueError):
        parse_queue_flag("lq=gpu=1")
    with pytest.raises(ValueError):
        parse_queue_flag("=cpu=1")


def test_kgahp_sim_flag_refuses_a_bad_quota(capsys):
    from kgahp_sim.cli import main

    assert main(["--kueue-queue", "lq=gpu=1"]) == 2
    assert "--kueue-queue" in capsys.readouterr().err
