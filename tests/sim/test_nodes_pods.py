"""Pods that run real local processes in the sim, observed through the official client."""

from __future__ import annotations

import base64
import time

from kubernetes import client, watch
from test_nodes_support import (
    NAMESPACE,
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

from kgahp.sim import SimCluster


def test_process_logs_env_and_exit_code(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "hello", ["sh", "-c", "echo hello $POD_NAME/$POD_NS $FOO; echo oops >&2; exit 3"],
        container={"env": [
            {"name": "FOO", "value": "bar"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]}))
    pod = wait_pod(api, "hello", phase_in("Failed", "Succeeded"))
    state = terminated(pod)
    assert (pod.status.phase, state.exit_code, state.reason) == ("Failed", 3, "Error")
    assert state.started_at and state.finished_at and state.container_id.startswith("containerd://")
    assert pod.status.host_ip == "127.0.0.1" and pod.status.pod_ip and pod.status.start_time
    assert condition(pod, "Ready").reason == "PodFailed"
    assert condition(pod, "PodScheduled").status == "True"
    assert api.read_namespaced_pod_log("hello", NAMESPACE) == "hello hello/default bar\noops\n"
    reasons = [reason for reason, _ in events_for(api, "hello")]
    assert "Scheduled" in reasons and "Started" in reasons


def test_a_container_never_sees_the_hosts_cgroup(sim: SimCluster) -> None:
    """/sys/fs/cgroup is the container's own cgroup on a real node; a local process has none,
    so it sees an empty directory there, never the accounting of everything on the host."""
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "cg", ["sh", "-c", "ls -A /sys/fs/cgroup; test -d /sys/fs/cgroup && echo dir"]))
    wait_pod(api, "cg", phase_in("Failed", "Succeeded"))
    assert api.read_namespaced_pod_log("cg", NAMESPACE) == "dir\n"


def test_success_is_completed(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("ok", ["true"]))
    pod = wait_pod(api, "ok", phase_in("Failed", "Succeeded"))
    assert pod.status.phase == "Succeeded"
    assert (terminated(pod).exit_code, terminated(pod).reason) == (0, "Completed")
    assert condition(pod, "ContainersReady").reason == "PodCompleted"


def test_death_by_signal(sim: SimCluster) -> None:
    api = core(sim)
    # Kubernetes reduces '$$' to '$' in command/args, so the shell's $$ is written '$$$$'.
    api.create_namespaced_pod(NAMESPACE, pod_manifest("sig", ["sh", "-c", "kill -9 $$$$"]))
    pod = wait_pod(api, "sig", phase_in("Failed", "Succeeded"))
    assert (terminated(pod).exit_code, terminated(pod).reason) == (137, "Error")


def test_running_state_is_reported(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("run", ["sleep", "30"]))
    pod = wait_pod(api, "run", phase_in("Running"))
    status = pod.status.container_statuses[0]
    assert status.state.running.started_at and status.ready and status.started
    assert condition(pod, "Ready").status == "True"


def test_empty_dir_shared_between_init_and_main(sim: SimCluster) -> None:
    api = core(sim)
    mount = [{"name": "work", "mountPath": "/work"}]
    manifest = pod_manifest(
        "shared", ["sh", "-c", "cat /work/greeting; pwd"],
        container={"volumeMounts": mount, "workingDir": "/work"},
        initContainers=[{"name": "prepare", "image": "busybox:1.36", "volumeMounts": mount,
                         "command": ["sh", "-c", "echo from-init > /work/greeting"]}],
        volumes=[{"name": "work", "emptyDir": {}}])
    api.create_namespaced_pod(NAMESPACE, manifest)
    pod = wait_pod(api, "shared", phase_in("Failed", "Succeeded"))
    assert pod.status.phase == "Succeeded"
    assert pod.status.init_container_statuses[0].state.terminated.reason == "Completed"
    first, cwd = api.read_namespaced_pod_log("shared", NAMESPACE, container="main").splitlines()
    assert first == "from-init" and cwd.endswith("/volumes/work")


def test_init_container_phase_while_initialising(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "initwait", ["true"],
        initContainers=[{"name": "slow", "image": "busybox:1.36", "command": ["sleep", "30"]}]))
    pod = wait_pod(api, "initwait", lambda p: p.status.init_container_statuses is not None and
                   p.status.init_container_statuses[0].state.running is not None)
    assert pod.status.phase == "Pending"
    assert waiting_reason(pod) == "PodInitializing"
    assert condition(pod, "Initialized").reason == "ContainersNotInitialized"


def test_secret_volume_modes_and_live_refresh(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_secret(NAMESPACE, client.V1Secret(
        metadata=client.V1ObjectMeta(name="creds"), string_data={"token": "old"}))
    script = ("stat -c %a /etc/creds/token; cat /etc/creds/token; echo; "
              "while [ \"$(cat /etc/creds/token)\" != new ]; do sleep 0.05; done; echo refreshed")
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "reader", ["sh", "-c", script],
        container={"volumeMounts": [{"name": "c", "mountPath": "/etc/creds", "readOnly": True}]},
        volumes=[{"name": "c", "secret": {"secretName": "creds", "defaultMode": 0o400}}]))
    wait_pod(api, "reader", phase_in("Running"))
    wait_for(lambda: api.read_namespaced_pod_log("reader", NAMESPACE), lambda t: "old" in t)
    api.patch_namespaced_secret("creds", NAMESPACE,
                                {"data": {"token": base64.b64encode(b"new").decode()}})
    pod = wait_pod(api, "reader", phase_in("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded"
    assert api.read_namespaced_pod_log("reader", NAMESPACE).splitlines() == \
        ["400", "old", "refreshed"]


def test_missing_secret_volume_keeps_pod_creating(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "nomount", ["cat", "/s/k"],
        container={"volumeMounts": [{"name": "s", "mountPath": "/s"}]},
        volumes=[{"name": "s", "secret": {"secretName": "later"}}]))
    wait_for(lambda: events_for(api, "nomount"),
             lambda evs: ("FailedMount", 'MountVolume.SetUp failed for volume "s" : '
                                         'secret "later" not found') in evs)
    pod = api.read_namespaced_pod("nomount", NAMESPACE)
    assert pod.status.phase == "Pending" and waiting_reason(pod) == "ContainerCreating"
    api.create_namespaced_secret(NAMESPACE, client.V1Secret(
        metadata=client.V1ObjectMeta(name="later"), string_data={"k": "v"}))
    pod = wait_pod(api, "nomount", phase_in("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded"
    assert api.read_namespaced_pod_log("nomount", NAMESPACE) == "v"


def test_missing_env_secret_is_config_error(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "noenv", ["sh", "-c", "echo $T"],
        container={"env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "tok",
                                                                        "key": "t"}}}]}))
    pod = wait_pod(api, "noenv", lambda p: waiting_reason(p) == "CreateContainerConfigError")
    assert pod.status.container_statuses[0].state.waiting.message == 'secret "tok" not found'
    assert pod.status.phase == "Pending"
    api.create_namespaced_secret(NAMESPACE, client.V1Secret(
        metadata=client.V1ObjectMeta(name="tok"), string_data={"t": "value"}))
    wait_pod(api, "noenv", phase_in("Succeeded"))
    assert api.read_namespaced_pod_log("noenv", NAMESPACE) == "value\n"


def test_restart_policy_on_failure(sim: SimCluster) -> None:
    api = core(sim)
    script = "if [ -f /w/once ]; then echo second; exit 0; fi; touch /w/once; exit 1"
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "retry", ["sh", "-c", script], restartPolicy="OnFailure",
        container={"volumeMounts": [{"name": "w", "mountPath": "/w"}]},
        volumes=[{"name": "w", "emptyDir": {}}]))
    pod = wait_pod(api, "retry", phase_in("Succeeded", "Failed"))
    status = pod.status.container_statuses[0]
    assert pod.status.phase == "Succeeded" and status.restart_count == 1
    assert status.last_state.terminated.exit_code == 1
    assert status.state.terminated.exit_code == 0
    assert api.read_namespaced_pod_log("retry", NAMESPACE) == "second\n"


def test_graceful_deletion_sigterm_then_sigkill(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("polite", ["sleep", "30"]))
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "stubborn", ["sh", "-c", "trap '' TERM; sleep 30 & wait; sleep 30"],
        terminationGracePeriodSeconds=1))
    for name in ("polite", "stubborn"):
        wait_pod(api, name, phase_in("Running"))
    time.sleep(0.2)   # let the shell install its trap
    timings = {}
    for name in ("polite", "stubborn"):
        began = time.monotonic()
        deleted = api.delete_namespaced_pod(name, NAMESPACE)
        assert deleted.metadata.deletion_timestamp is not None
        wait_for(lambda n=name: gone(api, n), bool)
        timings[name] = time.monotonic() - began
    assert timings["polite"] < 0.9
    assert 0.9 < timings["stubborn"] < 3


def test_active_deadline_exceeded(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("late", ["sleep", "30"],
                                                      activeDeadlineSeconds=1))
    pod = wait_pod(api, "late", phase_in("Failed"), timeout=5)
    assert pod.status.reason == "DeadlineExceeded"
    assert pod.status.message == "Pod was active on the node longer than the specified deadline"
    assert terminated(pod).exit_code == 143


def test_graceful_deletion_watch_sequence(sim: SimCluster) -> None:
    """Recording 09: DELETE marks the pod, the kubelet reports 143 then deletes with grace 0."""
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("seq", ["sleep", "30"]))
    running = wait_pod(api, "seq", phase_in("Running"))
    api.delete_namespaced_pod("seq", NAMESPACE)
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_pod, NAMESPACE,
                                      field_selector="metadata.name=seq", timeout_seconds=2,
                                      resource_version=running.metadata.resource_version):
        pod = event["object"]
        seen.append((event["type"], pod.metadata.deletion_grace_period_seconds, pod.status.phase,
                     terminated(pod).exit_code if terminated(pod) else None))
    assert seen == [("MODIFIED", 2, "Running", None), ("MODIFIED", 2, "Failed", 143),
                    ("MODIFIED", 0, "Failed", 143), ("DELETED", 0, "Failed", 143)]


def test_restart_policy_always_crash_loops(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("loop", ["sh", "-c", "exit 2"],
                                                      restartPolicy="Always"))
    pod = wait_pod(api, "loop", lambda p: waiting_reason(p) == "CrashLoopBackOff" and
                   p.status.container_statuses[0].restart_count >= 2)
    status = pod.status.container_statuses[0]
    assert pod.status.phase == "Running"
    assert status.last_state.terminated.exit_code == 2
    assert status.state.waiting.message.startswith("back-off ")
    assert "restarting failed container=main pod=loop_default(" in status.state.waiting.message


def test_failed_init_container_fails_the_pod(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest(
        "badinit", ["true"],
        initContainers=[{"name": "setup", "image": "busybox:1.36", "command": ["false"]}]))
    pod = wait_pod(api, "badinit", phase_in("Failed", "Succeeded"))
    assert pod.status.phase == "Failed"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 1
    assert waiting_reason(pod) == "PodInitializing"


def test_missing_program_is_start_error(sim: SimCluster) -> None:
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("nocmd", ["/no/such/program"]))
    pod = wait_pod(api, "nocmd", phase_in("Failed", "Succeeded"))
    state = terminated(pod)
    assert (pod.status.phase, state.exit_code, state.reason) == ("Failed", 128, "StartError")
    assert 'exec: "/no/such/program"' in state.message
