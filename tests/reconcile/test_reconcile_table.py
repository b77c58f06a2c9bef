"""The reconciler's decision table: (the job's pods in the cache, its record in the store) → what
`Service.reconcile` does. One row per rule, each driven through the real PodCache and JobStore
and the real API client against the simulated cluster; the actions are observed on the cluster
(requests, pods, Secrets) and in the store.

The cache is not started: each row puts the pod states it needs into it (newer than anything the
simulator sent), so the row's input is exactly what the reconciler reads.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import classad2
import pytest
from harness import sim_service

from kgahp.finalizers import FINALIZER
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, JobState
from kgahp.podspec import names
from kgahp.service import Service

NS = "default"


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Rig:
    def __init__(self, service: Service, sim: Any, iwd: Path) -> None:
        self.service = service
        self.sim = sim
        self.iwd = iwd
        self.now = time.time()
        self._rv = 10_000_000

    def ad(self, job_dir: str) -> str:
        return repr(classad2.ClassAd({
            "Cmd": "/bin/sleep", "Arguments": "600", "Iwd": str(self.iwd),
            "JobDirectory": job_dir, "In": "/dev/null", "GridResource": "batch kubernetes",
            "RequestMemory": 64, "StageCmd": False}))

    def submit(self, job_dir: str) -> str:
        code, msg, job_id = self.service.submit(self.ad(job_dir))
        assert code == 0, msg
        assert job_id is not None
        return job_id.split("/")[2]

    def put(self, pod: dict, *, phase: str, main: Optional[dict] = None,
            deleted_ago: Optional[float] = None, grace: int = 30,
            conditions: Optional[list[dict]] = None, node: Optional[str] = "node-1",
            created_ago: float = 60.0, secret_volume: bool = False) -> dict:
        """Give the cache a version of `pod` in the given state."""
        pod = copy.deepcopy(pod)
        self._rv += 1
        meta = pod["metadata"]
        meta["resourceVersion"] = str(self._rv)
        meta["creationTimestamp"] = _ts(self.now - created_ago)
        if deleted_ago is not None:
            meta["deletionTimestamp"] = _ts(self.now - deleted_ago + grace)
            meta["deletionGracePeriodSeconds"] = grace
        if node:
            pod["spec"]["nodeName"] = node
        if secret_volume:
            pod["spec"].setdefault("volumes", []).append(
                {"name": "kgahp-input", "secret": {"secretName": f"{meta['name']}-input"}})
        status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
        if main is not None:
            status["containerStatuses"] = [{"name": "job", **main}]
        pod["status"] = status
        self.service.cache.note(pod)
        return pod

    def pods(self) -> dict[str, dict]:
        items, _ = self.service.kube.list_pods(NS, "")
        return {p["metadata"]["name"]: p for p in items}

    def requests(self, verb: str, resource: str) -> int:
        return int(self.sim.stats.count(verb=verb, resource=resource))


def _running(started_ago: float = 30) -> dict:
    return {"state": {"running": {"startedAt": _ts(time.time() - started_ago)}}}


def _exited(code: int, ago: float = 5) -> dict:
    now = time.time()
    return {"state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0
                                     else "Error", "startedAt": _ts(now - ago - 20),
                                     "finishedAt": _ts(now - ago)}}}


@pytest.fixture
def rig(sim: Any, sim_kubeconfig: str, tmp_path: Path) -> Iterator[Rig]:
    sim.require_sim()
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    service = sim_service(sim_kubeconfig, tmp_path / "state", start=False)
    try:
        yield Rig(service, sim, iwd)
    finally:
        service.reconciler.wait_idle(10)
        service.close(secrets_deadline=0)
        service.store.close()


@dataclass
class Row:
    rule: str
    # puts pods into the cache, edits the record; may name another job to reconcile
    given: Callable[[Rig, str], Optional[str]]
    expect: Callable[[Rig, str, dict[str, int], Optional[float]], None]
    departed: Callable[[Rig, str], Optional[dict]] = field(default=lambda r, j: None)


def _pod0(r: Rig, job: str) -> dict:
    pod = r.service.cache.get(NS, names.pod_name(job, 0))
    assert pod is not None
    return pod


def _final(r: Rig, job: str) -> JobState:
    rec = r.service.store.get(job)
    assert rec is not None and rec.final is not None, rec
    return rec.final


# ---- the rows


def _running_marks_started(r: Rig, job: str) -> None:
    r.put(_pod0(r, job), phase="Running", main=_running())


def _expect_started(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    rec = r.service.store.get(job)
    assert rec is not None and rec.started and rec.final is None
    assert d["create pods"] == 0 and d["delete pods"] == 0 and again is None


def _succeeded(r: Rig, job: str) -> None:
    r.put(_pod0(r, job), phase="Succeeded", main=_exited(0))


def _expect_collected(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == COMPLETED and final.exit_code == 0
    assert d["delete pods"] == 0   # kept for the retention ...
    assert again is not None and 290 < again <= 300   # ... and looked at again after it


def _store_lost(r: Rig, job: str) -> str:
    """A finished pod of a job the store does not know (its file was lost)."""
    lost = copy.deepcopy(_pod0(r, job))
    other = f"{job}-lost"
    lost["metadata"]["name"] = names.pod_name(other, 0)
    lost["metadata"]["labels"][names.LABEL_JOB] = other
    r.put(lost, phase="Succeeded", main=_exited(0))
    return other


def _failed_exit(r: Rig, job: str) -> None:
    r.put(_pod0(r, job), phase="Failed", main=_exited(3))


def _expect_exit_3(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == COMPLETED and final.exit_code == 3


def _evicted(r: Rig, job: str) -> None:
    r.service.store.update(job, started=True)
    r.put(_pod0(r, job), phase="Failed", main=_exited(137),
          conditions=[{"type": "DisruptionTarget", "status": "True",
                       "reason": "EvictionByEvictionAPI", "message": "evicted"}])


def _expect_recreated(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    rec = r.service.store.get(job)
    assert rec is not None and rec.attempt == 1 and rec.restarts == 1 and rec.final is None
    assert names.pod_name(job, 1) in r.pods()
    assert d["create pods"] == 1
    assert d["delete pods"] >= 1          # the disrupted attempt goes


def _node_lost(r: Rig, job: str) -> None:
    r.put(_pod0(r, job), phase="Unknown", main=_running(),
          conditions=[{"type": "Ready", "status": "Unknown",
                       "lastTransitionTime": _ts(time.time() - 3600)}])


def _superseded(r: Rig, job: str) -> None:
    old = _pod0(r, job)
    r.put(old, phase="Failed", main=_exited(137))
    r.service.store.update(job, attempt=1)
    new = copy.deepcopy(old)
    new["metadata"]["name"] = names.pod_name(job, 1)
    new["metadata"]["labels"][names.LABEL_ATTEMPT] = "1"
    r.put(new, phase="Running", main=_running())


def _expect_old_deleted(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert d["delete pods"] == 1 and d["create pods"] == 0
    rec = r.service.store.get(job)
    assert rec is not None and rec.final is None and rec.attempt == 1


def _deleted_elsewhere_running(r: Rig, job: str) -> None:
    r.service.store.update(job, started=True)
    r.put(_pod0(r, job), phase="Running", main=_running(), deleted_ago=2)


def _expect_removed(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == REMOVED
    assert "someone other than kgahp" in (final.remove_reason or ""), final
    assert d["create pods"] == 0


def _gone(r: Rig, pod: dict) -> dict:
    """Delete the pod in the cluster, and deliver its DELETED as the watch would."""
    name = pod["metadata"]["name"]
    r.service.kube.delete_pod(NS, name, grace_seconds=0)
    # gone for good: as if an admin cleared the finalizers while kgahp was not looking (23b3)
    r.service.kube.call("clearing finalizers", lambda: r.service.kube.request(
        "PATCH", f"/api/v1/namespaces/{NS}/pods/{name}",
        body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json"))
    deadline = time.monotonic() + 10
    while name in r.pods():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r.service.cache._drop(pod)
    r.service.cache._emit("DELETED", pod)
    return pod


def _departed_unstarted(r: Rig, job: str) -> Optional[dict]:
    return _gone(r, r.put(_pod0(r, job), phase="Pending", node=None))


def _departed_after_start(r: Rig, job: str) -> Optional[dict]:
    r.service.store.update(job, started=True)
    return _gone(r, r.put(_pod0(r, job), phase="Running", main=_running()))


def _nothing(r: Rig, job: str) -> None:
    return None


def _cancelled_finished(r: Rig, job: str) -> None:
    rec = r.service.store.update(job, cancelled=True)
    assert rec is not None
    r.service.store.record_final(job, 0, JobState(REMOVED, remove_reason="cancelled"))
    r.put(_pod0(r, job), phase="Succeeded", main=_exited(0))


def _expect_not_collected(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert _final(r, job).job_status == REMOVED
    assert d["create pods"] == 0


def _cancelled_stuck(r: Rig, job: str) -> None:
    r.service.store.update(job, cancelled=True)
    r.service.store.record_final(job, 0, JobState(REMOVED, remove_reason="cancelled"))
    r.put(_pod0(r, job), phase="Running", main=_running(), deleted_ago=3600)


def _expect_force_deleted(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert d["delete pods"] >= 1 and d["create pods"] == 0
    assert names.pod_name(job, 0) not in r.pods()   # grace 0: gone at once


def _retention_over(r: Rig, job: str) -> None:
    r.service.store.record_final(job, 0, JobState(COMPLETED, exit_code=0))
    r.service.store.update(job, finished_at=time.time() - 3600)
    r.put(_pod0(r, job), phase="Succeeded", main=_exited(0, ago=3600))


def _expect_cleaned_up(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert d["delete pods"] == 1 and again is None
    assert _final(r, job).job_status == COMPLETED


def _final_with_secret(r: Rig, job: str) -> None:
    name = names.pod_name(job, 0)
    r.service.kube.create_secret(NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": f"{name}-input", "labels": dict(r.service.instance_labels)}, "data": {}})
    r.service.store.record_final(job, 0, JobState(COMPLETED, exit_code=0))
    r.put(_pod0(r, job), phase="Succeeded", main=_exited(0), secret_volume=True)


def _expect_secret_deleted(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert r.service.reconciler.wait_idle(10)
    name = names.pod_name(job, 0)
    assert r.requests("delete", "secrets") == 1
    assert (NS, name) in r.service.actions.secrets_done
    assert d["delete pods"] == 0 and again is not None   # the pod stays for the retention


def _mount_wait(r: Rig, job: str) -> None:
    r.put(_pod0(r, job), phase="Pending", created_ago=60,
          main={"state": {"waiting": {"reason": "ContainerCreating"}}})


def _expect_mount_check(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert r.service.reconciler.wait_idle(10)
    assert r.requests("list", "events") == 1
    assert d["create pods"] == 0 and d["delete pods"] == 0


def _expect_vanished_recreated(r: Rig, job: str, d: dict[str, int],
                               again: Optional[float]) -> None:
    rec = r.service.store.get(job)
    assert rec is not None and rec.attempt == 1 and rec.restarts == 1 and rec.final is None
    assert names.pod_name(job, 1) in r.pods()
    assert d["create pods"] == 1


def _expect_vanished_removed(r: Rig, job: str, d: dict[str, int],
                             again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == REMOVED and d["create pods"] == 0


def _policy(r: Rig, policy: str) -> None:
    """The reconciler reads the knob from its settings: as if KGAHP_DISRUPTION_POLICY said so."""
    settings = r.service.reconciler.settings
    r.service.reconciler.settings = dataclasses.replace(
        settings, lifecycle=dataclasses.replace(settings.lifecycle, disruption_policy=policy))


def _evicted_hold(r: Rig, job: str) -> None:
    _policy(r, "hold")
    _evicted(r, job)


def _evicted_remove(r: Rig, job: str) -> None:
    _policy(r, "remove")
    _evicted(r, job)


def _expect_held_26(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == HELD and final.hold_code == 26, final
    assert "KGAHP_DISRUPTION_POLICY = hold" in (final.hold_reason or "")
    assert d["create pods"] == 0
    assert not _finalizers(r, job)                 # answered: kgahp no longer holds the pod


def _expect_idle_final(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == IDLE and final.num_restarts == 1, final
    assert "KGAHP_DISRUPTION_POLICY = remove" in (final.exit_reason or "")
    assert d["create pods"] == 0


def _finalizers(r: Rig, job: str, attempt: int = 0) -> list[str]:
    pod = r.service.kube.get_pod(NS, names.pod_name(job, attempt))
    assert pod is not None
    return list(pod["metadata"].get("finalizers") or [])


def _ended_then_deleted(r: Rig, job: str) -> None:
    """Exited 4 a minute ago; deleted (grace 0, as for a finished pod) 5 s ago while kgahp was
    not looking: the finalizer kept it, and its own end came first."""
    r.service.store.update(job, started=True)
    r.put(_pod0(r, job), phase="Failed", main=_exited(4, ago=60), deleted_ago=5, grace=0)


def _expect_exit_4_released(r: Rig, job: str, d: dict[str, int],
                            again: Optional[float]) -> None:
    final = _final(r, job)
    assert final.job_status == COMPLETED and final.exit_code == 4, final
    assert not _finalizers(r, job)


def _expect_collected_released(r: Rig, job: str, d: dict[str, int],
                               again: Optional[float]) -> None:
    _expect_collected(r, job, d, again)
    assert not _finalizers(r, job)


def _untracked_running(r: Rig, job: str) -> None:
    """The store forgot the job (its record purged or the file lost) while its pod runs."""
    r.put(_pod0(r, job), phase="Running", main=_running())
    with r.service.store._lock:
        del r.service.store._jobs[job]


def _expect_swept(r: Rig, job: str, d: dict[str, int], again: Optional[float]) -> None:
    assert not _finalizers(r, job)
    assert d["delete pods"] == 0 and d["create pods"] == 0


def _expect_kept_while_running(r: Rig, job: str, d: dict[str, int],
                               again: Optional[float]) -> None:
    _expect_started(r, job, d, again)
    assert _finalizers(r, job) == [FINALIZER]


ROWS = [
    Row("evicted, policy hold: held 26, no new pod, finalizer released", _evicted_hold,
        _expect_held_26),
    Row("evicted after start, policy remove: Idle as the answer, no new pod", _evicted_remove,
        _expect_idle_final),
    Row("ended, then deleted while kgahp looked away: its exit code, finalizer released",
        _ended_then_deleted, _expect_exit_4_released),
    Row("succeeded: collected, finalizer released", _succeeded, _expect_collected_released),
    Row("running: the finalizer stays", _running_marks_started, _expect_kept_while_running),
    Row("job no longer tracked: the finalizer is released", _untracked_running, _expect_swept),
    Row("running: the start is recorded", _running_marks_started, _expect_started),
    Row("succeeded: collected, kept for the retention", _succeeded, _expect_collected),
    Row("store lost: the record is rebuilt and the pod collected", _store_lost,
        _expect_collected),
    Row("exit 3: collected as completed with its code", _failed_exit, _expect_exit_3),
    Row("evicted: recreated as the next attempt", _evicted, _expect_recreated),
    Row("node lost: recreated as the next attempt", _node_lost, _expect_recreated),
    Row("superseded attempt: deleted", _superseded, _expect_old_deleted),
    Row("deleted by someone else while running: removed", _deleted_elsewhere_running,
        _expect_removed),
    Row("gone before it started: recreated", _nothing, _expect_vanished_recreated,
        departed=_departed_unstarted),
    Row("gone after it started: removed", _nothing, _expect_vanished_removed,
        departed=_departed_after_start),
    Row("cancelled and finished: never collected", _cancelled_finished, _expect_not_collected),
    Row("cancelled, stuck terminating: force-deleted", _cancelled_stuck,
        _expect_force_deleted),
    Row("result recorded, retention over: pod deleted", _retention_over, _expect_cleaned_up),
    Row("result recorded: the pod's own Secrets deleted", _final_with_secret,
        _expect_secret_deleted),
    Row("on a node, not starting: the namespace's FailedMount events are read", _mount_wait,
        _expect_mount_check),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.rule for r in ROWS])
def test_reconcile_rule(rig: Rig, row: Row) -> None:
    job = rig.submit(f"/spool/{abs(hash(row.rule))}")
    assert rig.service.reconciler.wait_idle(10)
    start = {k: rig.requests(*k.split()) for k in ("create pods", "delete pods")}
    job = row.given(rig, job) or job
    departed = row.departed(rig, job)
    again: Optional[float] = None
    if departed is not None:
        assert rig.service.reconciler.wait_idle(10)   # the listener's enqueue ran the reconcile
    else:
        start = {k: rig.requests(*k.split()) for k in start}
        again = rig.service.reconciler.reconcile(NS, job)
        assert rig.service.reconciler.wait_idle(10)   # its tidy-ups: finalizer, deletion
    counts = {k: rig.requests(*k.split()) - start[k] for k in start}
    row.expect(rig, job, counts, again)


def test_reconcile_is_idempotent(rig: Rig) -> None:
    """Reconciling the same state again does nothing more."""
    job = rig.submit("/spool/idem")
    assert rig.service.reconciler.wait_idle(10)
    _evicted(rig, job)
    rig.service.reconciler.reconcile(NS, job)
    creates, deletes = rig.requests("create", "pods"), rig.requests("delete", "pods")
    for _ in range(5):
        rig.service.reconciler.reconcile(NS, job)
    assert rig.requests("create", "pods") == creates
    assert rig.requests("delete", "pods") <= deletes + 5   # the old pod, until its DELETED
    rec = rig.service.store.get(job)
    assert rec is not None and rec.attempt == 1


def test_a_failed_reconcile_keeps_the_deleted_pods_last_state_for_its_retry(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconcile that judges a deleted pod fails once (an API outage): the work queue
    retries it after a backoff, and the pod's last state is still there to judge."""
    job = rig.submit("/spool/retry")
    assert rig.service.reconciler.wait_idle(10)
    real = rig.service.reconciler._reconcile_pod
    failures: list[str] = []

    def flaky(kind: str, job: str, pod: dict) -> Optional[float]:
        if kind == "DELETED" and not failures:
            failures.append(kind)
            raise RuntimeError("API outage")
        return real(kind, job, pod)

    monkeypatch.setattr(rig.service.reconciler, "_reconcile_pod", flaky)
    _departed_unstarted(rig, job)
    deadline = time.monotonic() + 10
    while names.pod_name(job, 1) not in rig.pods():
        assert time.monotonic() < deadline, "the retry did not recreate the job"
        time.sleep(0.05)
    assert failures == ["DELETED"]
    rec = rig.service.store.get(job)
    assert rec is not None and rec.attempt == 1 and rec.restarts == 1


def test_the_events_of_a_starting_pod_make_one_reconcile_and_later_ones_run_at_once(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    reconciler = rig.service.reconciler
    job = rig.submit("/spool/batched")
    assert reconciler.wait_idle(10)
    runs: list[str] = []
    real = reconciler.reconcile

    def counted(namespace: str, name: str) -> Optional[float]:
        runs.append(name)
        return real(namespace, name)

    monkeypatch.setattr(reconciler, "reconcile", counted)
    key = ("job", NS, job)
    pod = _pod0(rig, job)
    # ADDED, scheduled, ContainerCreating: one run, after the batch period
    reconciler.on_pod_event("ADDED", rig.put(pod, phase="Pending", node=None))
    reconciler.on_pod_event("MODIFIED", rig.put(pod, phase="Pending"))
    reconciler.on_pod_event("MODIFIED", rig.put(pod, phase="Pending", main={
        "state": {"waiting": {"reason": "ContainerCreating"}}}))
    assert reconciler.queue.scheduled(key) and not reconciler.queue.busy(key)
    assert reconciler.wait_idle(10)
    assert runs == [job]
    # it runs: at once, as does every later event of the pod
    reconciler.on_pod_event("MODIFIED", rig.put(pod, phase="Running", main=_running()))
    assert reconciler.queue.busy(key) or runs == [job, job]
    assert reconciler.wait_idle(10)
    assert runs == [job, job]
    assert rig.service.store.get(job).started      # type: ignore[union-attr]
    # a Job's event (job mode: suspended by Kueue, ended, deleted) is never held back either
    reconciler.on_job_event("MODIFIED", {"metadata": {"namespace": NS, "name": "j",
                                                      "labels": {names.LABEL_JOB: job}}})
    assert reconciler.queue.busy(key) or runs == [job, job, job]
    assert reconciler.wait_idle(10)
    assert runs == [job, job, job]
