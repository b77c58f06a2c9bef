"""A pod the tracking finalizer kept after a deletion: did its container end on its own before
the deletion (then its real exit code), or did the deletion stop it (a removal or disruption)?
The deletion was requested at deletionTimestamp - deletionGracePeriodSeconds (23b2, 23d2)."""

from __future__ import annotations

import time
from typing import Any, Optional

import pytest

from kgahp import lifecycle
from kgahp.config import LifecycleSettings
from kgahp.lifecycle import Action
from kgahp.model import COMPLETED, IDLE, REMOVED

NOW = time.time()
SETTINGS = LifecycleSettings()


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _pod(*, exit_code: int, finished_ago: float, deleted_at_ago: Optional[float],
         grace: int = 0, conditions: Optional[list[dict[str, Any]]] = None,
         phase: str = "Failed") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p-0", "namespace": "ns",
                            "creationTimestamp": _ts(NOW - 600),
                            "finalizers": ["kgahp.htcondor.org/collect"]}
    if deleted_at_ago is not None:
        meta["deletionTimestamp"] = _ts(NOW - deleted_at_ago + grace)
        meta["deletionGracePeriodSeconds"] = grace
    return {"metadata": meta, "spec": {"nodeName": "n1", "containers": [{"name": "job"}]},
            "status": {"phase": phase, "conditions": conditions or [], "containerStatuses": [{
                "name": "job", "state": {"terminated": {
                    "exitCode": exit_code, "reason": "Error" if exit_code else "Completed",
                    "startedAt": _ts(NOW - 500), "finishedAt": _ts(NOW - finished_ago)}}}]}}


def _classify(pod: dict[str, Any], started: bool = True) -> lifecycle.Verdict:
    return lifecycle.classify(pod, now=NOW, settings=SETTINGS, ever_started=started)


GC = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
      "message": "PodGC: node no longer exists"}
KUEUE = {"type": "TerminationTarget", "status": "True", "reason": "Preempted",
         "message": "Preempted to accommodate a workload"}


@pytest.mark.parametrize("conditions", [[], [GC], [KUEUE]], ids=["plain", "pod-gc", "kueue"])
def test_ended_well_before_the_deletion_is_its_real_exit(conditions: list) -> None:
    verdict = _classify(_pod(exit_code=4, finished_ago=60, deleted_at_ago=5,
                             conditions=conditions))
    assert verdict.action is Action.COLLECT, verdict
    assert verdict.final is not None and verdict.final.job_status == COMPLETED
    assert verdict.final.exit_code == 4


def test_succeeded_then_deleted_is_exit_0() -> None:
    verdict = _classify(_pod(exit_code=0, finished_ago=30, deleted_at_ago=2, phase="Succeeded"))
    assert verdict.final is not None and verdict.final.exit_code == 0


def test_stopped_by_the_deletion_is_never_a_completion() -> None:
    """Running when a 30 s graceful delete came; SIGTERM ended it 1 s later; the kubelet's
    final grace-0 delete moved deletionTimestamp just past finishedAt."""
    verdict = _classify(_pod(exit_code=143, finished_ago=9, deleted_at_ago=8.5))
    assert verdict.state.job_status == REMOVED and verdict.action is not Action.COLLECT
    assert verdict.rule == "deleted-elsewhere"


def test_a_trapped_term_during_a_pending_graceful_delete_is_not_a_completion() -> None:
    """The delete asked for 30 s; the job trapped SIGTERM and exited 4 after 2 s: the deletion
    (requested before finishedAt) ended it."""
    verdict = _classify(_pod(exit_code=4, finished_ago=8, deleted_at_ago=10, grace=30))
    assert verdict.state.job_status == REMOVED, verdict


def test_evicted_while_running_stays_a_disruption() -> None:
    evicted = {"type": "DisruptionTarget", "status": "True",
               "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}
    verdict = _classify(_pod(exit_code=137, finished_ago=4, deleted_at_ago=5, grace=30,
                             conditions=[evicted]))
    assert verdict.rule == "disruption" and verdict.state.job_status == IDLE
    assert verdict.action is Action.RECREATE


def test_a_kubelet_eviction_has_no_deletion_and_stays_a_disruption() -> None:
    pod = _pod(exit_code=137, finished_ago=4, deleted_at_ago=None)
    pod["status"]["reason"] = "Evicted"
    pod["status"]["message"] = "The node was low on resource: memory."
    verdict = _classify(pod)
    assert verdict.rule == "disruption" and verdict.action is Action.RECREATE
