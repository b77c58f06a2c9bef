"""Job mode's rule (kgahp/lifecycle/jobs.py): what a batch/v1 Job's own status adds to the pod
table. The Jobs are the recorded v1.36 answers (tests/data/k8s-recordings-v1.36/22*), so the
condition types and reasons are the real Job controller's."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kgahp import lifecycle
from kgahp.config import LifecycleSettings
from kgahp.lifecycle.jobs import (
    deadline_exceeded,
    suspended,
    suspended_during,
    with_pod,
    without_pod,
)
from kgahp.model import COMPLETED, HELD, IDLE

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
