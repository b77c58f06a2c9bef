"""The five BLAH verbs: ping, submit, status, cancel, refresh-proxy. Thin: submit and cancel
act through `PodActions` under the job's stripe lock; status reads the store, the cache and
`lifecycle.classify` and, where a verdict needs action, enqueues the job for the reconciler. A
status answer never writes the store.

Job ids are `kubernetes/<namespace>/<job>`, where `<job>` is derived from JobDirectory and
labels every pod and secret of the job. Pods are named `<job>-<attempt>`: a disruption or a
resubmission after release makes a new attempt under the same job id.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional

from kgahp import finalizers, lifecycle, sandbox
from kgahp.config import Settings
from kgahp.errors import ApiError, JobAdError, KgahpError, TransferError
from kgahp.jobad import parse_submit_ad
from kgahp.kube.api import Kube
from kgahp.kube.cache import PodCache
from kgahp.model import COMPLETED, IDLE, REMOVED, RUNNING, JobRequest, JobState
from kgahp.podactions import PodActions, attempt_of, is_active, meta, phase
from kgahp.podspec import build, names, policy
from kgahp.podspec.templates import Templates
from kgahp.reconciler import Reconciler
from kgahp.statusad import status_ad
from kgahp.store import JobRecord, JobStore

log = logging.getLogger(__name__)

JOB_ID_PREFIX = "kubernetes"
RUNNING_SHOWN_MAX = 100_000  # attempts remembered as shown RUNNING (cancelled ones never leave)
DRAIN_SECONDS = 5.0          # a graceful exit finishes queued reconciles for at most this long

Reply = tuple[int, str]
StatusReply = tuple[int, str, int, Optional[str]]   # code, message, JobStatus, ad


def parse_job_id(job_id: str, default_namespace: str) -> tuple[str, str, bool]:
    """(namespace, job or pod name, legacy). Accepts `kubernetes/<ns>/<job>` and the old
    scripts' `kubernetes/<pod>` (default namespace, a pod name)."""
    parts = job_id.split("/")
    if parts[0] == JOB_ID_PREFIX and len(parts) == 3 and parts[1] and parts[2]:
        return parts[1], parts[2], False
    if parts[0] == JOB_ID_PREFIX and len(parts) == 2 and parts[1]:
        return default_namespace, parts[1], True
    raise JobAdError(f"job id {job_id!r} is not of the form kubernetes/<namespace>/<job>")


class Service:
    """Implements the protocol server's Handlers."""

    def __init__(self, settings: Settings, kube: Kube, cache: PodCache, store: JobStore,
                 templates: Templates, *, clock: Callable[[], float] = time.time,
                 legacy_store: Optional[JobStore] = None) -> None:
        self.settings = settings
        self.kube = kube
        self.cache = cache
        self.store = store
        self.templates = templates
        self.clock = clock
        self.actions = PodActions(settings, kube, cache, store, templates, legacy_store)
        self.instance_labels = self.actions.instance_labels
        self.reconciler = Reconciler(self.actions, workers=settings.server.reconcile_workers,
                                     clock=lambda: self.clock())
        # (job, attempt) whose RUNNING a status answer has shown
        self._running_shown: set[tuple[str, int]] = set()
        self._running_guard = threading.Lock()
        self.reconciler.start()

    def _reply(self, job_id: str, state: JobState) -> StatusReply:
        return 0, "No error", state.job_status, status_ad(job_id, state)

    def _current_pod(self, namespace: str, job: str, rec: Optional[JobRecord]) -> Optional[dict]:
        pods = self.cache.pods_for_job(namespace, job)
        if rec is not None:
            pods = [p for p in pods if attempt_of(p) == rec.attempt] or pods
        return max(pods, key=attempt_of) if pods else None

    # ------------------------------------------------------------------ ping
    def ping(self, batch_type: str) -> Reply:
        try:
            version = self.kube.server_version()
            for ns in self.settings.kube.namespaces:
                allowed, reason = self.kube.can_i("create", "pods", ns)
                if not allowed:
                    return 1, (f"the Kubernetes identity in use may not create pods in namespace "
                               f"{ns}{' (' + reason + ')' if reason else ''}; grant it the "
                               "kgahp Role described in the README")
        except ApiError as exc:
            return 1, f"Kubernetes API not usable: {exc}"
        log.debug("ping ok: API server %s", version)
        return 0, "No error"

    # ------------------------------------------------------------------ submit
    def submit(self, ad_text: str) -> tuple[int, str, Optional[str]]:
        try:
            req = parse_submit_ad(ad_text)
            policy.check(req, self.settings, self.templates)
            namespace = build.choose_namespace(req, self.settings, self.templates)
            job = names.job_base_name(req.job_directory, self.settings.pod.pod_name_prefix)
            job_id = f"{JOB_ID_PREFIX}/{namespace}/{job}"
            with self.actions.lock_for(job):
                self._submit_locked(req, ad_text, namespace, job)
            return 0, "No error", job_id
        except KgahpError as exc:
            log.info("submit refused: %s", exc)
            return 1, str(exc), None

    def _submit_locked(self, req: JobRequest, ad_text: str, namespace: str, job: str) -> None:
        # Once the cache has listed the namespace it holds every pod of this instance: pods an
        # earlier (crashed) instance made were in that list, and pods this one makes are noted
        # into it at creation. Before that, ask the API.
        if self.cache.is_synced(namespace):
            existing = self.cache.pods_for_job(namespace, job)
        else:
            existing, _ = self.kube.list_pods(namespace, self.actions.job_selector(job))
        rec = self.store.get(job)
        if not existing and rec is None and self.actions.legacy_record(job) is not None:
            existing = self.actions.adopt_legacy(namespace, job)
            rec = self.store.get(job)
        live = sorted((p for p in existing if is_active(p)), key=attempt_of)
        if live:
            self._adopt(req, live[-1], job, namespace, ad_text, rec)
            log.info("submit: adopted live pod %s/%s for %s", namespace,
                     meta(live[-1]).get("name"), req.job_directory)
            return
        repeat = (rec is not None and not rec.cancelled and rec.namespace == namespace
                  and not (rec.final is not None and self.reconciler.reported(rec)))
        if repeat and rec is not None:
            # The gridmanager never saw this job's result: the submit repeats one whose answer
            # was lost (a crash). It is the same job, not a hold/release rerun.
            if rec.final is not None or any(attempt_of(p) == rec.attempt for p in existing):
                log.info("submit: %s already ran (result not yet reported); not rerunning",
                         req.job_directory)
                return
            # The recorded attempt's pod was never seen: its create was lost, or is still on
            # its way to the API server. The same name makes a late one collide (409) instead
            # of running the job twice, and the disruptions already counted stay counted.
            self.actions.create_attempt(req, ad_text, namespace, job, rec.attempt,
                                 restarts=rec.restarts)
            return
        attempt = max([attempt_of(p) for p in existing] + [rec.attempt if rec else -1]) + 1
        self.actions.create_attempt(req, ad_text, namespace, job, attempt, restarts=0)
        if existing:   # finished predecessors: nothing more to learn from them (the
            self.reconciler.enqueue(namespace, job)   # reconcile deletes superseded attempts)

    def _adopt(self, req: JobRequest, pod: dict, job: str, namespace: str, ad_text: str,
               rec: Optional[JobRecord]) -> None:
        """Make a live pod the job's current attempt (it was made by an earlier instance, or
        by a create whose answer was lost)."""
        self.cache.note(pod)
        if rec is None or rec.attempt != attempt_of(pod) or rec.final is not None:
            self.store.record_submit(job, namespace, attempt_of(pod), ad_text,
                                     restarts=lifecycle.restarts_of(pod))
        if phase(pod) == "Pending":
            # its maker may have died between creating it and its Secrets: without them it
            # would wait for its volumes forever
            try:
                self.actions.ensure_secrets(namespace, job, pod, *self.actions.secret_contents(req))
            except ApiError as exc:
                log.warning("could not check the Secrets of adopted pod %s/%s: %s", namespace,
                            meta(pod).get("name"), exc)

    # ------------------------------------------------------------------ status
    def status(self, job_id: str) -> StatusReply:
        answer = self._status(job_id, may_wait=True)
        assert answer is not None
        return answer

    def status_now(self, job_id: str) -> Optional[StatusReply]:
        """The answer if memory alone gives it (the store's mirror and the pod cache), else
        None: then `status` runs on a worker thread, where it may wait for the cache's first
        list or read the pod from the API. Returns None before doing anything it would have to
        undo, so the worker's `status` is the whole answer."""
        return self._status(job_id, may_wait=False)

    def _status(self, job_id: str, *, may_wait: bool) -> Optional[StatusReply]:
        try:
            namespace, job, legacy = parse_job_id(job_id, self.settings.kube.namespace)
        except JobAdError as exc:
            return 1, str(exc), 0, None
        rec = None if legacy else self.store.get(job)
        if rec is not None and rec.final is not None:
            if self._start_unseen(job, rec):
                # the gridmanager counts a start, writes the execute event and starts the wall
                # clock only on RUNNING: a job that ended between two polls shows it once
                return self._reply(job_id, JobState(RUNNING, worker_node=rec.final.worker_node))
            if not self.reconciler.reported(rec):
                self.reconciler.note_reported(namespace, job, rec.attempt)
            return self._reply(job_id, rec.final)
        if legacy:
            pod = self.cache.get(namespace, job)
        else:
            pod = self._current_pod(namespace, job, rec)
            if pod is None and rec is not None and not self.cache.is_synced(namespace):
                if not may_wait:
                    return None
                # Just (re)started: the first list answers every known job at once, while a
                # read per job would compete with that list for the QPS budget (benchmark:
                # recovery at 10,000 jobs 17 s and 220 requests -> 11 s and 21 requests).
                # Only this namespace's list matters, and it is worth waiting for while its
                # pages keep coming (at 100,000 jobs a fixed 15 s cost 3-5 direct reads).
                self.cache.wait_namespace_synced(namespace)
                pod = self._current_pod(namespace, job, rec)
        held_back = pod is None and rec is not None and self.actions.jobs is not None and \
            self.actions.jobs.of_attempt(namespace, job, rec.attempt) is not None
        if pod is None and not held_back and (rec is None or not self.cache.is_synced(namespace)
                                              or self.clock() - rec.submitted_at < 60):
            if not may_wait:
                return None
            try:  # a cache miss: one direct read, never "unknown" for a job just submitted
                pod = self._lookup(namespace, job, legacy, rec)
                old = None if pod is not None or rec is not None or legacy \
                    else self.actions.legacy_record(job)
                if old is not None:
                    # an older kgahp's job: a reconcile worker takes it over (relabels its
                    # pods, copies its record); this answer only reads what that kgahp left
                    self.reconciler.adopt_legacy(namespace, job)
                    if old.final is not None:
                        return self._reply(job_id, old.final)
                    pod = max(self.actions.legacy_pods(namespace, job), key=attempt_of,
                              default=None)
                    if pod is not None:
                        return self._reply(job_id, self.reconciler.classify(pod, old).state)
            except ApiError as exc:
                return 1, f"cannot read the pod of {job_id}: {exc}", 0, None
        if pod is None:
            state = self.reconciler.vanished(namespace, job, rec, record=False)
            if state.job_status == REMOVED and rec is not None:
                self.reconciler.note_reported(namespace, job, rec.attempt)
            return self._reply(job_id, state)
        verdict = self.reconciler.classify(pod, rec)
        self.reconciler.act(pod, verdict, rec, inline=False)
        state = verdict.state
        now = self.store.get(job) if rec is not None else None
        if now is not None and now.final is not None and now.attempt == attempt_of(pod):
            # the first final recorded is the answer, whatever this look at the pod says; a
            # completion is answered by the next status (which may first show RUNNING once)
            if now.final.job_status != COMPLETED:
                return self._reply(job_id, now.final)
            state = JobState(RUNNING, worker_node=now.final.worker_node)
        if verdict.action is lifecycle.Action.COLLECT:
            state = JobState(RUNNING, worker_node=(pod.get("spec") or {}).get("nodeName"))
        if state.job_status == RUNNING and rec is not None:
            self._note_running(job, rec.attempt)
        return self._reply(job_id, state)

    def _note_running(self, job: str, attempt: int) -> None:
        with self._running_guard:
            if len(self._running_shown) >= RUNNING_SHOWN_MAX:
                self._running_shown.clear()   # costs at most one more RUNNING answer each
            self._running_shown.add((job, attempt))

    def _start_unseen(self, job: str, rec: JobRecord) -> bool:
        """True once for a completed attempt whose start no status answer has shown (in this
        process); never after its COMPLETED was answered. The same for an attempt that ran and
        was disrupted under KGAHP_DISRUPTION_POLICY = remove (final Idle): a CE removes a job
        that is Idle after a start, and counts the start only on a Running answer."""
        key = (job, rec.attempt)
        reported = self.reconciler.reported(rec)
        with self._running_guard:
            if rec.final is None or rec.final.job_status not in (COMPLETED, IDLE) or reported:
                self._running_shown.discard(key)
                return False
            if key in self._running_shown:
                self._running_shown.discard(key)
                return False
            self._running_shown.add(key)
            return True

    def _lookup(self, namespace: str, job: str, legacy: bool,
                rec: Optional[JobRecord]) -> Optional[dict]:
        if legacy:
            pod = self.kube.get_pod(namespace, job)
        elif rec is not None:
            pod = self.kube.get_pod(namespace, names.pod_name(job, rec.attempt))
        else:
            pods, _ = self.kube.list_pods(namespace, self.actions.job_selector(job))
            pod = max(pods, key=attempt_of) if pods else None
        if pod is not None:
            self.cache.note(pod)
        return pod

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_id: str) -> Reply:
        try:
            namespace, job, legacy = parse_job_id(job_id, self.settings.kube.namespace)
        except JobAdError as exc:
            return 1, str(exc)
        try:
            if legacy:
                self.kube.delete_pod(namespace, job)
                return 0, "No error"
            with self.actions.lock_for(job):
                pods, _ = self.kube.list_pods(namespace, self.actions.job_selector(job))
                if not pods and self.store.get(job) is None and self.actions.legacy_record(job):
                    pods = self.actions.adopt_legacy(namespace, job)
                rec = self.store.update(job, cancelled=True)
                if self.actions.jobs is not None:   # job mode: the Jobs take their pods along
                    self.actions.jobs.delete_all(namespace, job, self.actions.job_selector(job))
                for pod in pods:
                    if not meta(pod).get("deletionTimestamp"):
                        self.kube.delete_pod(namespace, str(meta(pod).get("name")))
                # deleted first, so nothing of the job runs on; then nothing may stay stuck
                finalizers.release_all(self.kube, pods, "its job was cancelled")
                # Owned secrets go with their pod (garbage collection); this also catches one
                # orphaned by a crash between creating a pod and its secret. Best effort: the
                # cancel itself is about the pod.
                try:
                    self.kube.delete_secrets(namespace, self.actions.job_selector(job))
                except ApiError as exc:
                    log.warning("could not delete the secrets of %s: %s", job_id, exc)
                if rec is not None:
                    # the attempt's answer is "removed", whatever its pod's last status says
                    self.store.record_final(job, rec.attempt, JobState(
                        REMOVED, num_restarts=rec.restarts,
                        remove_reason=lifecycle.CANCELLED_REASON))
            log.info("cancelled %s (%d pods)", job_id, len(pods))
            return 0, "No error"
        except ApiError as exc:
            return 1, f"could not delete the pod of {job_id}: {exc}"

    # ------------------------------------------------------------------ refresh proxy
    def refresh_proxy(self, job_id: str, proxy_path: str) -> Reply:
        try:
            namespace, job, legacy = parse_job_id(job_id, self.settings.kube.namespace)
        except JobAdError as exc:
            return 1, str(exc)
        rec = None if legacy else self.store.get(job)
        if rec is not None and rec.final is not None:
            return 0, "No proxy to renew - job completed"
        pod = self.cache.get(namespace, job) if legacy else self._current_pod(namespace, job, rec)
        if pod is None and rec is not None and self.actions.jobs is not None:
            pod = self.actions.jobs.of_attempt(namespace, job, rec.attempt)  # no pod yet
        if pod is None or not is_active(pod):
            return 0, "No proxy to renew - job not active"
        try:
            proxy = sandbox.read_credential(proxy_path)
        except TransferError as exc:
            return 1, str(exc)
        try:
            self.actions.update_proxy(namespace, job, pod, proxy)
        except ApiError as exc:
            return 1, f"could not update the proxy of {job_id}: {exc}"
        log.info("refreshed the proxy of %s", job_id)
        return 0, "Proxy renewed"

    # ------------------------------------------------------------------ shutdown
    def close(self, secrets_deadline: float = 10.0, drain: float = DRAIN_SECONDS) -> None:
        """Stop watching, finish the reconciles already queued (at most `drain` seconds: an
        answer or a finalizer release due now is done by this GAHP, not left to the next
        one's start), then the Secrets still to delete."""
        self.cache.stop()
        if self.actions.jobs is not None:
            self.actions.jobs.stop()
        self.reconciler.stop(drain)
        self.actions.finish_secret_cleanup(secrets_deadline)
