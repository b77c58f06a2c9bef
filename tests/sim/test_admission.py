"""The sim's admission (PodSecurity, Priority) beyond the recorded cases, and the kubelet's
runAsNonRoot check against images the sim is told run as root."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from test_nodes_support import events_for, wait_pod, waiting_reason

from kgahp_sim import SimCluster, SimConfig
from kgahp_sim.admission import LevelVersion, detail, evaluate, policy_of
from kgahp_sim.kubelet import non_root_refusal

RESTRICTED_CONTEXT = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def restricted_pod(name: str, image: str = "busybox:1.36", **pod_context: Any) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never",
                     "securityContext": {"runAsNonRoot": True,
                                         "seccompProfile": {"type": "RuntimeDefault"},
                                         **pod_context},
                     "containers": [{"name": "main", "image": image,
                                     "command": ["sh", "-c", "exit 0"],
                                     "securityContext": copy.deepcopy(RESTRICTED_CONTEXT)}]}}


# ----- PodSecurity rules (pure) ---------------------------------------------------------------
def test_labels_give_levels_and_versions_and_bad_values_fail_closed_for_enforce() -> None:
    policy, causes = policy_of({"pod-security.kubernetes.io/enforce": "baseline",
                                "pod-security.kubernetes.io/enforce-version": "v1.22",
                                "pod-security.kubernetes.io/warn": "strict"})
    assert policy["enforce"] == LevelVersion("baseline", 22)
    assert str(policy["enforce"]) == "baseline:v1.22"
    assert policy["warn"] == LevelVersion("privileged", None)   # a bad warn level fails open
    assert [c.field for c in causes] == ["metadata.labels[pod-security.kubernetes.io/warn]"]
    policy, _ = policy_of({"pod-security.kubernetes.io/enforce": "strict"})
    assert policy["enforce"].level == "restricted"


def test_a_compliant_pod_passes_restricted_and_each_widening_is_named() -> None:
    pod = restricted_pod("ok", runAsUser=1000)
    restricted = LevelVersion("restricted")
    assert evaluate(restricted, pod["metadata"], pod["spec"]) == []
    spec = pod["spec"]
    spec["securityContext"]["runAsUser"] = 0
    spec["hostNetwork"] = True
    spec["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}, {"name": "e", "emptyDir": {}}]
    spec["containers"][0]["securityContext"]["capabilities"]["add"] = ["NET_BIND_SERVICE",
                                                                       "SYS_ADMIN"]
    spec["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
    assert detail(evaluate(restricted, pod["metadata"], spec)) == (
        'unrestricted capabilities (container "main" must not include "SYS_ADMIN" in '
        "securityContext.capabilities.add), host namespaces (hostNetwork=true), hostPort "
        '(container "main" uses hostPort 8080), restricted volume types (volumes ["h"] have '
        "restricted types), runAsUser=0 (pod must not set runAsUser=0)")
    baseline = evaluate(LevelVersion("baseline"), pod["metadata"], spec)
    assert [reason for reason, _ in baseline] == [
        "non-default capabilities", "host namespaces", "hostPath volumes", "hostPort"]


def test_baseline_checks_for_proc_mount_selinux_sysctls_and_app_armor() -> None:
    pod = restricted_pod("odd", runAsUser=1000)
    pod["metadata"]["annotations"] = {
        "container.apparmor.security.beta.kubernetes.io/main": "unconfined"}
    spec = pod["spec"]
    spec["securityContext"]["sysctls"] = [{"name": "kernel.msgmax", "value": "1"},
                                          {"name": "net.ipv4.tcp_syncookies", "value": "1"}]
    spec["securityContext"]["seLinuxOptions"] = {"type": "spc_t", "user": "root"}
    spec["containers"][0]["securityContext"]["procMount"] = "Unmasked"
    assert detail(evaluate(LevelVersion("baseline"), pod["metadata"], spec)) == (
        'forbidden AppArmor profile (container.apparmor.security.beta.kubernetes.io/main='
        '"unconfined"), procMount (container "main" must not set securityContext.procMount to '
        '"Unmasked"), seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type '
        '"spc_t"; user may not be set), forbidden sysctls (kernel.msgmax)')
    spec["hostUsers"] = False     # a user-namespaced pod may unmask /proc
    reasons = [r for r, _ in evaluate(LevelVersion("baseline"), pod["metadata"], spec)]
    assert "procMount" not in reasons


def test_an_older_policy_version_leaves_out_later_checks() -> None:
    pod = restricted_pod("old", runAsUser=0)
    assert evaluate(LevelVersion("restricted", 22), pod["metadata"], pod["spec"]) == []
    assert evaluate(LevelVersion("restricted", 23), pod["metadata"], pod["spec"]) == [
        ("runAsUser=0", "pod must not set runAsUser=0")]


# ----- through the API --------------------------------------------------------------------------
def test_the_restricted_namespace_refuses_and_warns_as_configured(sim: SimCluster) -> None:
    sim.require_sim("the exact admission messages")
    core = client.CoreV1Api(sim.api_client())
    core.create_namespace({"metadata": {"name": "strict", "labels": {
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted"}}})
    plain = restricted_pod("plain")
    del plain["spec"]["securityContext"]
    plain["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod("strict", plain)
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == (
        'pods "plain" is forbidden: violates PodSecurity "baseline:latest": privileged '
        '(container "main" must not set securityContext.privileged=true)')
    del plain["spec"]["containers"][0]["securityContext"]
    _, status, headers = core.create_namespaced_pod_with_http_info("strict", plain)
    assert status == 201
    assert headers["Warning"].startswith('299 - "would violate PodSecurity \\"restricted:latest')


def test_priority_class_fills_the_pod_and_a_global_default_applies(sim: SimCluster) -> None:
    sim.require_sim("a global default class would change every later test's pods")
    api = sim.api_client()
    sched = client.SchedulingV1Api(api)
    core = client.CoreV1Api(api)
    sched.create_priority_class({"metadata": {"name": "batch-low"}, "value": 10,
                                 "globalDefault": True, "preemptionPolicy": "Never"})
    pod = core.create_namespaced_pod("default", restricted_pod("defaulted"))
    assert (pod.spec.priority_class_name, pod.spec.priority, pod.spec.preemption_policy) == (
        "batch-low", 10, "Never")
    names = {pc.metadata.name: pc.value for pc in sched.list_priority_class().items}
    assert names == {"batch-low": 10, "system-cluster-critical": 2000000000,
                     "system-node-critical": 2000001000}


# ----- the kubelet's runAsNonRoot check --------------------------------------------------------
def _pod(context: dict, container_context: dict | None = None, image: str = "busybox") -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
            "spec": {"securityContext": context}}, {
        "name": "job", "image": image, "securityContext": container_context or {}}


@pytest.mark.parametrize(("context", "container", "image", "expected"), [
    ({"runAsNonRoot": True}, None, "busybox", "container has runAsNonRoot and image will run "
     'as root (pod: "p_ns(u-1)", container: job)'),
    ({"runAsNonRoot": True}, None, "busybox:1.36", "will run as root"),
    ({"runAsNonRoot": True}, None, "python:3.12", None),
    ({"runAsNonRoot": True, "runAsUser": 65532}, None, "busybox", None),
    ({"runAsNonRoot": True}, {"runAsUser": 1000}, "busybox", None),
    ({"runAsNonRoot": True, "runAsUser": 0}, None, "busybox",
     "container's runAsUser breaks non-root policy"),
    ({}, None, "busybox", None),
    ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "busybox", None),
])
def test_non_root_refusal(context: dict, container: dict | None, image: str,
                          expected: str | None) -> None:
    pod, spec = _pod(context, container, image)
    found = non_root_refusal(pod, spec, ("busybox", "busybox:*"))
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found


@pytest.fixture
def root_sim(tmp_path: Path) -> Iterator[SimCluster]:
    config = SimConfig(workdir=str(tmp_path / "sim"), schedule_delay=0.01, start_delay=0.05,
                       root_images=("busybox:*",))
    with SimCluster(config) as cluster:
        yield cluster


def test_a_root_image_without_a_user_waits_in_create_container_config_error(
        root_sim: SimCluster) -> None:
    core = client.CoreV1Api(root_sim.api_client())
    core.create_namespaced_pod("default", restricted_pod("rooted"))
    pod = wait_pod(core, "rooted", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    message = pod.status.container_statuses[0].state.waiting.message
    assert message == ("container has runAsNonRoot and image will run as root (pod: "
                       f'"rooted_default({pod.metadata.uid})", container: main)')
    assert ("Failed", f"Error: {message}") in events_for(core, "rooted")
    core.create_namespaced_pod("default", restricted_pod("numbered", runAsUser=65532))
    done = wait_pod(core, "numbered", lambda p: p.status.phase == "Succeeded")
    assert done.status.container_statuses[0].state.terminated.exit_code == 0
