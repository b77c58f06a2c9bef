"""Job mode: what a batch/v1 Job's own status adds to the pod rules.

The pod the Job made is what the table reads; the Job says more in two cases only:
- it has no pod (yet, or any more): suspended (Kueue has not admitted it, MultiKueue dispatched
  it elsewhere), just created, or its deadline passed and the Job controller deleted the pod;
- its pod was stopped by the Job controller: `DeadlineExceeded` (the attempt's BatchRuntime, a
  hold, never a removal or a disruption) or a suspension (Kueue evicted the workload: a
  disruption, never the job's failure).
Condition names and reasons are the Job controller's (Failed/FailureTarget with DeadlineExceeded,
Suspended), as recorded in tests/data/k8s-recordings-v1.36/22*.
And one wording: a pod deleted by someone else whose Job is gone or being deleted went with its
Job (`kubectl delete job`: the garbage collector deletes the pod, 22g/22h), so the RemoveReason
names the Job (`job_deleted`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Optional

from kgahp.config import LifecycleSettings
from kgahp.lifecycle.context import Context, _disrupted, _held
from kgahp.lifecycle.ending import deletion_requested_text
from kgahp.lifecycle.kueue import KUEUE_QUEUE_LABEL
from kgahp.lifecycle.pod import parse_time, read_pod
from kgahp.lifecycle.verdict import (
    HOLD_JOB_EXECUTE_EXCEEDED,
    Action,
    Verdict,
    _hold_reason,
    one_line,
)
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, JobState

MULTIKUEUE_MANAGER = "kueue.x-k8s.io/multikueue"
DELETED_ELSEWHERE = "deleted-elsewhere"        # the pod table's rule (kgahp/lifecycle/table.py)
JOB_DELETED_ELSEWHERE = "job-deleted-elsewhere"


def _true(job: Mapping[str, Any], kind: str) -> Optional[dict]:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def deadline_exceeded(job: Mapping[str, Any]) -> bool:
    return any((c := _true(job, kind)) is not None and c.get("reason") == "DeadlineExceeded"
               for kind in ("Failed", "FailureTarget"))


def suspended(job: Mapping[str, Any]) -> bool:
    return bool((job.get("spec") or {}).get("suspend")) or _true(job, "Suspended") is not None


def suspended_during(job: Mapping[str, Any], since: Optional[float]) -> bool:
    """The Job is suspended, or was suspended or resumed at or after `since` (a pod's
    creation): Kueue evicted it and may already have admitted it again. With backoffLimit 0 and
    podReplacementPolicy Failed nothing else stops a pod of an unfinished Job this way."""
    if _true(job, "Complete") is not None or _true(job, "Failed") is not None:
        return False
    if suspended(job):
        return True
    for cond in (job.get("status") or {}).get("conditions") or ():
        if isinstance(cond, dict) and cond.get("type") == "Suspended":
            changed = parse_time(cond.get("lastTransitionTime"))
            if changed is not None and since is not None and changed >= since:
                return True
    return False


def _name(job: Mapping[str, Any]) -> str:
    meta = job.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _deadline_text(job: Mapping[str, Any]) -> str:
    limit = (job.get("spec") or {}).get("activeDeadlineSeconds")
    shown = f"{limit} s" if limit is not None else "its limit"
    return (f"Job {_name(job)} ran longer than its activeDeadlineSeconds ({shown}, from the "
            f"job's BatchRuntime) and Kubernetes stopped it (DeadlineExceeded); raise "
            f"BatchRuntime if the job needs more time")


def _waiting(job: Mapping[str, Any]) -> str:
    labels = (job.get("metadata") or {}).get("labels") or {}
    queue = labels.get(KUEUE_QUEUE_LABEL)
    if (job.get("spec") or {}).get("managedBy") == MULTIKUEUE_MANAGER:
        return f"waiting for MultiKueue (LocalQueue {queue}) to admit Job {_name(job)} and " \
               f"dispatch it to a worker cluster"
    if suspended(job) and queue:
        return f"waiting for quota in LocalQueue {queue} (Job {_name(job)} is suspended " \
               f"until Kueue admits it)"
    if suspended(job):
        return f"Job {_name(job)} is suspended"
    return f"Job {_name(job)} created; the Job controller has not made its pod yet"


def without_pod(job: Mapping[str, Any], *, restarts: int) -> Optional[Verdict]:
    """The verdict for an attempt whose Job exists but whose pod does not; None: the Job says
    nothing more than "the pod is gone" (the vanished rules decide)."""
    if deadline_exceeded(job):
        state = JobState(HELD, num_restarts=restarts, hold_code=HOLD_JOB_EXECUTE_EXCEEDED,
                         hold_subcode=0, hold_reason=_hold_reason(_deadline_text(job)))
        return Verdict(state, Action.NONE, None, "Job DeadlineExceeded", "job-deadline")
    if _true(job, "Complete") is not None or _true(job, "Failed") is not None:
        return None
    return Verdict(JobState(IDLE, num_restarts=restarts), Action.NONE, None,
                   one_line(_waiting(job)), "job-waiting")


def with_pod(pod: Mapping[str, Any], job: Mapping[str, Any], verdict: Verdict, *, now: float,
             settings: LifecycleSettings, restarts: int, main_container: str = "job") -> Verdict:
    """`verdict` (the pod table's), corrected by what the pod's Job says about its end."""
    if verdict.state.job_status in (COMPLETED, HELD) or (
            verdict.final is not None and verdict.final.job_status == HELD):
        return verdict
    p = read_pod(pod, main_container)
    if p.phase == "Succeeded":
        return verdict   # it ended on its own, whatever the Job decided a moment later
    ctx = Context(now=now, settings=settings, restarts=restarts, deleted_by_kgahp=False)
    if deadline_exceeded(job):
        state = _held(p, ctx, HOLD_JOB_EXECUTE_EXCEEDED, _deadline_text(job))
        return Verdict(state, Action.NONE, None, "Job DeadlineExceeded", "job-deadline")
    stopping = p.deletion_at is not None or p.finished
    if stopping and p.phase != "Succeeded" and suspended_during(job, p.created):
        return _disrupted(p, ctx, f"Job {_name(job)} suspended (Kueue evicted or preempted "
                          f"its workload)", Action.RECREATE)
    return verdict


def deleted_elsewhere(verdict: Verdict) -> bool:
    """The pod table's answer is "Removed: someone other than kgahp deleted the pod" (the job
    had started; an unstarted pod is recreated and says nothing to the admin)."""
    return verdict.rule == DELETED_ELSEWHERE and verdict.state.job_status == REMOVED


def being_deleted(job: Mapping[str, Any]) -> bool:
    """A Job with a deletionTimestamp: deleted with propagation Foreground (22h) or held by a
    finalizer; its pods are going with it."""
    return bool((job.get("metadata") or {}).get("deletionTimestamp"))


def job_deleted(pod: Mapping[str, Any], verdict: Verdict, job_ref: str, *,
                main_container: str = "job") -> Verdict:
    """`verdict` reworded when the pod's Job `job_ref` (namespace/name) is gone or being
    deleted: someone deleted the Job and its pod went with it by propagation. Only a
    deleted-elsewhere Removed changes, and it stays Removed (never Completed)."""
    if not deleted_elsewhere(verdict):
        return verdict
    p = read_pod(pod, main_container)
    when = deletion_requested_text(p)
    text = (f"Job {job_ref} was deleted by someone other than kgahp (kubectl delete job, a "
            f"namespace deletion or a cleanup script) and Kubernetes deleted its pod {p.ref} "
            f"with it (requested {when}) while the job ran, so the job did not finish on its "
            f"own and its outputs were not collected")
    return replace(verdict, state=replace(verdict.state, remove_reason=one_line(text)),
                   reason=f"Job {job_ref} deleted by someone else: {verdict.reason}",
                   rule=JOB_DELETED_ELSEWHERE)
