"""Pods that run real local processes in the sim, observed through the official client."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Optional

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

from kgahp_sim import SimCluster

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "k8s-recordings-v1.36"


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


def test_graceful_deletion_matches_v136_recording_23d2(sim: SimCluster) -> None:
    """23d2 (v1.36): after a default DELETE of a Running pod, the MODIFIED with the deletion
    (still Running), the termination status (Failed, 143, deletion fields kept), the kubelet's
    grace-0 MODIFIED and the DELETED, in that order, all still carrying the terminated state."""
    recorded = _summaries(RECORDINGS / "23d2-watch-graceful-delete-every-event.json")
    after_delete = [e for e in recorded if e[1] is not None]
    assert [(t, g is not None and g > 0, p, x) for t, g, p, x, _ in after_delete] == [
        ("MODIFIED", True, "Running", None), ("MODIFIED", True, "Failed", 143),
        ("MODIFIED", False, "Failed", 143), ("DELETED", False, "Failed", 143)]
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("seq36", ["sleep", "30"]))
    running = wait_pod(api, "seq36", phase_in("Running"))
    api.delete_namespaced_pod("seq36", NAMESPACE)
    seen = _watch_summaries(api, "seq36", running.metadata.resource_version)
    assert [(t, g is not None and g > 0, p, x) for t, g, p, x, _ in seen] == [
        (t, g is not None and g > 0, p, x) for t, g, p, x, _ in after_delete]


def test_eviction_api_matches_v136_recordings_27(sim: SimCluster) -> None:
    """27a/27a2/27b: the eviction answers 201 Success, marks the pod DisruptionTarget=True
    (EvictionByEvictionAPI) in its own MODIFIED, then deletes it gracefully; the kubelet ends
    it (143) and the condition stays to the DELETED."""
    recorded = json.loads((RECORDINGS / "27a-evict-running-pod-201.json").read_text())
    api = core(sim)
    api.create_namespaced_pod(NAMESPACE, pod_manifest("evictme", ["sleep", "30"]))
    running = wait_pod(api, "evictme", phase_in("Running"))
    assert _evict(api, "evictme", "evictme") == (recorded["response"]["status"],
                                                 recorded["response"]["body"])
    seen = _watch_summaries(api, "evictme", running.metadata.resource_version)
    want = [(e["type"], e.get("deletionGracePeriodSeconds"), e["phase"],
             "DisruptionTarget" in [c[0] for c in e["conditions"]])
            for e in json.loads((RECORDINGS / "27b-watch-eviction.json").read_text())["events"]
            if e["type"] != "ADDED" and "DisruptionTarget" in [c[0] for c in e["conditions"]]]
    assert want[0] == ("MODIFIED", None, "Running", True)
    got = [(t, g, p, d) for t, g, p, _x, d in seen]
    assert [(t, g is not None and g > 0, p, d) for t, g, p, d in got] == [
        (t, g is not None and g > 0, p, d) for t, g, p, d in want]
    target = next(c for c in json.loads((RECORDINGS / "27a2-get-evicted-pod-disruptiontarget"
                                         ".json").read_text())["response"]["body"]["status"][
        "conditions"] if c["type"] == "DisruptionTarget")
    assert (target["reason"], target["message"]) == ("EvictionByEvictionAPI",
                                                     "Eviction API: evicting")


def test_eviction_api_errors_and_unscheduled_pod_match_v136_recordings(sim: SimCluster) -> None:
    api = core(sim)

    def evict(url_name: str, body_name: str) -> tuple[int, dict]:
        return _evict(api, url_name, body_name)

    missing = json.loads((RECORDINGS / "27c-evict-missing-pod-404.json").read_text())
    status, body = evict("nope", "nope")
    assert (status, body["reason"]) == (404, missing["response"]["body"]["reason"])
    assert body["message"] == 'pods "nope" not found'
    api.create_namespaced_pod(NAMESPACE, pod_manifest("pending", ["sleep", "30"],
                                                      nodeSelector={"no": "such-node"}))
    mismatch = json.loads((RECORDINGS / "27f-evict-name-mismatch-400.json").read_text())
    status, body = evict("pending", "other-name")
    assert (status, body["message"]) == (400, mismatch["response"]["body"]["message"])
    unscheduled = json.loads((RECORDINGS / "27g-evict-unscheduled-pod-201.json").read_text())
    status, body = evict("pending", "pending")
    assert (status, body) == (201, unscheduled["response"]["body"])
    assert gone(api, "pending")    # deleted at once (27g's subsequent GET is 404)


def _evict(api: client.CoreV1Api, url_name: str, body_name: str) -> tuple[int, dict]:
    """POST pods/<url_name>/eviction through the official client: (status, body)."""
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": body_name, "namespace": NAMESPACE}}
    try:
        answer = api.create_namespaced_pod_eviction(url_name, NAMESPACE, body,
                                                    _preload_content=False)
        return answer.status, json.loads(answer.data)
    except client.ApiException as error:
        return error.status, json.loads(error.body)


def _summaries(path: Path) -> list[tuple[str, Optional[int], str, Optional[int], bool]]:
    out = []
    for event in json.loads(path.read_text())["events"]:
        obj = event["line"]["object"]
        statuses = (obj.get("status") or {}).get("containerStatuses") or [{}]
        ended = (statuses[0].get("state") or {}).get("terminated") or {}
        out.append((event["type"], obj["metadata"].get("deletionGracePeriodSeconds"),
                    obj["status"].get("phase"), ended.get("exitCode"),
                    any(c["type"] == "DisruptionTarget"
                        for c in obj["status"].get("conditions") or [])))
    return out


def _watch_summaries(api: client.CoreV1Api, name: str, rv: str
                     ) -> list[tuple[str, Optional[int], str, Optional[int], bool]]:
    seen = []
    for event in watch.Watch().stream(api.list_namespaced_pod, NAMESPACE,
                                      field_selector=f"metadata.name={name}", timeout_seconds=4,
                                      resource_version=rv):
        pod = event["object"]
        seen.append((event["type"], pod.metadata.deletion_grace_period_seconds,
                     pod.status.phase, terminated(pod).exit_code if terminated(pod) else None,
                     any(c.type == "DisruptionTarget" for c in pod.status.conditions or [])))
        if event["type"] == "DELETED":
            break
    return seen


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
