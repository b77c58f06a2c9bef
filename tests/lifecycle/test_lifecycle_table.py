"""Every row of the lifecycle table (docs/job-states.md), as a case run through
kgahp.lifecycle.classify.

Pods start from statuses recorded from a real kube-apiserver v1.28
(tests/data/k8s-recordings-v1.28) and
are bent into each situation by the small builders below.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kubernetes.client import ApiClient

from kgahp.config import LifecycleSettings
from kgahp.lifecycle import (
    CANCELLED_REASON,
    RULES,
    VANISHED_RULES,
    Action,
    Verdict,
    classify,
    parse_time,
    restarts_of,
    vanished,
)
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING

RECORDINGS = Path(__file__).resolve().parents[1] / "data" / "k8s-recordings-v1.28"
DEFAULTS = LifecycleSettings()

Pod = dict[str, Any]


# --------------------------------------------------------------------------------- builders


@cache
def _recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text())
    return data


def recorded(name: str) -> Pod:
    """The pod body of a GET/DELETE/PATCH recording."""
    pod: Pod = copy.deepcopy(_recording(name)["response"]["body"])
    return pod


def watched(index: int) -> Pod:
    """The pod object of event `index` of the main watch recording (07)."""
    events = [e for e in _recording("07-watch-pod-lifecycle")["events"] if e.get("line")]
    pod: Pod = copy.deepcopy(events[index]["line"]["object"])
    return pod


def as_kgahp_pod(pod: Pod, namespace: str = "osg", name: str = "kg-ce1-1234-0") -> Pod:
    """Rename the recorded pod and its main container the way kgahp names them."""
    pod["metadata"]["namespace"] = namespace
    pod["metadata"]["name"] = name
    for c in pod["spec"]["containers"] + pod["status"].get("containerStatuses", []):
        if c["name"] == "main":
            c["name"] = "job"
    return pod


def running() -> Pod:
    """Phase Running, main container running (07, 4th event)."""
    return as_kgahp_pod(watched(3))


def creating() -> Pod:
    """Scheduled, ContainerCreating (07, 3rd event)."""
    return as_kgahp_pod(watched(2))


def succeeded() -> Pod:
    return as_kgahp_pod(recorded("01b-get-pod-after-completion"))


def failed_exit_3() -> Pod:
    return as_kgahp_pod(recorded("17d-pod-status-patch-terminated-200"))


def unschedulable() -> Pod:
    return as_kgahp_pod(recorded("14a-unschedulable-pod-get"))


def being_deleted() -> Pod:
    """A running pod after DELETE with the default 30 s grace (09a)."""
    return as_kgahp_pod(recorded("09a-delete-pod-default-grace-200"))


def main_status(pod: Pod) -> dict[str, Any]:
    status: dict[str, Any] = next(
        c for c in pod["status"]["containerStatuses"] if c["name"] == "job")
    return status


def with_waiting(pod: Pod, reason: str, message: str = "", init: str = "") -> Pod:
    """Main container (or init container `init`) waiting with a kubelet reason."""
    waiting = {"reason": reason, **({"message": message} if message else {})}
    if init:
        pod["spec"]["initContainers"] = [{"name": init, "image": "busybox:1.36"}]
        pod["status"]["initContainerStatuses"] = [{
            "name": init, "state": {"waiting": waiting}, "lastState": {}, "ready": False,
            "restartCount": 0, "image": "busybox:1.36", "imageID": "", "started": False}]
        main_status(pod)["state"] = {"waiting": {"reason": "PodInitializing"}}
    else:
        main_status(pod)["state"] = {"waiting": waiting}
    return pod


def with_image(pod: Pod, image: str) -> Pod:
    pod["spec"]["containers"][0]["image"] = image
    main_status(pod)["image"] = image
    return pod


def with_exit(pod: Pod, code: int, reason: str, phase: str = "Failed",
              finished: str = "2026-11-21T14:26:47Z") -> Pod:
    pod["status"]["phase"] = phase
    main_status(pod)["state"] = {"terminated": {
        "exitCode": code, "reason": reason, "startedAt": "2026-11-21T14:26:45Z",
        "finishedAt": finished}}
    return pod


def deleted_at(pod: Pod, requested: str, grace: int) -> Pod:
    """A DELETE sent at `requested` with `grace` seconds, as the API server marks it (23d2)."""
    at = parse_time(requested) or 0.0
    pod["metadata"]["deletionTimestamp"] = datetime.fromtimestamp(
        at + grace, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    pod["metadata"]["deletionGracePeriodSeconds"] = grace
    return pod


def deleted_by_taint_manager() -> Pod:
    """A pod on a lost node, deleted by the taint manager (it marks DisruptionTarget first)."""
    return with_condition(being_deleted(), "DisruptionTarget", "True", "DeletionByTaintManager",
                          "Taint manager: deleting due to NoExecute taint")


def with_init_exit(pod: Pod, code: int, message: str = "") -> Pod:
    pod["status"]["phase"] = "Failed"
    pod["spec"]["initContainers"] = [{"name": "stage-in", "image": "busybox:1.36"}]
    pod["status"]["initContainerStatuses"] = [{
        "name": "stage-in", "state": {"terminated": {
            "exitCode": code, "reason": "Error", "message": message}}}]
    main_status(pod)["state"] = {"waiting": {"reason": "PodInitializing"}}
    return pod


def with_condition(pod: Pod, kind: str, status: str, reason: str = "", message: str = "",
                   at: str = "2026-11-21T14:26:46Z") -> Pod:
    conditions = [c for c in pod["status"].get("conditions", []) if c["type"] != kind]
    condition = {"type": kind, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": at}
    condition.update({k: v for k, v in (("reason", reason), ("message", message)) if v})
    pod["status"]["conditions"] = [*conditions, condition]
    return pod


def with_pod_reason(pod: Pod, phase: str, reason: str, message: str) -> Pod:
    pod["status"].update(phase=phase, reason=reason, message=message)
    return pod


def with_limits(pod: Pod, **limits: str) -> Pod:
    pod["spec"]["containers"][0]["resources"]["limits"].update(limits)
    return pod


def with_deadline(pod: Pod, seconds: int) -> Pod:
    pod["spec"]["activeDeadlineSeconds"] = seconds
    return pod


def with_phase(pod: Pod, phase: str) -> Pod:
    pod["status"]["phase"] = phase
    return pod


# Times, all relative to the recorded pods (07 was scheduled and started at T0).
T0 = parse_time("2026-11-21T14:26:45Z") or 0.0
UNSCHED_AT = parse_time("2026-11-21T14:33:50Z") or 0.0      # 14a's PodScheduled=False
DELETION_AT = parse_time("2026-11-21T14:33:06Z") or 0.0     # 09a's deletionTimestamp
NOT_READY_AT = parse_time("2026-11-21T14:26:46Z") or 0.0    # with_condition's default time

PULL_NOT_FOUND = ('rpc error: code = NotFound desc = failed to pull and unpack image '
                  '"docker.io/repo/pilot:v9": failed to resolve reference '
                  '"docker.io/repo/pilot:v9": docker.io/repo/pilot:v9: not found')
PULL_MESSAGES = {
    "ErrImagePull": PULL_NOT_FOUND,
    "ImagePullBackOff": 'Back-off pulling image "repo/pilot:v9"',
    "InvalidImageName": 'Failed to apply default image tag "Repo/Pilot:v9": couldn\'t parse '
                        'image reference "Repo/Pilot:v9": invalid reference format: '
                        'repository name must be lowercase',
    "ErrImageNeverPull": 'Container image "repo/pilot:v9" is not present with pull policy '
                         'of Never',
}
SECRET_MISSING = 'secret "kg-ce1-1234-0-proxy" not found'
RUNC_FAILED = ('failed to create containerd task: failed to create shim task: OCI runtime create '
               'failed: runc create failed: unable to start container process: exec: '
               '"/kgahp/sandbox/run.sh": permission denied: unknown')
MOUNT_SECRET_MISSING = ('MountVolume.SetUp failed for volume "x509-proxy" : '
                        'secret "kg-ce1-1234-0-proxy" not found')
MOUNT_NFS_DENIED = ('MountVolume.SetUp failed for volume "shared" : mount failed: exit status 32 '
                    'Output: mount.nfs: access denied by server while mounting nfs:/export')
SCHEDULER_MESSAGE = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are "
                     "available: 1 No preemption victims found for incoming pod.")


def gated(gate: str = "kueue.x-k8s.io/admission", queue: str = "lq-a") -> Pod:
    """A pod Kueue's webhook gated, as the v1.36 apiserver returns it (24a2)."""
    path = RECORDINGS.parent / "k8s-recordings-v1.36" / "24a2-get-gated-pod.json"
    pod = as_kgahp_pod(copy.deepcopy(json.loads(path.read_text())["response"]["body"]))
    pod["spec"]["schedulingGates"] = [{"name": gate}]
    pod["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": queue,
                                 "kueue.x-k8s.io/managed": "true"}
    return pod


GATED_AT = parse_time("2026-12-01T22:40:50Z") or 0.0      # 24a2's SchedulingGated condition
KUEUE_PREEMPTED = ("Preempted to accommodate a workload (UID: 5c1e) due to prioritization in "
                   "the ClusterQueue")


def kueue_labelled(pod: Pod) -> Pod:
    pod["metadata"].setdefault("labels", {}).update(
        {"kueue.x-k8s.io/queue-name": "lq-a", "kueue.x-k8s.io/managed": "true"})
    return pod


def kueue_preempted(pod: Pod) -> Pod:
    """What Kueue's pod controller does on preemption: TerminationTarget=True, then DELETE."""
    return with_condition(deleted_at(kueue_labelled(pod), "2026-11-21T14:26:50Z", 30),
                          "TerminationTarget", "True", "WorkloadEvictedDueToPreempted",
                          KUEUE_PREEMPTED)


def pull_failing(reason: str) -> Callable[[], Pod]:
    return lambda: with_waiting(creating(), reason, PULL_MESSAGES[reason])


def disrupted(reason: str) -> Callable[[], Pod]:
    return lambda: with_condition(running(), "DisruptionTarget", "True", reason,
                                  f"{reason}: the pod is being stopped")


# --------------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    pod: Callable[[], Pod]
    rule: str
    status: int
    action: Action = Action.NONE
    now: float = T0 + 10
    lifecycle: LifecycleSettings = DEFAULTS
    restarts: int = 0
    deleted_by_kgahp: bool = False
    mount_error: str = ""
    final: Optional[dict[str, Any]] = None        # expected fields of Verdict.final
    expect: dict[str, Any] = field(default_factory=dict)  # expected fields of Verdict.state
    hold_mentions: tuple[str, ...] = ()           # substrings of HoldReason
    ever_started: bool = False
    remove_mentions: tuple[str, ...] = ()         # substrings of RemoveReason


def _held(code: int, subcode: int = 0) -> dict[str, Any]:
    return {"hold_code": code, "hold_subcode": subcode}


CASES: tuple[Case, ...] = (
    # Unschedulable → Idle, keep the scheduler's message; hold 26 past the pending limit
    Case("unschedulable", unschedulable, "unschedulable", IDLE, now=UNSCHED_AT + 3600),
    Case("unschedulable-limit-off-by-default", unschedulable, "unschedulable", IDLE,
         now=UNSCHED_AT + 10 * 86400),
    Case("unschedulable-just-before-limit", unschedulable, "unschedulable", IDLE,
         now=UNSCHED_AT + 599, lifecycle=LifecycleSettings(pending_limit=600)),
    Case("unschedulable-past-limit", unschedulable, "unschedulable-hold", HELD,
         now=UNSCHED_AT + 601, lifecycle=LifecycleSettings(pending_limit=600),
         expect=_held(26), hold_mentions=("osg/kg-ce1-1234-0", "Insufficient cpu", "Unschedulable",
                                          "601 s")),
    # Kueue: a gated pod waits for quota (Idle, never held); preemption is a disruption
    Case("kueue-gated", gated, "scheduling-gated", IDLE, now=GATED_AT + 5),
    Case("kueue-gated-for-days-never-held", gated, "scheduling-gated", IDLE,
         now=GATED_AT + 10 * 86400, lifecycle=LifecycleSettings(pending_limit=600)),
    Case("other-scheduling-gate", lambda: gated("example.org/provisioning"),
         "scheduling-gated", IDLE, now=GATED_AT + 5),
    Case("kueue-admitted-unschedulable-never-held", lambda: kueue_labelled(unschedulable()),
         "kueue-unschedulable", IDLE, now=UNSCHED_AT + 601,
         lifecycle=LifecycleSettings(pending_limit=600)),
    Case("kueue-preempted-running", lambda: kueue_preempted(running()), "kueue-stopped", IDLE,
         Action.RECREATE, now=T0 + 6, expect={"num_restarts": 1}),
    Case("kueue-preempted-exit-143", lambda: with_exit(kueue_preempted(running()), 143, "Error",
                                                       finished="2026-11-21T14:26:52Z"),
         "kueue-stopped", IDLE, Action.RECREATE, now=T0 + 8, restarts=1,
         expect={"num_restarts": 2}),
    Case("kueue-preempted-over-limit", lambda: kueue_preempted(running()), "kueue-stopped",
         HELD, now=T0 + 6, restarts=3, expect=_held(26),
         hold_mentions=("WorkloadEvictedDueToPreempted", "osg/kg-ce1-1234-0")),
    # ContainerCreating, PodInitializing, image being pulled → Idle
    Case("container-creating", creating, "starting", IDLE),
    Case("pod-initializing", lambda: with_waiting(creating(), "PodInitializing"), "starting",
         IDLE),
    Case("init-container-running",
         lambda: with_waiting(creating(), "ContainerCreating", init="stage-in"), "starting", IDLE),
    Case("just-bound", lambda: as_kgahp_pod(watched(1)), "starting", IDLE),
    Case("just-created-no-status", lambda: as_kgahp_pod(watched(0)), "starting", IDLE),
    # Image pull errors: Idle within the grace, hold 35 after; throttling never holds
    *(Case(f"{reason}-within-grace", pull_failing(reason), "image-pull-waiting", IDLE,
           now=T0 + 119) for reason in PULL_MESSAGES),
    *(Case(f"{reason}-past-grace", pull_failing(reason), "image-pull-hold", HELD, now=T0 + 121,
           expect=_held(35),
           hold_mentions=(reason, PULL_MESSAGES[reason], "busybox:1.36", "osg/kg-ce1-1234-0",
                          "check the image name or the pull secret"))
      for reason in PULL_MESSAGES),
    Case("pull-throttled-never-held",
         lambda: with_waiting(creating(), "ErrImagePull", "pull QPS exceeded."),
         "image-pull-waiting", IDLE, now=T0 + 86400),
    Case("pull-grace-knob", lambda: with_waiting(creating(), "ImagePullBackOff",
                                                 PULL_MESSAGES["ImagePullBackOff"]),
         "image-pull-hold", HELD, now=T0 + 31, lifecycle=LifecycleSettings(image_pull_grace=30),
         expect=_held(35)),
    Case("init-image-pull-past-grace",
         lambda: with_waiting(creating(), "ErrImagePull", PULL_NOT_FOUND, init="stage-in"),
         "image-pull-hold", HELD, now=T0 + 500, expect=_held(35),
         hold_mentions=('Image "busybox:1.36"',)),
    Case("image-named-in-hold",
         lambda: with_image(with_waiting(creating(), "ErrImagePull", PULL_NOT_FOUND),
                            "repo/pilot:v9"),
         "image-pull-hold", HELD, now=T0 + 500, expect=_held(35),
         hold_mentions=('Image "repo/pilot:v9" could not be pulled (ErrImagePull: rpc error',
                        "for pod osg/kg-ce1-1234-0")),
    # Container config errors: Idle within the grace, hold 6 (13 for a missing job input) after
    Case("config-error-within-grace",
         lambda: with_waiting(creating(), "CreateContainerConfigError", SECRET_MISSING),
         "config-error-waiting", IDLE, now=T0 + 120),
    Case("config-error-missing-secret",
         lambda: with_waiting(creating(), "CreateContainerConfigError", SECRET_MISSING),
         "config-error-hold", HELD, now=T0 + 121, expect=_held(13),
         hold_mentions=(SECRET_MISSING, "osg/kg-ce1-1234-0", "x509userproxy")),
    Case("config-error-missing-configmap",
         lambda: with_waiting(creating(), "CreateContainerConfigError",
                              'configmap "kg-ce1-1234-0-in" not found'),
         "config-error-hold", HELD, now=T0 + 121, expect=_held(13)),
    Case("create-container-error",
         lambda: with_waiting(creating(), "CreateContainerError",
                              "Error: failed to create containerd container: get apparmor_parser "
                              "version: exec: \"apparmor_parser\": executable file not found"),
         "config-error-hold", HELD, now=T0 + 121, expect=_held(6),
         hold_mentions=("CreateContainerError", "Container job of pod osg/kg-ce1-1234-0")),
    Case("run-container-error", lambda: with_waiting(creating(), "RunContainerError", RUNC_FAILED),
         "config-error-hold", HELD, now=T0 + 121, expect=_held(6),
         hold_mentions=("RunContainerError", "permission denied")),
    Case("init-config-error",
         lambda: with_waiting(creating(), "CreateContainerConfigError", SECRET_MISSING,
                              init="stage-in"),
         "config-error-hold", HELD, now=T0 + 121, expect=_held(13),
         hold_mentions=("Init container stage-in",)),
    Case("config-grace-knob",
         lambda: with_waiting(creating(), "RunContainerError", RUNC_FAILED), "config-error-hold",
         HELD, now=T0 + 11, lifecycle=LifecycleSettings(config_error_grace=10), expect=_held(6)),
    # Mount failures (FailedMount events, passed in by the caller) past the grace
    Case("mount-failure-within-grace", creating, "mount-failure-waiting", IDLE, now=T0 + 120,
         mount_error=MOUNT_SECRET_MISSING),
    Case("mount-failure-missing-secret", creating, "mount-failure-hold", HELD, now=T0 + 121,
         mount_error=MOUNT_SECRET_MISSING, expect=_held(13),
         hold_mentions=("FailedMount", MOUNT_SECRET_MISSING, "osg/kg-ce1-1234-0")),
    Case("mount-failure-template-configmap", creating, "mount-failure-hold", HELD,
         now=T0 + 121, mount_error='MountVolume.SetUp failed for volume "site" : configmap '
                                   '"site-settings" not found',
         expect=_held(6), hold_mentions=("site-settings",)),
    Case("mount-failure-nfs", creating, "mount-failure-hold", HELD, now=T0 + 121,
         mount_error=MOUNT_NFS_DENIED, expect=_held(6), hold_mentions=("access denied",)),
    Case("mount-error-ignored-once-running", running, "running", RUNNING, now=T0 + 1000,
         mount_error=MOUNT_NFS_DENIED),
    # Running
    Case("running", running, "running", RUNNING,
         expect={"worker_node": "sim-node-1", "cpus_provisioned": 0.25, "memory_provisioned": 32,
                 "disk_provisioned": None, "num_restarts": 0}),
    Case("running-being-deleted-within-grace", being_deleted, "deleted-elsewhere", REMOVED,
         now=DELETION_AT + 10),
    # Succeeded → 4, ExitCode 0 (after outputs are collected)
    Case("succeeded", succeeded, "succeeded", RUNNING, Action.COLLECT,
         final={"job_status": COMPLETED, "exit_code": 0, "exit_by_signal": False,
                "exit_signal": None, "worker_node": "sim-node-1"}),
    # Failed with exit N → 4, ExitCode N
    Case("failed-exit-3", failed_exit_3, "exited", RUNNING, Action.COLLECT,
         final={"job_status": COMPLETED, "exit_code": 3, "exit_by_signal": False,
                "worker_node": "rec-node-x"}),
    Case("failed-exit-3-watched", lambda: as_kgahp_pod(watched(4)), "exited", RUNNING,
         Action.COLLECT, final={"job_status": COMPLETED, "exit_code": 3}),
    Case("exit-128-is-a-code", lambda: with_exit(running(), 128, "Error"), "exited", RUNNING,
         Action.COLLECT, final={"exit_code": 128, "exit_by_signal": False}),
    Case("exit-193-is-a-code", lambda: with_exit(running(), 193, "Error"), "exited", RUNNING,
         Action.COLLECT, final={"exit_code": 193, "exit_by_signal": False}),
    Case("main-done-sidecar-running", lambda: with_exit(running(), 0, "Completed", "Running"),
         "exited", RUNNING, Action.COLLECT, final={"exit_code": 0, "exit_by_signal": False}),
    # Killed by a signal → 4, ExitBySignal
    Case("sigterm", lambda: with_exit(running(), 143, "Error"), "killed-by-signal", RUNNING,
         Action.COLLECT, final={"job_status": COMPLETED, "exit_by_signal": True,
                                "exit_signal": 15, "exit_code": None}),
    Case("sigkill-not-oom", lambda: with_exit(running(), 137, "Error"), "killed-by-signal",
         RUNNING, Action.COLLECT, final={"exit_by_signal": True, "exit_signal": 9}),
    Case("signal-64", lambda: with_exit(running(), 192, "Error"), "killed-by-signal", RUNNING,
         Action.COLLECT, final={"exit_by_signal": True, "exit_signal": 64}),
    # OOMKilled → hold 34 naming the limit, or (knob) 4 by signal 9
    Case("oom-killed", lambda: with_exit(running(), 137, "OOMKilled"), "oom-killed-hold", HELD,
         expect=_held(34, 137),
         hold_mentions=("OOMKilled", "limit of 32Mi (32 MiB)", "RequestMemory",
                        "osg/kg-ce1-1234-0")),
    Case("oom-killed-gi-limit",
         lambda: with_exit(with_limits(running(), memory="2Gi"), 137, "OOMKilled"),
         "oom-killed-hold", HELD, expect=_held(34, 137), hold_mentions=("2Gi (2048 MiB)",)),
    Case("oom-killed-signal-policy", lambda: with_exit(running(), 137, "OOMKilled"),
         "oom-killed-signal", RUNNING, Action.COLLECT,
         lifecycle=LifecycleSettings(oom_policy="signal"),
         final={"job_status": COMPLETED, "exit_by_signal": True, "exit_signal": 9}),
    # DeadlineExceeded → hold 47 naming the limit
    Case("deadline-exceeded",
         lambda: with_pod_reason(with_deadline(with_exit(running(), 137, "Error"), 3600),
                                 "Failed", "DeadlineExceeded",
                                 "Pod was active on the node longer than the specified "
                                 "deadline"),
         "deadline-exceeded", HELD, expect=_held(47, 137),
         hold_mentions=("activeDeadlineSeconds (3600 s", "BatchRuntime", "osg/kg-ce1-1234-0")),
    # Evicted / DisruptionTarget → recreate (Idle, NumRestarts+1); hold 26 past the limit
    Case("evicted",
         lambda: with_pod_reason(with_exit(running(), 137, "Error"), "Failed", "Evicted",
                                 "The node was low on resource: memory. Threshold quantity: "
                                 "100Mi, available: 50Mi."),
         "disruption", IDLE, Action.RECREATE, expect={"num_restarts": 1}),
    *(Case(f"disruption-target-{reason}", disrupted(reason),
           "disruption", IDLE, Action.RECREATE, restarts=1, expect={"num_restarts": 2})
      for reason in ("PreemptionByScheduler", "DeletionByTaintManager", "EvictionByEvictionAPI",
                     "DeletionByPodGC", "TerminationByKubelet")),
    Case("disruption-target-future-reason", disrupted("SomeFutureReason"), "disruption", IDLE,
         Action.RECREATE, expect={"num_restarts": 1}),
    Case("container-status-unknown",
         lambda: with_exit(running(), 137, "ContainerStatusUnknown"), "disruption", IDLE,
         Action.RECREATE, expect={"num_restarts": 1}),
    Case("node-shutdown",
         lambda: with_pod_reason(with_exit(running(), 143, "Error"), "Failed", "Terminated",
                                 "Pod was terminated in response to imminent node shutdown."),
         "disruption", IDLE, Action.RECREATE),
    Case("disruption-last-allowed",
         lambda: with_condition(running(), "DisruptionTarget", "True", "PreemptionByScheduler"),
         "disruption", IDLE, Action.RECREATE, restarts=2, expect={"num_restarts": 3}),
    Case("disruption-over-limit",
         lambda: with_condition(running(), "DisruptionTarget", "True", "PreemptionByScheduler",
                                "default-scheduler: preempting to accommodate a higher "
                                "priority pod"),
         "disruption", HELD, restarts=3, expect={**_held(26), "num_restarts": 4},
         hold_mentions=("4 times", "KGAHP_MAX_DISRUPTIONS = 3", "PreemptionByScheduler",
                        "osg/kg-ce1-1234-0")),
    Case("max-disruptions-zero",
         lambda: with_pod_reason(running(), "Failed", "Evicted", "The node was low on memory"),
         "disruption", HELD, lifecycle=LifecycleSettings(max_disruptions=0), expect=_held(26)),
    Case("disruption-target-false-ignored",
         lambda: with_condition(running(), "DisruptionTarget", "False", "PreemptionByScheduler"),
         "running", RUNNING),
    Case("cancel-not-yet-deleting", running, "running", RUNNING, deleted_by_kgahp=True),
    Case("own-delete-is-not-a-disruption",
         lambda: with_condition(with_exit(being_deleted(), 143, "Error"), "DisruptionTarget",
                                "True", "EvictionByEvictionAPI"),
         "cancelled", REMOVED, deleted_by_kgahp=True, now=DELETION_AT,
         expect={"remove_reason": CANCELLED_REASON}),
    # Phase Unknown / stuck terminating: keep the last state, then node lost (+ force delete)
    Case("phase-unknown-within-grace",
         lambda: with_condition(with_phase(running(), "Unknown"), "Ready", "False"),
         "phase-unknown", RUNNING, now=NOT_READY_AT + 300, expect={"worker_node": "sim-node-1"}),
    Case("phase-unknown-past-grace",
         lambda: with_condition(with_phase(running(), "Unknown"), "Ready", "False"),
         "node-lost", IDLE, Action.RECREATE, now=NOT_READY_AT + 301,
         expect={"num_restarts": 1}),
    Case("phase-unknown-grace-knob",
         lambda: with_condition(with_phase(running(), "Unknown"), "Ready", "False"),
         "node-lost", HELD, now=NOT_READY_AT + 61, restarts=3,
         lifecycle=LifecycleSettings(unknown_grace=60), expect=_held(26)),
    Case("taint-manager-terminating-within-grace", deleted_by_taint_manager, "disruption",
         IDLE, Action.RECREATE, now=DELETION_AT + 300),
    Case("stuck-terminating", deleted_by_taint_manager, "stuck-terminating", IDLE,
         Action.DELETE, now=DELETION_AT + 301, expect={"num_restarts": 1}),
    Case("stuck-terminating-over-limit", deleted_by_taint_manager, "stuck-terminating", HELD,
         Action.DELETE, now=DELETION_AT + 301, restarts=3, expect=_held(26)),
    # Deleted by someone other than kgahp (issue 12): never Completed, never "signal 15"
    Case("deleted-elsewhere-graceful-running", being_deleted, "deleted-elsewhere", REMOVED,
         now=DELETION_AT - 29, remove_mentions=("deleted by someone other than kgahp",
                                                "grace 30 s", "osg/kg-ce1-1234-0")),
    Case("deleted-elsewhere-graceful-143", lambda: with_exit(
        deleted_at(running(), "2026-11-21T14:26:46Z", 30), 143, "Error",
        finished="2026-11-21T14:26:47Z"), "deleted-elsewhere", REMOVED, now=T0 + 3),
    Case("deleted-elsewhere-kubelet-grace-0-143", lambda: with_exit(
        deleted_at(running(), "2026-11-21T14:26:50Z", 0), 143, "Error",
        finished="2026-11-21T14:26:47Z"), "deleted-elsewhere", REMOVED, now=T0 + 6),
    Case("deleted-elsewhere-short-grace-137", lambda: with_exit(
        deleted_at(running(), "2026-11-21T14:26:46Z", 1), 137, "Error",
        finished="2026-11-21T14:26:47Z"), "deleted-elsewhere", REMOVED, now=T0 + 3),
    Case("deleted-elsewhere-trapped-term-exit-0", lambda: with_exit(
        deleted_at(running(), "2026-11-21T14:26:46Z", 30), 0, "Completed", "Succeeded",
        finished="2026-11-21T14:26:47Z"), "deleted-elsewhere", REMOVED, now=T0 + 3),
    Case("deleted-elsewhere-forced", lambda: deleted_at(running(), "2026-11-21T14:26:50Z", 0),
         "deleted-elsewhere", REMOVED, now=T0 + 6, remove_mentions=("forced (grace 0)",)),
    Case("deleted-elsewhere-before-start", lambda: deleted_at(
        creating(), "2026-11-21T14:26:50Z", 30), "deleted-elsewhere", IDLE, Action.RECREATE,
        now=T0 + 6, expect={"num_restarts": 1}),
    Case("deleted-elsewhere-before-start-over-limit", lambda: deleted_at(
        creating(), "2026-11-21T14:26:50Z", 30), "deleted-elsewhere", HELD, now=T0 + 6,
        restarts=3, expect=_held(26)),
    Case("deleted-elsewhere-seen-running-before", lambda: deleted_at(
        creating(), "2026-11-21T14:26:50Z", 0), "deleted-elsewhere", REMOVED, now=T0 + 6,
        ever_started=True),
    Case("deleted-elsewhere-stuck", being_deleted, "deleted-elsewhere", REMOVED, Action.DELETE,
         now=DELETION_AT + 301),
    Case("eviction-api", lambda: with_condition(
        deleted_at(running(), "2026-11-21T14:26:50Z", 30), "DisruptionTarget", "True",
        "EvictionByEvictionAPI", "Eviction API: evicting"), "disruption", IDLE, Action.RECREATE,
        now=T0 + 6, expect={"num_restarts": 1}),
    Case("finished-then-deleted-grace-0", lambda: with_exit(
        deleted_at(running(), "2026-11-21T14:30:00Z", 0), 3, "Error",
        finished="2026-11-21T14:26:47Z"), "exited", RUNNING, Action.COLLECT, now=T0 + 600,
        final={"exit_code": 3}),
    Case("stuck-terminating-own-delete", being_deleted, "stuck-terminating-own-delete", RUNNING,
         Action.DELETE, now=DELETION_AT + 301, deleted_by_kgahp=True,
         expect={"num_restarts": 0}),
    Case("finished-pod-terminating-is-collected",
         lambda: with_exit(being_deleted(), 0, "Completed", "Succeeded"), "succeeded", RUNNING,
         Action.COLLECT, now=DELETION_AT + 3600, final={"exit_code": 0}),
    # Failures without an exit code from the main container
    Case("init-container-failed", lambda: with_init_exit(running(), 2, "tar: short read"),
         "init-failed", HELD, expect=_held(6, 2),
         hold_mentions=("Init container stage-in", "exit code 2", "tar: short read",
                        "kubectl logs -n osg kg-ce1-1234-0 -c stage-in")),
    Case("init-container-missing-input",
         lambda: with_init_exit(running(), 1, SECRET_MISSING), "init-failed", HELD,
         expect=_held(13, 1)),
    Case("failed-unexplained",
         lambda: with_pod_reason(with_waiting(running(), "ContainerCreating"), "Failed",
                                 "SomethingNew", "the kubelet gave up"),
         "failed-unexplained", HELD, expect=_held(6), hold_mentions=("SomethingNew",)),
)


def _run(case: Case) -> Verdict:
    return classify(case.pod(), now=case.now, settings=case.lifecycle, restarts=case.restarts,
                    deleted_by_kgahp=case.deleted_by_kgahp, mount_error=case.mount_error,
                    ever_started=case.ever_started)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_row(case: Case) -> None:
    verdict = _run(case)
    assert verdict.rule == case.rule, verdict.reason
    assert verdict.state.job_status == case.status
    assert verdict.action is case.action
    for name, value in case.expect.items():
        assert getattr(verdict.state, name) == value, name
    for text in case.remove_mentions:
        assert text in (verdict.state.remove_reason or ""), verdict.state.remove_reason
    if case.status == REMOVED:
        assert verdict.state.remove_reason
    if case.action is Action.COLLECT:
        assert verdict.final is not None and verdict.final.job_status == COMPLETED
        for name, value in (case.final or {}).items():
            assert getattr(verdict.final, name) == value, name
    else:
        assert verdict.final is None
    for text in case.hold_mentions:
        assert text in (verdict.state.hold_reason or ""), (text, verdict.state.hold_reason)
    assert verdict.reason


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invariants(case: Case) -> None:
    """Whatever the row: never COMPLETED without COLLECT, hold attributes only when held,
    HoldReason one line under 1000 chars naming the pod."""
    verdict = _run(case)
    state = verdict.state
    assert state.job_status != COMPLETED
    if state.job_status == HELD:
        assert state.hold_code and state.hold_subcode is not None
        reason = state.hold_reason or ""
        assert 0 < len(reason) < 1000 and "\n" not in reason and "\r" not in reason
        pod = case.pod()["metadata"]
        assert f"{pod['namespace']}/{pod['name']}" in reason
    else:
        assert state.hold_code is None and state.hold_reason is None
    expected_restarts = case.restarts + (
        1 if verdict.action is Action.RECREATE or verdict.rule in (
            "stuck-terminating", "disruption", "node-lost", "kueue-stopped") or (
            verdict.rule == "deleted-elsewhere" and state.job_status != REMOVED) else 0)
    assert state.num_restarts == expected_restarts


def test_every_rule_is_exercised() -> None:
    """The table and the tests cannot drift apart: every rule has a case, every case a rule."""
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    exercised = {c.rule for c in CASES}
    assert set(names) - exercised == set()
    assert exercised - set(names) == set()
    vanished_exercised = {c[3] for c in VANISHED_CASES}
    assert {r.name for r in VANISHED_RULES} == vanished_exercised


def test_unschedulable_keeps_scheduler_message_for_the_log() -> None:
    verdict = classify(unschedulable(), now=UNSCHED_AT + 42, settings=DEFAULTS)
    assert SCHEDULER_MESSAGE in verdict.reason and "42 s" in verdict.reason


def test_kueue_gated_reason_names_the_local_queue() -> None:
    verdict = classify(gated(queue="gpu-local"), now=GATED_AT + 5, settings=DEFAULTS)
    assert verdict.reason.startswith("waiting for quota in LocalQueue gpu-local")
    other = classify(gated("example.org/provisioning"), now=GATED_AT + 5, settings=DEFAULTS)
    assert "example.org/provisioning" in other.reason and "quota" not in other.reason


def test_kueue_preemption_is_never_a_completion_or_removal() -> None:
    for code, reason, phase in ((0, "Completed", "Failed"), (143, "Error", "Failed"),
                                (137, "Error", "Failed")):
        pod = with_exit(kueue_preempted(running()), code, reason, phase,
                        finished="2026-11-21T14:26:52Z")
        verdict = classify(pod, now=T0 + 8, settings=DEFAULTS)
        assert verdict.rule == "kueue-stopped"
        assert verdict.action is Action.RECREATE and verdict.final is None


def test_pull_failure_reason_says_how_long() -> None:
    pod = with_waiting(creating(), "ImagePullBackOff", PULL_MESSAGES["ImagePullBackOff"])
    verdict = classify(pod, now=T0 + 130, settings=DEFAULTS)
    assert verdict.reason == "ImagePullBackOff for 130 s"


def test_pull_grace_counts_from_bind_when_kubelet_has_not_started() -> None:
    pod = with_waiting(creating(), "ErrImagePull", PULL_NOT_FOUND)
    del pod["status"]["startTime"]
    bound = parse_time(pod["status"]["conditions"][0]["lastTransitionTime"]) or 0.0
    assert classify(pod, now=bound + 119, settings=DEFAULTS).state.job_status == IDLE
    assert classify(pod, now=bound + 121, settings=DEFAULTS).state.job_status == HELD


def test_main_image_grace_starts_after_input_staging() -> None:
    """A 10-minute init container does not use up the main container's pull grace."""
    pod = with_waiting(creating(), "ErrImagePull", PULL_NOT_FOUND)
    staged = T0 + 600
    with_condition(pod, "Initialized", "True", at="2026-11-21T14:36:45Z")
    assert classify(pod, now=staged + 119, settings=DEFAULTS).state.job_status == IDLE
    assert classify(pod, now=staged + 121, settings=DEFAULTS).state.job_status == HELD


def test_pull_without_any_timestamp_is_never_held() -> None:
    pod = with_waiting(creating(), "ErrImagePull", PULL_NOT_FOUND)
    del pod["status"]["startTime"]
    pod["status"]["conditions"] = []
    del pod["metadata"]["creationTimestamp"]
    assert classify(pod, now=T0 + 1e6, settings=DEFAULTS).state.job_status == IDLE


def test_hold_reason_stays_one_short_line_for_huge_kubelet_messages() -> None:
    message = "line one\nline two\r\n" + "x" * 5000
    pod = with_waiting(creating(), "ErrImagePull", message)
    state = classify(pod, now=T0 + 500, settings=DEFAULTS).state
    reason = state.hold_reason or ""
    assert len(reason) < 1000 and "\n" not in reason and "\r" not in reason
    assert "line one line two" in reason and reason.endswith("pull secret")


def test_provisioned_resources_come_from_the_pod_spec() -> None:
    pod = running()
    pod["spec"]["containers"][0]["resources"]["requests"].update(
        {"cpu": "2500m", "memory": "3Gi", "ephemeral-storage": "10Gi"})
    state = classify(pod, now=T0, settings=DEFAULTS).state
    assert (state.cpus_provisioned, state.memory_provisioned, state.disk_provisioned) == \
        (2.5, 3072, 10 * 1024 * 1024)
    final = classify(with_exit(pod, 0, "Completed", "Succeeded"), now=T0,
                     settings=DEFAULTS).final
    assert final is not None and final.memory_provisioned == 3072


def test_main_container_is_found_by_name_not_position() -> None:
    pod = with_exit(running(), 7, "Error")
    sidecar_spec = {"name": "sidecar", "image": "busybox:1.36", "resources": {}}
    sidecar = {"name": "sidecar", "state": {"running": {"startedAt": "2026-11-21T14:26:45Z"}}}
    pod["spec"]["containers"].insert(0, sidecar_spec)
    pod["status"]["containerStatuses"].insert(0, sidecar)
    final = classify(pod, now=T0, settings=DEFAULTS).final
    assert final is not None and final.exit_code == 7


def test_recorded_main_container_name_can_be_given() -> None:
    pod = recorded("17d-pod-status-patch-terminated-200")
    verdict = classify(pod, now=T0, settings=DEFAULTS, main_container="main")
    assert verdict.final is not None and verdict.final.exit_code == 3


def _through_client_models(pod: Pod) -> Pod:
    """Deserialize into kubernetes V1Pod and back, as a watch-fed cache would hold it."""
    client = ApiClient()
    model = client.deserialize(json.dumps(pod), "V1Pod",
                               "application/json")
    out: Pod = client.sanitize_for_serialization(model)
    return out


@pytest.mark.parametrize("case", [c for c in CASES if c.id in (
    "unschedulable-past-limit", "ErrImagePull-past-grace", "stuck-terminating", "oom-killed",
    "running", "phase-unknown-past-grace", "sigterm")], ids=lambda c: c.id)
def test_client_model_dicts_classify_like_raw_json(case: Case) -> None:
    raw = _run(case)
    modelled = classify(_through_client_models(case.pod()), now=case.now,
                        settings=case.lifecycle, restarts=case.restarts,
                        deleted_by_kgahp=case.deleted_by_kgahp, mount_error=case.mount_error)
    assert modelled == raw


def test_restarts_annotation() -> None:
    pod = running()
    assert restarts_of(pod) == 0
    pod["metadata"].setdefault("annotations", {})["kgahp.htcondor.org/restarts"] = "2"
    assert restarts_of(pod) == 2
    pod["metadata"]["annotations"]["kgahp.htcondor.org/restarts"] = "garbage"
    assert restarts_of(pod) == 0


@pytest.mark.parametrize("text, expected", [
    ("2026-11-21T14:26:45Z", 1795271205.0),
    ("2026-11-21T14:26:45.123456789Z", 1795271205.123456),
    ("2026-11-21T14:26:45+00:00", 1795271205.0),
    ("2026-11-21T15:26:45+01:00", 1795271205.0),
    ("", None),
    ("not a time", None),
])
def test_parse_time(text: str, expected: Optional[float]) -> None:
    got = parse_time(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


# --------------------------------------------------------------------------------- vanished

VANISHED_CASES = (
    # ever_started, restarts, settings, rule, status, action, num_restarts
    (True, 0, DEFAULTS, "vanished-started", REMOVED, Action.NONE, 0),
    (True, 5, DEFAULTS, "vanished-started", REMOVED, Action.NONE, 5),
    (False, 0, DEFAULTS, "vanished-unstarted", IDLE, Action.RECREATE, 1),
    (False, 2, DEFAULTS, "vanished-unstarted", IDLE, Action.RECREATE, 3),
    (False, 3, DEFAULTS, "vanished-unstarted-hold", HELD, Action.NONE, 4),
    (False, 0, LifecycleSettings(max_disruptions=0), "vanished-unstarted-hold", HELD,
     Action.NONE, 1),
)


@pytest.mark.parametrize("started, restarts, lifecycle, rule, status, action, count",
                         VANISHED_CASES)
def test_vanished(started: bool, restarts: int, lifecycle: LifecycleSettings, rule: str,
                  status: int, action: Action, count: int) -> None:
    verdict = vanished(ever_started=started, restarts=restarts, settings=lifecycle,
                       namespace="osg", name="kg-ce1-1234-0")
    assert (verdict.rule, verdict.state.job_status, verdict.action) == (rule, status, action)
    assert verdict.state.num_restarts == count
    assert verdict.final is None and verdict.state.job_status != COMPLETED
    if status == HELD:
        assert verdict.state.hold_code == 26 and verdict.state.hold_subcode == 0
        assert "osg/kg-ce1-1234-0" in (verdict.state.hold_reason or "")


# --------------------------------------------------------------------------------- properties

WAITING_REASONS = sorted([*PULL_MESSAGES, "CreateContainerConfigError", "CreateContainerError",
                          "RunContainerError", "ContainerCreating", "PodInitializing"])


@settings(max_examples=60, deadline=None)
@given(reason=st.sampled_from(WAITING_REASONS), message=st.text(max_size=300),
       waited=st.integers(min_value=0, max_value=10**6),
       grace=st.integers(min_value=0, max_value=10**4))
def test_waiting_pods_are_idle_or_held_never_more(reason: str, message: str, waited: int,
                                                  grace: int) -> None:
    lifecycle = LifecycleSettings(image_pull_grace=grace, config_error_grace=grace)
    verdict = classify(with_waiting(creating(), reason, message), now=T0 + waited,
                       settings=lifecycle)
    throttled = "pull qps exceeded" in message.lower()
    holdable = reason not in ("ContainerCreating", "PodInitializing") and not (
        reason in PULL_MESSAGES and throttled)
    expected = HELD if holdable and waited > grace else IDLE
    assert verdict.state.job_status == expected
    assert verdict.action is Action.NONE
    if expected == HELD:
        assert verdict.state.hold_code in (6, 13, 35)
        assert len(verdict.state.hold_reason or "") < 1000


@settings(max_examples=60, deadline=None)
@given(code=st.integers(min_value=0, max_value=255))
def test_every_exit_code_maps_to_exactly_one_exit_shape(code: int) -> None:
    final = classify(with_exit(running(), code, "Error"), now=T0, settings=DEFAULTS).final
    assert final is not None and final.job_status == COMPLETED
    if 129 <= code <= 192:
        assert (final.exit_by_signal, final.exit_signal, final.exit_code) == (True, code - 128,
                                                                             None)
    else:
        assert (final.exit_by_signal, final.exit_code, final.exit_signal) == (False, code, None)
