"""The rule table (`RULES`) in the order of docs/job-states.md, and `classify`, which walks it:
the first rule whose `applies` is true gives the `Verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Callable

from kgahp.config import LifecycleSettings
from kgahp.lifecycle.context import Context
from kgahp.lifecycle.ending import (
    _deleted_elsewhere,
    _ended_before_deletion,
    _killed_by_signal,
    _stuck_terminating,
    _unknown_too_long,
    _v_cancelled,
    _v_deadline,
    _v_deleted_elsewhere,
    _v_disruption,
    _v_exit,
    _v_failed_unexplained,
    _v_init_failed,
    _v_node_lost,
    _v_oom_hold,
    _v_oom_signal,
    _v_signal,
    _v_stuck_own_delete,
    _v_stuck_terminating,
    _v_succeeded,
    _v_unknown_within_grace,
)
from kgahp.lifecycle.kueue import (
    _gated,
    _kueue_managed,
    _kueue_stopped,
    _v_gated,
    _v_kueue_stopped,
    _v_kueue_unschedulable,
)
from kgahp.lifecycle.pod import Pod, read_pod
from kgahp.lifecycle.starting import (
    _mount_failed_too_long,
    _mount_failing,
    _unschedulable,
    _unschedulable_too_long,
    _v_config_hold,
    _v_config_waiting,
    _v_mount_hold,
    _v_mount_waiting,
    _v_pull_hold,
    _v_pulling,
    _v_running,
    _v_starting,
    _v_unschedulable,
    _v_unschedulable_hold,
)
from kgahp.lifecycle.symptoms import (
    IMAGE_PULL_REASONS,
    _config_error,
    _config_failed_too_long,
    _disruption,
    _failed_init,
    _main_exit,
    _oom_killed,
    _pull_failed_too_long,
    _waiting_in,
)
from kgahp.lifecycle.verdict import Verdict

Predicate = Callable[[Pod, Context], bool]
Decide = Callable[[Pod, Context], Verdict]


@dataclass(frozen=True)
class Rule:
    name: str
    situation: str        # the docs/job-states.md row, in its words
    applies: Predicate
    verdict: Decide


def _not_own(pred: Predicate) -> Predicate:
    """Disruption rules do not apply to a pod kgahp itself is deleting."""
    return lambda pod, ctx: not ctx.deleted_by_kgahp and pred(pod, ctx)


RULES: tuple[Rule, ...] = (
    Rule("kueue-stopped", "Kueue stopped the pod (TerminationTarget=True: preempted, evicted, "
         "workload gone) and deletes it; it never recreates it: a disruption, created again",
         _not_own(lambda p, c: _kueue_stopped(p) is not None and p.phase != "Succeeded"
                  and not _ended_before_deletion(p)),
         _v_kueue_stopped),
    Rule("deleted-elsewhere", "Pod deleted by someone else (kubectl delete, graceful or forced, "
         "namespace deletion) before its job ended: 3 Removed if it started, else created again; "
         "never Completed", _deleted_elsewhere, _v_deleted_elsewhere),
    Rule("stuck-terminating", "Pod stuck Terminating past its grace + KGAHP_UNKNOWN_GRACE",
         _not_own(_stuck_terminating), _v_stuck_terminating),
    Rule("stuck-terminating-own-delete", "Pod kgahp deleted, stuck Terminating past the grace",
         lambda p, c: c.deleted_by_kgahp and _stuck_terminating(p, c), _v_stuck_own_delete),
    Rule("cancelled", "Job kgahp cancelled (BLAH_JOB_CANCEL): 3 Removed, never collected",
         lambda p, c: c.deleted_by_kgahp and p.deletion_at is not None, _v_cancelled),
    Rule("node-lost", "Phase Unknown longer than KGAHP_UNKNOWN_GRACE",
         _not_own(_unknown_too_long), _v_node_lost),
    Rule("phase-unknown", "Phase Unknown (node unreachable), within KGAHP_UNKNOWN_GRACE",
         lambda p, c: p.phase == "Unknown", _v_unknown_within_grace),
    Rule("disruption", "Evicted, preempted, node lost (status.reason / DisruptionTarget)",
         _not_own(lambda p, c: _disruption(p) is not None and p.phase != "Succeeded"
                  and not _ended_before_deletion(p)),
         _v_disruption),
    Rule("deadline-exceeded", "status.reason = DeadlineExceeded (activeDeadlineSeconds)",
         lambda p, c: p.reason == "DeadlineExceeded", _v_deadline),
    Rule("oom-killed-hold", "OOMKilled, KGAHP_OOM_POLICY = hold",
         lambda p, c: _oom_killed(p) and c.settings.oom_policy != "signal", _v_oom_hold),
    Rule("oom-killed-signal", "OOMKilled, KGAHP_OOM_POLICY = signal",
         lambda p, c: _oom_killed(p) and c.settings.oom_policy == "signal", _v_oom_signal),
    Rule("succeeded", "Phase Succeeded",
         lambda p, c: p.phase == "Succeeded", _v_succeeded),
    Rule("killed-by-signal", "Main container exited 128+s (s in 1..64), reason not OOMKilled",
         _killed_by_signal, _v_signal),
    Rule("exited", "Main container exited with N (Failed, reason Error or Completed)",
         lambda p, c: _main_exit(p) is not None, _v_exit),
    Rule("init-failed", "Init container failed (exit code != 0)",
         lambda p, c: _failed_init(p) is not None, _v_init_failed),
    Rule("failed-unexplained", "Phase Failed without a main-container exit code",
         lambda p, c: p.phase == "Failed", _v_failed_unexplained),
    Rule("image-pull-hold", "ErrImagePull/ImagePullBackOff/InvalidImageName/ErrImageNeverPull "
         "past KGAHP_IMAGE_PULL_GRACE", _pull_failed_too_long, _v_pull_hold),
    Rule("image-pull-waiting", "Image pull failing within the grace, or throttled "
         "(pull QPS exceeded)", lambda p, c: _waiting_in(p, IMAGE_PULL_REASONS) is not None,
         _v_pulling),
    Rule("config-error-hold", "CreateContainerConfigError/CreateContainerError/"
         "RunContainerError past KGAHP_CONFIG_ERROR_GRACE", _config_failed_too_long,
         _v_config_hold),
    Rule("config-error-waiting", "Container config error within the grace",
         lambda p, c: _config_error(p) is not None, _v_config_waiting),
    Rule("mount-failure-hold", "FailedMount event past KGAHP_CONFIG_ERROR_GRACE (kgahp reads "
         "the events of a pod on a node that has not started for 10 s)",
         _mount_failed_too_long, _v_mount_hold),
    Rule("mount-failure-waiting", "FailedMount event within the grace",
         _mount_failing, _v_mount_waiting),
    Rule("scheduling-gated", "Pod with scheduling gates (Kueue's kueue.x-k8s.io/admission: "
         "waiting for quota in its LocalQueue): Idle, never a hold",
         lambda p, c: _gated(p), _v_gated),
    Rule("kueue-unschedulable", "Kueue-admitted pod Unschedulable: Idle, no KGAHP_PENDING_LIMIT "
         "hold (the time spent gated keeps PodScheduled=False; Kueue's waitForPodsReady owns "
         "this timeout)", lambda p, c: _kueue_managed(p) and _unschedulable(p),
         _v_kueue_unschedulable),
    Rule("unschedulable-hold", "PodScheduled=False Unschedulable past KGAHP_PENDING_LIMIT",
         _unschedulable_too_long, _v_unschedulable_hold),
    Rule("unschedulable", "PodScheduled=False Unschedulable",
         lambda p, c: _unschedulable(p), _v_unschedulable),
    Rule("running", "Phase Running, main container running",
         lambda p, c: p.phase == "Running", _v_running),
    Rule("starting", "Pending: ContainerCreating, PodInitializing, image being pulled",
         lambda p, c: True, _v_starting),
)


def classify(pod: Mapping[str, Any], *, now: float, settings: LifecycleSettings,
             main_container: str = "job", restarts: int = 0,
             deleted_by_kgahp: bool = False, mount_error: str = "",
             ever_started: bool = False) -> Verdict:
    """What to report for `pod` at time `now` (epoch seconds), and what to do about it.

    `restarts` is the number of disruptions so far (the pod's kgahp.htcondor.org/restarts
    annotation); `deleted_by_kgahp` says kgahp itself asked for the pod's deletion, so its
    termination is not a disruption. `mount_error` is the message of the newest FailedMount
    event of the pod (mount failures show only as events; the pod just stays ContainerCreating).
    `ever_started` says an earlier look saw the job run (a deleted pod then is not recreated).
    """
    facts = read_pod(pod, main_container)
    ctx = Context(now=now, settings=settings, restarts=max(0, restarts),
                  deleted_by_kgahp=deleted_by_kgahp, mount_error=mount_error,
                  ever_started=ever_started)
    for rule in RULES:
        if rule.applies(facts, ctx):
            return replace(rule.verdict(facts, ctx), rule=rule.name)
    raise AssertionError("the last rule always applies")  # pragma: no cover
