"""Job mode's rule (kgahp/lifecycle/jobs.py): what a batch/v1 Job's own status adds to the pod
table. The Jobs are the recorded v1.36 answers (tests/data/k8s-recordings-v1.36/22*), so the
condition types and reasons are the real Job controller's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kgahp import lifecycle
from kgahp.config import LifecycleSettings
from kgahp.lifecycle.jobs import (
    being_deleted,
    deadline_exceeded,
    job_deleted,
    suspended,
    suspended_during,
    with_pod,
    without_pod,
)
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING

REC = Path(__file__).resolve().parents[1] / "data" / "k8s-recordings-v1.36"
SETTINGS = LifecycleSettings()
NOW = 1_800_000_000.0


def recorded(name: str) -> dict[str, Any]:
    return json.loads((REC / name).read_text())["response"]["body"]


def pod_of(job: dict[str, Any], *, deleting: bool, phase: str = "Running",
           created: str = "2026-12-01T22:39:56Z") -> dict[str, Any]:
    meta = job["metadata"]
    pod: dict[str, Any] = {
        "metadata": {"name": meta["name"] + "-abcde", "namespace": meta["namespace"],
                     "creationTimestamp": created,
                     "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                          "name": meta["name"], "uid": meta["uid"],
                                          "controller": True}]},
        "spec": {"nodeName": "node-1", "containers": [{"name": "job"}]},
        "status": {"phase": phase, "startTime": created,
                   "containerStatuses": [{"name": "job", "state": {
                       "running": {"startedAt": created}}}]},
    }
    if deleting:
        pod["metadata"]["deletionTimestamp"] = "2026-12-01T22:40:30Z"
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
    return pod


def table(pod: dict[str, Any], *, started: bool = True) -> lifecycle.Verdict:
    return lifecycle.classify(pod, now=NOW, settings=SETTINGS, ever_started=started)


def test_deadline_exceeded_job_without_its_pod_is_the_deadline_hold() -> None:
    job = recorded("22f-get-job-failed-deadlineexceeded.json")
    assert deadline_exceeded(job)
    verdict = without_pod(job, restarts=0)
    assert verdict is not None
    assert verdict.state.job_status == HELD and verdict.state.hold_code == 47
    assert "activeDeadlineSeconds" in str(verdict.state.hold_reason)


def test_a_pod_the_job_controller_deletes_at_the_deadline_is_held_not_removed() -> None:
    job = recorded("22f-get-job-failed-deadlineexceeded.json")
    pod = pod_of(job, deleting=True)
    pod["status"]["phase"] = "Failed"         # the kubelet's SIGTERM: exit 143 (22f2)
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 143}}
    plain = table(pod)
    assert plain.state.job_status != HELD       # the pod alone cannot tell
    verdict = with_pod(pod, job, plain, now=NOW, settings=SETTINGS, restarts=0)
    assert verdict.state.job_status == HELD and verdict.state.hold_code == 47


def test_backoff_limit_failure_leaves_the_pods_own_answer() -> None:
    job = recorded("22e-get-job-failed-backofflimitexceeded.json")
    assert not deadline_exceeded(job) and not suspended(job)
    assert without_pod(job, restarts=0) is None      # a vanished pod: the vanished rules
    pod = pod_of(job, deleting=False, phase="Failed")
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}
    plain = table(pod)
    assert plain.action is lifecycle.Action.COLLECT
    assert plain.final is not None and plain.final.exit_code == 3
    assert with_pod(pod, job, plain, now=NOW, settings=SETTINGS, restarts=0) == plain


def test_suspended_job_without_a_pod_is_idle_waiting_for_quota() -> None:
    job = copy.deepcopy(recorded("22j2-get-suspended-job.json"))
    job["metadata"].setdefault("labels", {})["kueue.x-k8s.io/queue-name"] = "lq-a"
    verdict = without_pod(job, restarts=2)
    assert verdict is not None and verdict.state.job_status == IDLE
    assert verdict.state.num_restarts == 2
    assert "waiting for quota in LocalQueue lq-a" in verdict.reason
    assert verdict.action is lifecycle.Action.NONE


def test_multikueue_job_waits_for_dispatch() -> None:
    job = copy.deepcopy(recorded("22j2-get-suspended-job.json"))
    job["spec"]["managedBy"] = "kueue.x-k8s.io/multikueue"
    verdict = without_pod(job, restarts=0)
    assert verdict is not None and "MultiKueue" in verdict.reason


def test_new_job_without_its_pod_yet_is_idle() -> None:
    job = copy.deepcopy(recorded("22j2-get-suspended-job.json"))
    job["spec"]["suspend"] = False
    job["status"] = {}
    verdict = without_pod(job, restarts=0)
    assert verdict is not None and verdict.state.job_status == IDLE
    assert "not made its pod yet" in verdict.reason


def test_pod_stopped_by_a_suspension_is_a_disruption_to_recreate() -> None:
    job = copy.deepcopy(recorded("22j2-get-suspended-job.json"))
    pod = pod_of(job, deleting=True, created="2026-12-01T22:39:50Z")
    plain = table(pod)
    verdict = with_pod(pod, job, plain, now=NOW, settings=SETTINGS, restarts=0)
    assert verdict.action is lifecycle.Action.RECREATE
    assert verdict.state.job_status == IDLE and verdict.state.num_restarts == 1


def test_resumed_again_still_counts_but_an_older_suspension_does_not() -> None:
    job = copy.deepcopy(recorded("22j2-get-suspended-job.json"))
    job["spec"]["suspend"] = False
    job["status"]["conditions"][0].update(status="False", reason="JobResumed")
    changed = lifecycle.parse_time(job["status"]["conditions"][0]["lastTransitionTime"])
    assert suspended_during(job, changed)                 # resumed after this pod was made
    assert not suspended_during(job, (changed or 0) + 5)  # a pod made after the resume
    later = pod_of(job, deleting=True, created="2026-12-01T22:45:00Z")
    plain = table(later)
    assert with_pod(later, job, plain, now=NOW, settings=SETTINGS, restarts=0) == plain


def test_completed_pod_is_never_changed_by_its_job() -> None:
    job = recorded("22f-get-job-failed-deadlineexceeded.json")
    pod = pod_of(job, deleting=False, phase="Succeeded")
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0}}
    plain = table(pod)
    assert plain.action is lifecycle.Action.COLLECT
    assert plain.final is not None and plain.final.job_status == COMPLETED
    assert with_pod(pod, job, plain, now=NOW, settings=SETTINGS, restarts=0) == plain


# ---- a Job deleted by someone else: its pod went by propagation (22g Background, 22h Foreground)

def watched_pod(recording: str, offset_ms: int) -> dict[str, Any]:
    """The pod as the recorded pod watch delivered it `offset_ms` after the Job's DELETE."""
    events = json.loads((REC / recording).read_text())["pod_watch"]["events"]
    raw = next(e["raw"] for e in events if e["offset_ms"] == offset_ms)
    return json.JSONDecoder().raw_decode(raw)[0]["object"]


def _pending(pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["status"] = {"phase": "Pending"}
    return pod


def _succeeded_before(pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["status"]["phase"] = "Succeeded"
    pod["status"]["containerStatuses"][0]["state"] = {"terminated": {
        "exitCode": 0, "reason": "Completed", "startedAt": "2026-12-01T22:39:57Z",
        "finishedAt": "2026-12-01T22:39:20Z"}}
    return pod


# (case, pod, ever started, deleted by kgahp, answer, does the RemoveReason name the Job)
JOB_DELETED_CASES = [
    ("background: pod terminating, still Running",
     watched_pod("22g-delete-job-propagation-background.json", 1012), True, False, REMOVED, True),
    ("background: pod stopped (143), kubelet's grace-0 delete",
     watched_pod("22g-delete-job-propagation-background.json", 1065), True, False, REMOVED, True),
    ("foreground: pod terminating, still Running",
     watched_pod("22h-delete-job-propagation-foreground.json", 875), True, False, REMOVED, True),
    ("foreground: pod stopped (143)",
     watched_pod("22h-delete-job-propagation-foreground.json", 892), True, False, REMOVED, True),
    ("ended on its own before the delete: its own answer (Completed once collected)",
     _succeeded_before(watched_pod("22g-delete-job-propagation-background.json", 1065)),
     True, False, RUNNING, False),
    ("deleted before it started: recreated, no reason",
     _pending(watched_pod("22g-delete-job-propagation-background.json", 1012)),
     False, False, IDLE, False),
    ("kgahp's own cancel: not someone else",
     watched_pod("22g-delete-job-propagation-background.json", 1065), True, True, REMOVED,
     False),
]


@pytest.mark.parametrize("case,pod,started,by_kgahp,answer,names_job", JOB_DELETED_CASES,
                         ids=[c[0] for c in JOB_DELETED_CASES])
def test_a_deleted_jobs_pod_is_removed_with_a_reason_naming_the_job(
        case: str, pod: dict[str, Any], started: bool, by_kgahp: bool, answer: int,
        names_job: bool) -> None:
    plain = lifecycle.classify(pod, now=NOW, settings=SETTINGS, main_container="main",
                               ever_started=started, deleted_by_kgahp=by_kgahp)
    meta = pod["metadata"]
    job = f"{meta['namespace']}/{meta['ownerReferences'][0]['name']}"
    verdict = job_deleted(pod, plain, job, main_container="main")
    assert verdict.state.job_status == answer, (case, verdict)
    reason = verdict.state.remove_reason or ""
    if names_job:
        assert verdict.final is None                  # nothing to collect, never Completed
        assert reason.startswith(f"Job {job} was deleted by someone other than kgahp"), reason
        assert f"its pod {meta['namespace']}/{meta['name']}" in reason
        assert "did not finish on its own" in reason and "not collected" in reason
        assert verdict.rule == "job-deleted-elsewhere" and verdict.action == plain.action
    else:
        assert verdict == plain                 # nothing for the Job wording to change
        assert f"Job {job}" not in reason


def test_a_foreground_deleted_job_is_being_deleted_and_a_live_one_is_not() -> None:
    marked = json.loads((REC / "22h-delete-job-propagation-foreground.json").read_text())[
        "job_get_0_3s_after"]["body"]
    assert being_deleted(marked)
    assert not being_deleted(recorded("22f-get-job-failed-deadlineexceeded.json"))
