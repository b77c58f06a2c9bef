"""Job mode's I/O (kgahp/workloads.py says what a Job is): the watch-fed cache of this
instance's batch/v1 Jobs, and creating, finding and deleting them. Built only when some queue
runs in job mode (`workloads.uses_jobs`); PodActions, the reconciler and the verbs call it
through small hooks and otherwise treat the Job's pod as they treat a bare pod.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Optional

from kgahp import lifecycle, sandbox, workloads
from kgahp.config import LifecycleSettings
from kgahp.errors import ApiError, KgahpError
from kgahp.kube import jobs as jobapi
from kgahp.kube.api import Kube
from kgahp.kube.cache import PodCache
from kgahp.model import COMPLETED, HELD, JobRequest
from kgahp.podactions import create_or_adopt
from kgahp.podspec import names
from kgahp.store import JobRecord

if TYPE_CHECKING:
    from kgahp.podactions import PodActions

log = logging.getLogger(__name__)

DELETED_REMEMBERED = 20_000   # Job names whose delete this process already sent


class JobMode:
    def __init__(self, kube: Kube, cache: PodCache) -> None:
        self.kube = kube
        self.cache = cache     # a PodCache of kind "job": the same machinery, Jobs in it
        # Jobs this process deleted (Background: gone at once, for good): the reconciles that
        # still see their terminating pod do not ask again (bounded, oldest forgotten first)
        self._deleted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._deleted_guard = threading.Lock()

    @classmethod
    def build(cls, kube: Kube, namespaces: tuple[str, ...], selector: str, *,
              resync_interval: float) -> JobMode:
        cache = PodCache(
            kube, namespaces, selector, job_label=names.LABEL_JOB,
            resync_interval=resync_interval, kind="job", slimmer=jobapi.slim_job,
            lister=lambda ns, sel, **kw: jobapi.list_jobs(kube, ns, sel, **kw),
            watcher=lambda ns, sel, rv, t: jobapi.watch_jobs(kube, ns, sel, rv, t))
        return cls(kube, cache)

    def start(self) -> None:
        self.cache.start()

    def stop(self) -> None:
        self.cache.stop()

    # ---- reads (the cache; a direct read only where a wrong "none" would cost a duplicate)
    def of_pod(self, pod: dict) -> Optional[dict]:
        """The Job that made `pod`, if it is a Job's pod and the Job is known."""
        ref = workloads.owner_job(pod)
        if ref is None:
            return None
        namespace = str((pod.get("metadata") or {}).get("namespace"))
        job = self.cache.get(namespace, str(ref.get("name")))
        if job is not None and (job.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None   # a later Job of the same name: not this pod's
        return job

    def of_attempt(self, namespace: str, job: str, attempt: int) -> Optional[dict]:
        return self.cache.get(namespace, names.pod_name(job, attempt))

    def live_of_attempt(self, namespace: str, job: str, attempt: int) -> Optional[dict]:
        """The attempt's Job, read from the API, unless it is gone or being deleted."""
        found = jobapi.get_job(self.kube, namespace, names.pod_name(job, attempt))
        if found is None or (found.get("metadata") or {}).get("deletionTimestamp"):
            return None
        self.cache.note(found)
        return found

    def without_pod(self, namespace: str, job: str, attempt: int, restarts: int
                    ) -> Optional[lifecycle.Verdict]:
        """What the attempt's Job says when its pod is not there (None: no Job, or nothing)."""
        found = self.of_attempt(namespace, job, attempt)
        if found is None or (found.get("metadata") or {}).get("deletionTimestamp"):
            return None
        return lifecycle.jobs.without_pod(found, restarts=restarts)

    def amend(self, pod: dict, verdict: lifecycle.Verdict, *, now: float,
              settings: LifecycleSettings, main_container: str) -> lifecycle.Verdict:
        ref = workloads.owner_job(pod)
        if ref is None:
            return verdict
        job, gone = self._owner(pod, ref, verdict)
        if job is not None:
            verdict = lifecycle.jobs.with_pod(pod, job, verdict, now=now, settings=settings,
                                              restarts=lifecycle.restarts_of(pod),
                                              main_container=main_container)
        if gone:   # someone deleted the Job and its pod went with it (22g, 22h)
            namespace = (pod.get("metadata") or {}).get("namespace")
            verdict = lifecycle.jobs.job_deleted(pod, verdict, f"{namespace}/{ref.get('name')}",
                                                 main_container=main_container)
        return verdict

    def _owner(self, pod: dict, ref: dict, verdict: lifecycle.Verdict
               ) -> tuple[Optional[dict], bool]:
        """The pod's Job (None: not known) and whether it is gone or being deleted.

        From the cache, once it has listed the pod's namespace: right after a (re)start the pod
        watch can be first, and this waits for the Job list while it moves, as a status waits
        for the pod list. One API read where the cache cannot say: the list did not come (the
        API is down, the list stalls), or the pod is going and the cached Job does not say why
        (the Job controller writes FailureTarget or Suspended before it deletes the pod, but
        the two watches need not deliver in that order)."""
        m = pod.get("metadata") or {}
        namespace = str(m.get("namespace"))
        synced = self.cache.is_synced(namespace) or self.cache.wait_namespace_synced(namespace)
        job = self.of_pod(pod)
        unexplained = m.get("deletionTimestamp") and verdict.state.job_status not in (
            COMPLETED, HELD) and not (job is not None and (
                lifecycle.jobs.deadline_exceeded(job) or lifecycle.jobs.suspended(job)))
        if synced and not unexplained:
            return job, job is None or lifecycle.jobs.being_deleted(job)
        try:
            live = self.get(namespace, str(ref.get("name")))
        except ApiError as exc:
            log.info("could not read the Job of pod %s: %s", m.get("name"), exc)
            return job, job is not None and lifecycle.jobs.being_deleted(job)
        if live is None or (live.get("metadata") or {}).get("uid") != ref.get("uid"):
            return job, True        # 404, or a later Job of the same name: its own is gone
        return live, lifecycle.jobs.being_deleted(live)

    def sweep(self, namespace: str, job: str, rec: Optional[JobRecord], pods: list[dict],
              now: float, retention: float) -> Optional[float]:
        """Delete the job's Jobs that have no pod for the pod rules to clean up (a deadline
        hold whose pod the controller deleted, a superseded attempt whose pod never came, a
        cancelled one): after the retention once the result is recorded, at once otherwise.
        Returns when to look again."""
        if rec is None:
            return None
        with_pods = {workloads.attempt_name(p) for p in pods}
        again: Optional[float] = None
        for item in self.cache.pods_for_job(namespace, job):
            meta = item.get("metadata") or {}
            name = str(meta.get("name"))
            if meta.get("deletionTimestamp") or name in with_pods:
                continue
            try:
                attempt = int((meta.get("labels") or {}).get(names.LABEL_ATTEMPT, -1))
            except ValueError:
                continue
            if attempt == rec.attempt and not rec.cancelled:
                if rec.final is None:
                    continue              # its pod is still to come (or Kueue holds it)
                left = retention - (now - (rec.finished_at or now))
                if left > 0:
                    again = left if again is None else min(again, left)
                    continue
            elif attempt > rec.attempt:
                continue                  # made by a recreation not yet recorded here
            if self.delete(namespace, name):
                log.info("deleted Job %s/%s (no pod left to clean up)", namespace, name)
        return again

    # ---- writes
    def create_attempt(self, actions: PodActions, req: JobRequest, ad_text: str,
                       namespace: str, job: str, attempt: int, restarts: int, manifest: dict,
                       bundle: Optional[sandbox.InputBundle], creds: dict[str, bytes]) -> dict:
        """PodActions.create_attempt in job mode (the attempt is recorded already): the Job,
        adopted if its name exists, then its Secrets, owned by the Job. Its pod comes from the
        Job controller, into the pod cache, with kgahp's labels."""
        name = str((manifest.get("metadata") or {})["name"])
        created = create_or_adopt("Job", namespace, name,
                                  lambda: self.create(namespace, manifest),
                                  lambda: self.get(namespace, name))
        if created is None:
            return actions.create_attempt(req, ad_text, namespace, job, attempt + 1, restarts)
        try:
            actions.ensure_secrets(namespace, job, created, bundle, creds)
        except ApiError as exc:
            self.delete(namespace, name)
            raise KgahpError(f"could not create the job's secret for Job {namespace}/{name}: "
                             f"{exc}") from None   # the cause may quote the Secret
        log.info("created Job %s/%s (attempt %d, restarts %d) for %s", namespace, name, attempt,
                 restarts, req.job_directory)
        return created

    def blocks_recreate(self, namespace: str, job: str, attempt: int) -> bool:
        """Before recreating a vanished pod: True when the attempt's Job is still there and
        unfinished (its pod is on its way, or Kueue holds it back); a finished one is deleted
        (its pod is gone: nothing more to read from it)."""
        found = self.live_of_attempt(namespace, job, attempt)
        if found is None:
            return False
        if lifecycle.jobs.without_pod(found, restarts=0) is not None:
            log.info("job %s/%s: its Job %s is there and not finished; not recreating",
                     namespace, job, (found.get("metadata") or {}).get("name"))
            return True
        self.delete(namespace, str((found.get("metadata") or {}).get("name")))
        return False

    def create(self, namespace: str, manifest: dict) -> dict:
        created = jobapi.create_job(self.kube, namespace, manifest)
        with self._deleted_guard:
            self._deleted.pop((namespace, str((created.get("metadata") or {}).get("name"))),
                              None)
        self.cache.note(created)
        return created

    def get(self, namespace: str, name: str) -> Optional[dict]:
        found = jobapi.get_job(self.kube, namespace, name)
        if found is not None:
            self.cache.note(found)
        return found

    def delete(self, namespace: str, name: str) -> bool:
        """Delete one Job with its pods (propagation Background) and so its Secrets."""
        key = (namespace, name)
        with self._deleted_guard:
            if key in self._deleted:
                return False
        try:
            gone = jobapi.delete_job(self.kube, namespace, name)
        except ApiError as exc:
            log.warning("could not delete Job %s/%s: %s", namespace, name, exc)
            return False
        with self._deleted_guard:
            self._deleted[key] = None
            while len(self._deleted) > DELETED_REMEMBERED:
                self._deleted.popitem(last=False)
        return gone

    def delete_all(self, namespace: str, job: str, selector: str) -> int:
        """Delete every Job of `job` (cancel): from the API's list, not the cache, so a Job
        created a moment ago goes too. ApiError when the list fails."""
        found, _ = jobapi.list_jobs(self.kube, namespace, selector)
        gone = 0
        for item in found:
            meta = item.get("metadata") or {}
            if not meta.get("deletionTimestamp") and jobapi.delete_job(
                    self.kube, namespace, str(meta.get("name"))):
                gone += 1
        return gone
