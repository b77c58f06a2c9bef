"""The sim's Job controller with the ttl-after-finished controller, as kube-controller-manager
v1.36 runs them for a NonIndexed Job (the API server's part, defaulting, validation and delete
propagation, is kgahp_sim.jobs). Pinned to tests/data/k8s-recordings-v1.36/22*:

- the controller: one pod per missing completion (generateName `<job>-`, the job's labels, a
  controlling ownerReference with blockOwnerDeletion, the finalizer
  `batch.kubernetes.io/job-tracking`, 22c), removed once the pod is counted (22c2);
  `startTime`/`active`/`ready`/`terminating`/`uncountedTerminatedPods` as 22b shows;
  success: SuccessCriteriaMet then Complete, reason CompletionsReached (22d); failure past
  backoffLimit: FailureTarget then Failed, BackoffLimitExceeded (22e); activeDeadlineSeconds:
  FailureTarget DeadlineExceeded, the active pods deleted, then Failed (22f); suspend:
  Suspended=True JobSuspended, resume: Suspended=False JobResumed and a new startTime (22j*);
  `podReplacementPolicy: Failed` waits for a terminating pod to finish before replacing it;
  `spec.managedBy` other than kubernetes.io/job-controller: left alone (22k2);
- ttlSecondsAfterFinished: the Job is deleted with propagation Foreground (22b, 22l);
- the GC's Foreground/Orphan work for a deleted Job (22g, 22h, 22i): the job controller
  drops its tracking finalizer from the pods of a deleted Job.

Not modelled: the exponential back-off between retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from kgahp_sim.jobs import (
    BACKOFF_MESSAGE,
    COMPLETE_MESSAGE,
    DEADLINE_MESSAGE,
    DEFAULT_MANAGER,
    FOREGROUND,
    TRACKING_FINALIZER,
    _condition,
    _epoch,
    _has,
    _owned_by,
    delete,
)
from kgahp_sim.jobwrites import JobWrites
from kgahp_sim.store import ApiStatusError, now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.store import Store, WatchEvent

log = logging.getLogger(__name__)


class JobController(JobWrites):
    """The job and ttl-after-finished controllers, plus the GC's Foreground/Orphan work."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._pending: set[tuple[str, str]] = set()
        self._scheduled = False

    def observe(self, event: WatchEvent) -> None:
        meta = event.obj.get("metadata") or {}
        namespace = meta.get("namespace") or ""
        if event.resource == "jobs":
            if event.type != "DELETED":
                self._queue(namespace, meta["name"])
            return
        if event.resource != "pods":
            return
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") == "Job" and ref.get("controller"):
                self._queue(namespace, ref.get("name", ""))
        if event.type == "DELETED":   # a Foreground owner may be waiting for this pod
            for job in self.store.scan("jobs", namespace):
                if FOREGROUND in (job["metadata"].get("finalizers") or ()):
                    self._queue(namespace, job["metadata"]["name"])

    def _queue(self, namespace: str, name: str) -> None:
        self._pending.add((namespace, name))
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self._drain)
            except RuntimeError:
                self._drain()

    def _later(self, delay: float, namespace: str, name: str) -> None:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().call_later(max(0.0, delay) + 0.05, self._queue,
                                                  namespace, name)

    def _drain(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, set()
        for namespace, name in sorted(pending):
            try:
                self.sync(namespace, name)
            except ApiStatusError as err:
                log.debug("job %s/%s: %s", namespace, name, err.message)
            except Exception:   # the controller must survive one bad Job
                log.exception("job controller failed on %s/%s", namespace, name)

    # ---- the reconcile
    def sync(self, namespace: str, name: str) -> None:
        job = self.store.peek("jobs", namespace, name)
        if job is None:   # deleted (Background): its pods no longer need tracking (22g)
            for pod in self.store.scan("pods", namespace):
                if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or ()) and any(
                        r.get("kind") == "Job" and r.get("name") == name and r.get("controller")
                        for r in pod["metadata"].get("ownerReferences") or ()):
                    self._drop_tracking(pod)
            return
        meta, spec = job["metadata"], job.get("spec") or {}
        uid = meta.get("uid", "")
        pods = [p for p in self.store.scan("pods", namespace) if _owned_by(p, uid)]
        if meta.get("deletionTimestamp"):
            self._finish_deletion(job, pods)
            return
        if (spec.get("managedBy") or DEFAULT_MANAGER) != DEFAULT_MANAGER:
            return                                      # another controller's Job (22k2)
        status: dict[str, Any] = json.loads(json.dumps(job.get("status") or {}))
        before = json.dumps(status, sort_keys=True)
        status.setdefault("terminating", 0)
        status.setdefault("uncountedTerminatedPods", {})
        status.setdefault("ready", 0)
        conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
        finished = _has(status, "Complete") or _has(status, "Failed")
        live = [p for p in pods if (p.get("status") or {}).get("phase") not in
                ("Succeeded", "Failed")]
        active = [p for p in live if not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in live if p["metadata"].get("deletionTimestamp")]
        if self._track(job, status, pods, active, before):
            return      # recorded as uncounted first; counted on the next pass (22b)
        if finished:
            for pod in active:
                self._delete_pod(pod)
            self._ttl(job, status)
            self._write_if_changed(namespace, name, status, before)
            return
        if spec.get("suspend"):
            if not _has(status, "Suspended"):
                conditions[:] = [c for c in conditions if c.get("type") != "Suspended"]
                conditions.append(_condition("Suspended", "True", "JobSuspended",
                                             "Job suspended"))
                status.pop("startTime", None)
            for pod in active:
                # a pod the controller itself deletes (suspension, lower parallelism) loses
                # its tracking finalizer first, so it is never counted as failed (KEP-2307,
                # "Job tracking without lingering pods"): a resumed Job with backoffLimit 0
                # runs again instead of failing
                self._drop_tracking(pod)
                self._delete_pod(pod)
            status.pop("active", None)
            status["terminating"] = len(terminating)
            self._write_if_changed(namespace, name, status, before)
            return
        if _has(status, "Suspended"):
            conditions[:] = [c for c in conditions if c.get("type") != "Suspended"]
            conditions.append(_condition("Suspended", "False", "JobResumed", "Job resumed"))
            status["startTime"] = now_rfc3339()
        completions = spec.get("completions")
        succeeded = int(status.get("succeeded") or 0)
        failed = int(status.get("failed") or 0)
        reason = message = ""
        target = next((c for c in conditions if c.get("type") == "FailureTarget"
                       and c.get("status") == "True"), None)
        if target is not None:    # decided before: Failed once the pods have ended (22f)
            reason, message = str(target.get("reason")), str(target.get("message"))
        elif completions is not None and succeeded >= int(completions):
            reason, message = "CompletionsReached", COMPLETE_MESSAGE
        elif failed > int(spec.get("backoffLimit", 6)):
            reason, message = "BackoffLimitExceeded", BACKOFF_MESSAGE
        else:
            deadline = spec.get("activeDeadlineSeconds")
            started = _epoch(status.get("startTime"))
            if deadline is not None and started is not None:
                left = started + int(deadline) - time.time()
                if left <= 0:
                    reason, message = "DeadlineExceeded", DEADLINE_MESSAGE
                else:
                    self._later(left, namespace, name)
        if reason:
            release = self._conclude(job, status, reason, message, active, terminating,
                                     json.loads(before))
            self._write_if_changed(namespace, name, status, before)
            for pod in release:        # after the write that counts them (22f2, 22f3)
                self._drop_tracking(pod)
            if status.get("terminating") == 0 and not finished and not _has(
                    status, "Failed") and not _has(status, "Complete"):
                self._queue(namespace, name)   # the terminating count is 0 now: conclude
            return
        # keep `parallelism` pods running (at most the completions still missing)
        want = int(spec.get("parallelism", 1))
        if completions is not None:
            want = min(want, int(completions) - succeeded)
        replace_terminating = spec.get("podReplacementPolicy") != "Failed"
        have = len(active) + (0 if replace_terminating else len(terminating))
        for _ in range(max(0, want - have)):
            self._create_pod(job)
            status.setdefault("startTime", now_rfc3339())
            if spec.get("activeDeadlineSeconds") is not None:
                self._later(float(spec["activeDeadlineSeconds"]), namespace, name)
        created = max(0, want - have)
        count = len(active) + created
        if count:
            status["active"] = count
        else:
            status.pop("active", None)
        status["terminating"] = len(terminating)
        status["ready"] = sum(1 for p in active if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or ()))
        self._write_if_changed(namespace, name, status, before)

    def _track(self, job: dict[str, Any], status: dict[str, Any], pods: list[dict[str, Any]],
               active: list[dict[str, Any]], before: str) -> bool:
        """The real controller's two steps for an ended pod (22b, 22c2): first its uid goes
        into status.uncountedTerminatedPods (with SuccessCriteriaMet/FailureTarget when that
        decides the Job) and the tracking finalizer is removed; then, on a later pass, the
        uid moves into the succeeded/failed count. True when the first step was written."""
        meta, spec = job["metadata"], job.get("spec") or {}
        uncounted: dict[str, list[str]] = status["uncountedTerminatedPods"]
        by_uid = {p["metadata"].get("uid"): p for p in pods}
        for key in ("succeeded", "failed"):
            waiting = uncounted.get(key) or []
            done = [u for u in waiting if u not in by_uid or TRACKING_FINALIZER not in (
                by_uid[u]["metadata"].get("finalizers") or ())]
            if done:
                status[key] = int(status.get(key) or 0) + len(done)
                left = [u for u in waiting if u not in done]
                if left:
                    uncounted[key] = left
                else:
                    uncounted.pop(key, None)
        ended = [p for p in pods if (p.get("status") or {}).get("phase") in
                 ("Succeeded", "Failed") and TRACKING_FINALIZER in (
                     p["metadata"].get("finalizers") or ())]
        fresh = [p for p in ended if p["metadata"].get("uid") not in
                 (uncounted.get("succeeded") or []) + (uncounted.get("failed") or [])]
        if not fresh:
            for pod in ended:              # recorded before: finish removing the finalizer
                self._drop_tracking(pod)
            return False
        for pod in fresh:
            key = "succeeded" if pod["status"]["phase"] == "Succeeded" else "failed"
            uncounted.setdefault(key, []).append(pod["metadata"].get("uid"))
        succeeded = int(status.get("succeeded") or 0) + len(uncounted.get("succeeded") or [])
        failed = int(status.get("failed") or 0) + len(uncounted.get("failed") or [])
        completions = spec.get("completions")
        conditions = status["conditions"]
        if completions is not None and succeeded >= int(completions) and not _has(
                status, "SuccessCriteriaMet"):
            conditions.append(_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                         COMPLETE_MESSAGE))
        elif failed > int(spec.get("backoffLimit", 6)) and not _has(status, "FailureTarget"):
            conditions.append(_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                         BACKOFF_MESSAGE))
        if active:
            status["active"] = len(active)
        else:
            status.pop("active", None)
        status["ready"] = sum(1 for p in active if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (p.get("status") or {}).get("conditions") or ()))
        self._write_if_changed(meta.get("namespace") or "", meta["name"], status, before)
        for pod in ended:
            self._drop_tracking(pod)
        return True

    def _conclude(self, job: dict[str, Any], status: dict[str, Any], reason: str, message: str,
                  active: list[dict[str, Any]], terminating: list[dict[str, Any]],
                  written: dict[str, Any]) -> list[dict[str, Any]]:
        """Decide the Job; the pods whose tracking finalizer goes once `status` is written.

        A failed Job's running pods are deleted with their finalizer kept (deleteActivePods)
        and, being deleted, counted as failed at once: uncounted in the FailureTarget write,
        then, their finalizer released, in `failed` while they still terminate. Failed comes
        in a write of its own once the stored terminating count is 0 (22f2, 22f3)."""
        conditions = status["conditions"]
        if reason == "CompletionsReached":
            if not _has(status, "SuccessCriteriaMet"):
                conditions.append(_condition("SuccessCriteriaMet", "True", reason, message))
            conditions.append(_condition("Complete", "True", reason, message))
            status["completionTime"] = now_rfc3339()
        else:
            if not _has(status, "FailureTarget"):
                conditions.append(_condition("FailureTarget", "True", reason, message))
            release = [p for p in active if TRACKING_FINALIZER in (
                p["metadata"].get("finalizers") or ())]
            for pod in active:
                self._delete_pod(pod)
            uncounted = status["uncountedTerminatedPods"]
            for pod in release:
                uncounted.setdefault("failed", []).append(pod["metadata"].get("uid"))
            if active or terminating or int(written.get("terminating") or 0):
                status["terminating"] = len(active) + len(terminating)
                status.pop("active", None)
                status["ready"] = 0
                return release    # Failed once its pods have ended (22f)
            conditions.append(_condition("Failed", "True", reason, message))
        status.pop("active", None)
        status["terminating"] = 0
        status["ready"] = 0
        self._ttl(job, status)
        return []

    def _ttl(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None:
            return
        done = next((c.get("lastTransitionTime") for c in status.get("conditions") or ()
                     if c.get("type") in ("Complete", "Failed") and c.get("status") == "True"),
                    None)
        at = _epoch(done)
        if at is None:
            return
        meta = job["metadata"]
        left = at + int(ttl) - time.time()
        if left > 0:
            self._later(left, meta.get("namespace") or "", meta["name"])
            return
        with contextlib.suppress(ApiStatusError):
            delete(self.store, meta.get("namespace"), meta["name"], "Foreground",
                   uid_precondition=meta.get("uid"))
