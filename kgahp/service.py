"""The five BLAH verbs, composed from the other rooms: jobad → podspec/policy → sandbox → kube on
submit; pod cache → lifecycle → statusad on status. This module decides *when* things happen
(adopt, create, collect, recreate, delete); the pure rooms decide *what*.

Job ids are `kubernetes/<namespace>/<job>`, where `<job>` is derived from JobDirectory and
labels every pod and secret of the job. Pods are named `<job>-<attempt>`: a disruption or a
resubmission after release makes a new attempt under the same job id.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import Any, Callable, Optional

from kgahp import lifecycle, manifests, sandbox
from kgahp.config import Settings
from kgahp.errors import ApiError, ConflictError, JobAdError, KgahpError, TransferError
from kgahp.jobad import parse_submit_ad
from kgahp.kube import events
from kgahp.kube.api import Kube, label_selector
from kgahp.kube.cache import PodCache
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING, JobRequest, JobState
from kgahp.podspec import build, names, policy
from kgahp.podspec.templates import Templates
from kgahp.statusad import status_ad
from kgahp.store import JobRecord, JobStore
from kgahp.workqueue import WorkQueue

log = logging.getLogger(__name__)

JOB_ID_PREFIX = "kubernetes"
ANN_TRANSFER = manifests.ANN_TRANSFER
TRANSFER_HOLD_CODE = 12     # HTCondor's TransferOutputError
TERMINAL_PHASES = ("Succeeded", "Failed")
MOUNT_CHECK_AFTER = 10.0    # seconds on a node without starting before a pod's events are read
MOUNT_CHECK_EVERY = 15.0    # ... at most this often per namespace
STARTUP_SYNC_WAIT = 15.0    # seconds a status waits for the first pod list before a direct read
JOB_LOCK_STRIPES = 64      # submit, cancel and recreation of one job are serialised by these
RUNNING_SHOWN_MAX = 100_000  # attempts remembered as shown RUNNING (cancelled ones never leave)
COLLECT_RETRY = 15.0        # seconds before outputs that could not be read are tried again
CPU_LOG_LIMIT = 262144      # bytes of a shared-mode pod's log read for the wrapper's CPU line

Reply2 = tuple[int, str]
# work queue keys: ("job", namespace, job), ("mounts", namespace), ("secrets", namespace, pod)
WorkKey = tuple[str, ...]


def parse_job_id(job_id: str, default_namespace: str) -> tuple[str, str, bool]:
    """(namespace, job or pod name, legacy). Accepts `kubernetes/<ns>/<job>` and the old
    scripts' `kubernetes/<pod>` (default namespace, a pod name)."""
    parts = job_id.split("/")
    if parts[0] == JOB_ID_PREFIX and len(parts) == 3 and parts[1] and parts[2]:
        return parts[1], parts[2], False
    if parts[0] == JOB_ID_PREFIX and len(parts) == 2 and parts[1]:
        return default_namespace, parts[1], True
    raise JobAdError(f"job id {job_id!r} is not of the form kubernetes/<namespace>/<job>")


def _meta(pod: dict) -> dict:
    return pod.get("metadata") or {}


def _attempt(pod: dict) -> int:
    try:
        return int((_meta(pod).get("labels") or {}).get(names.LABEL_ATTEMPT, -1))
    except ValueError:
        return -1


def _phase(pod: dict) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def _is_active(pod: dict) -> bool:
    """Still running or about to: adopt it rather than create a second pod."""
    return _phase(pod) not in TERMINAL_PHASES and not _meta(pod).get("deletionTimestamp")


def _request_from_pod(pod: dict) -> Optional[JobRequest]:
    raw = (_meta(pod).get("annotations") or {}).get(ANN_TRANSFER)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
        out = spec.get("transfer_output")
        return JobRequest(
            job_directory=str(spec.get("job_directory") or ""), cmd="", iwd=str(spec["iwd"]),
            stdout=spec.get("out"), stderr=spec.get("err"),
            transfer_output=tuple(out) if out is not None else None,
            output_remaps=tuple((str(a), str(b)) for a, b in spec.get("remaps") or []))
    except (ValueError, KeyError, TypeError):
        return None


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
        self.instance_labels = {
            names.LABEL_MANAGED_BY: "kgahp",
            names.LABEL_INSTANCE: names.label_value(settings.instance),
        }
        legacy = settings.legacy_instance
        self.legacy_labels = {names.LABEL_MANAGED_BY: "kgahp",
                              names.LABEL_INSTANCE: names.label_value(legacy)} if legacy else None
        self.legacy_store = legacy_store
        self._stripes = tuple(threading.Lock() for _ in range(JOB_LOCK_STRIPES))
        # FailedMount messages by (namespace, pod); when each namespace's events were last read
        self._mount_errors: dict[tuple[str, str], str] = {}
        self._mounts_checked: dict[str, float] = {}
        self._mounts_guard = threading.Lock()
        # the last state of each pod deleted since its job was last reconciled (the cache no
        # longer has it, and it says why it went), by (namespace, job); and the jobs whose pod
        # a status found gone, to be recreated. Both are emptied by the job's reconcile.
        self._departed: dict[tuple[str, str], dict[str, dict]] = {}
        self._recreate_wanted: set[tuple[str, str]] = set()
        self._pending_guard = threading.Lock()
        # (job, attempt) whose RUNNING a status answer has shown
        self._running_shown: set[tuple[str, int]] = set()
        self._running_guard = threading.Lock()
        # (namespace, pod) whose Secrets are to go now that the job's result is recorded; and
        # those already gone (in this process), so a watch event does not ask again
        self._secrets_pending: dict[tuple[str, str], tuple[str, ...]] = {}
        self._secrets_done: set[tuple[str, str]] = set()
        self._secrets_guard = threading.Lock()
        self.queue: WorkQueue[WorkKey] = WorkQueue(
            self._handle, workers=settings.server.reconcile_workers, name="reconcile")
        self.queue.start()
        cache.add_listener(self._on_pod_event)

    # ------------------------------------------------------------------ helpers
    def _lock_for(self, job: str) -> threading.Lock:
        """One of a fixed set of locks (no memory per job): submit, cancel and a recreation
        of the same job never overlap."""
        return self._stripes[hash(job) % len(self._stripes)]

    def _job_selector(self, job: str) -> str:
        return label_selector({**self.instance_labels, names.LABEL_JOB: job})

    def _adopt_legacy(self, namespace: str, job: str) -> list[dict]:
        """Pods and the record an older kgahp made for `job` under the old default instance
        label (the user name, shared by every GAHP of the user). Called only for a job this
        GAHP knows nothing of, that its gridmanager names (by submit, status or cancel): job
        names carry the schedd, so such a job is this GAHP's. Its pods are relabelled to this
        instance and its record copied over; other GAHPs' jobs stay untouched."""
        old = self._legacy_record(job)
        if old is None or self.legacy_labels is None:
            return []
        pods, _ = self.kube.list_pods(
            namespace, label_selector({**self.legacy_labels, names.LABEL_JOB: job}))
        if old.namespace == namespace:
            self.store.import_record(old)
        adopted = []
        for pod in pods:
            name = str(_meta(pod).get("name"))
            try:
                pod = self.kube.patch_pod_labels(
                    namespace, name, {names.LABEL_INSTANCE: self.instance_labels[
                        names.LABEL_INSTANCE]})
            except ApiError as exc:
                if exc.status == 404:
                    continue
                raise
            self.cache.note(pod)
            adopted.append(pod)
        if adopted or old.namespace == namespace:
            log.info("took over job %s/%s from the old default instance %s (%d pods)",
                     namespace, job, self.legacy_labels[names.LABEL_INSTANCE], len(adopted))
        return adopted

    def _legacy_record(self, job: str) -> Optional[JobRecord]:
        """The older kgahp's record of `job` (an in-memory look-up: no request for the jobs
        an older kgahp never made, so new submits cost nothing extra)."""
        if self.legacy_labels is None or self.legacy_store is None:
            return None
        return self.legacy_store.get(job)

    def _reply(self, job_id: str, state: JobState) -> tuple[int, str, int, Optional[str]]:
        return 0, "No error", state.job_status, status_ad(job_id, state)

    def enqueue(self, namespace: str, job: str, after: float = 0.0) -> None:
        """Ask for the job to be reconciled (now, or in `after` seconds)."""
        self.queue.add(("job", namespace, job), after)

    def _current_pod(self, namespace: str, job: str, rec: Optional[JobRecord]) -> Optional[dict]:
        pods = self.cache.pods_for_job(namespace, job)
        if rec is not None:
            pods = [p for p in pods if _attempt(p) == rec.attempt] or pods
        return max(pods, key=_attempt) if pods else None

    # ------------------------------------------------------------------ ping
    def ping(self, batch_type: str) -> Reply2:
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
            with self._lock_for(job):
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
            existing, _ = self.kube.list_pods(namespace, self._job_selector(job))
        rec = self.store.get(job)
        if not existing and rec is None and self._legacy_record(job) is not None:
            existing = self._adopt_legacy(namespace, job)
            rec = self.store.get(job)
        live = sorted((p for p in existing if _is_active(p)), key=_attempt)
        if live:
            self._adopt(req, live[-1], job, namespace, ad_text, rec)
            log.info("submit: adopted live pod %s/%s for %s", namespace,
                     _meta(live[-1]).get("name"), req.job_directory)
            return
        repeat = (rec is not None and not rec.cancelled and rec.namespace == namespace
                  and not (rec.final is not None and rec.reported))
        if repeat and rec is not None:
            # The gridmanager never saw this job's result: the submit repeats one whose answer
            # was lost (a crash). It is the same job, not a hold/release rerun.
            if rec.final is not None or any(_attempt(p) == rec.attempt for p in existing):
                log.info("submit: %s already ran (result not yet reported); not rerunning",
                         req.job_directory)
                return
            # The recorded attempt's pod was never seen: its create was lost, or is still on
            # its way to the API server. The same name makes a late one collide (409) instead
            # of running the job twice, and the disruptions already counted stay counted.
            self._create_attempt(req, ad_text, namespace, job, rec.attempt,
                                 restarts=rec.restarts)
            return
        attempt = max([_attempt(p) for p in existing] + [rec.attempt if rec else -1]) + 1
        self._create_attempt(req, ad_text, namespace, job, attempt, restarts=0)
        if existing:   # finished predecessors: nothing more to learn from them (the
            self.enqueue(namespace, job)   # reconcile deletes superseded attempts)

    def _adopt(self, req: JobRequest, pod: dict, job: str, namespace: str, ad_text: str,
               rec: Optional[JobRecord]) -> None:
        """Make a live pod the job's current attempt (it was made by an earlier instance, or
        by a create whose answer was lost)."""
        self.cache.note(pod)
        if rec is None or rec.attempt != _attempt(pod) or rec.final is not None:
            self.store.record_submit(job, namespace, _attempt(pod), ad_text,
                                     restarts=lifecycle.restarts_of(pod))
        if _phase(pod) == "Pending":
            # its maker may have died between creating it and its Secrets: without them it
            # would wait for its volumes forever
            try:
                self._ensure_secrets(namespace, job, pod, *self._secret_contents(req))
            except ApiError as exc:
                log.warning("could not check the Secrets of adopted pod %s/%s: %s", namespace,
                            _meta(pod).get("name"), exc)

    def _create_attempt(self, req: JobRequest, ad_text: str, namespace: str, job: str,
                        attempt: int, restarts: int) -> dict:
        bundle, creds = self._secret_contents(req)
        pod = manifests.assemble(req, self.settings, self.templates, attempt=attempt,
                                 restarts=restarts, bundle=bundle, creds=creds).pod
        name = _meta(pod)["name"]

        # Recorded first: a crash after the create still knows the name it may have made.
        self.store.record_submit(job, namespace, attempt, ad_text, restarts=restarts)
        try:
            created = self.kube.create_pod(namespace, pod)
        except ConflictError:
            # The name exists: a retried or lost create that had in fact succeeded, perhaps
            # made by an instance that died. It is this attempt's pod: adopt it.
            found = self.kube.get_pod(namespace, name)
            if found is not None and _meta(found).get("deletionTimestamp"):
                return self._create_attempt(req, ad_text, namespace, job, attempt + 1, restarts)
            created = found if found is not None else self.kube.create_pod(namespace, pod)
            if lifecycle.restarts_of(created) != restarts:
                self.store.update(job, restarts=lifecycle.restarts_of(created))
            log.info("pod %s/%s already existed; adopted it", namespace, name)
        except ApiError as exc:
            if exc.transient:
                raise
            raise KgahpError(f"Kubernetes refused pod {namespace}/{name}: {exc}") from None
        try:
            self._ensure_secrets(namespace, job, created, bundle, creds)
        except ApiError as exc:
            # A pod without its inputs would wait forever: take it back, fail the submit.
            self.kube.delete_pod(namespace, name, grace_seconds=0)
            raise KgahpError(f"could not create the job's secret for pod {namespace}/{name}: "
                             f"{exc}") from None
        self.cache.note(created)
        log.info("created pod %s/%s (attempt %d, restarts %d) for %s", namespace, name, attempt,
                 restarts, req.job_directory)
        return created

    def _secret_contents(self, req: JobRequest
                         ) -> tuple[Optional[sandbox.InputBundle], dict[str, bytes]]:
        """What the job's input and credential Secrets carry, read from Iwd now."""
        return manifests.secret_contents(req, self.settings.transfer)

    def _ensure_secrets(self, namespace: str, job: str, pod: dict,
                        bundle: Optional[sandbox.InputBundle], creds: dict[str, bytes]) -> None:
        """Create the pod's input and credential Secrets, owned by the pod (so they go with
        it); existing ones are brought up to date."""
        owner = manifests.owner_reference(pod)
        for manifest in manifests.secret_manifests(pod, bundle, creds):
            self._create_secret(namespace, manifest, owner)

    def _create_secret(self, namespace: str, manifest: dict[str, Any], owner: dict) -> None:
        manifest.setdefault("metadata", {})["ownerReferences"] = [owner]
        try:
            self.kube.create_secret(namespace, manifest)
        except ConflictError:
            self.kube.patch_secret(namespace, manifest["metadata"]["name"],
                                   {"data": manifest.get("data") or {},
                                    "metadata": {"ownerReferences": [owner]}})

    # ------------------------------------------------------------------ status
    def status(self, job_id: str) -> tuple[int, str, int, Optional[str]]:
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
            if not rec.reported:
                self.store.update(job, reported=True)
            return self._reply(job_id, rec.final)
        if legacy:
            pod = self.cache.get(namespace, job)
        else:
            pod = self._current_pod(namespace, job, rec)
            if pod is None and rec is not None and not self.cache.is_synced(namespace):
                # Just (re)started: the first list answers every known job at once, while a
                # read per job would compete with that list for the QPS budget (benchmark:
                # recovery at 10,000 jobs 17 s and 220 requests -> 11 s and 21 requests).
                self.cache.wait_synced(STARTUP_SYNC_WAIT)
                pod = self._current_pod(namespace, job, rec)
        if pod is None and (rec is None or not self.cache.is_synced(namespace)
                            or self.clock() - rec.submitted_at < 60):
            try:  # a cache miss: one direct read, never "unknown" for a job just submitted
                pod = self._lookup(namespace, job, legacy, rec)
                if pod is None and rec is None and not legacy and self._legacy_record(job):
                    pod = max(self._adopt_legacy(namespace, job), key=_attempt, default=None)
                    rec = self.store.get(job)
                    if rec is not None and rec.final is not None:
                        return self._reply(job_id, rec.final)
            except ApiError as exc:
                return 1, f"cannot read the pod of {job_id}: {exc}", 0, None
        if pod is None:
            state = self._vanished(namespace, job, rec)
            if state.job_status == REMOVED and rec is not None:
                self.store.update(job, reported=True)   # recorded final by _vanished
            return self._reply(job_id, state)
        verdict = self._classify(pod, rec)
        self._act(pod, verdict, rec, inline=False)
        state = verdict.state
        now = self.store.get(job) if rec is not None else None
        if now is not None and now.final is not None and now.attempt == _attempt(pod):
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
        process); never after its COMPLETED was answered."""
        key = (job, rec.attempt)
        with self._running_guard:
            if rec.final is None or rec.final.job_status != COMPLETED or rec.reported:
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
            pods, _ = self.kube.list_pods(namespace, self._job_selector(job))
            pod = max(pods, key=_attempt) if pods else None
        if pod is not None:
            self.cache.note(pod)
        return pod

    def _classify(self, pod: dict, rec: Optional[JobRecord]) -> lifecycle.Verdict:
        meta = _meta(pod)
        return lifecycle.classify(
            pod, now=self.clock(), settings=self.settings.lifecycle,
            main_container=build.MAIN_CONTAINER, restarts=lifecycle.restarts_of(pod),
            deleted_by_kgahp=bool(rec and rec.cancelled),
            mount_error=self._mount_error(str(meta.get("namespace")), str(meta.get("name"))),
            ever_started=bool(rec and rec.started and rec.attempt == _attempt(pod)))

    def _mount_error(self, namespace: str, name: str) -> str:
        with self._mounts_guard:
            return self._mount_errors.get((namespace, name), "")

    def _maybe_check_mounts(self, pod: dict) -> None:
        """A pod on a node that has not started its containers for a while may be waiting for
        a volume: read the namespace's FailedMount events (one request, at most every
        MOUNT_CHECK_EVERY seconds), so the lifecycle can hold such pods, and recreate a Secret
        of the job's own that is missing (its maker died between the pod and the Secret)."""
        meta = _meta(pod)
        if _phase(pod) != "Pending" or not (pod.get("spec") or {}).get(
                "nodeName") or meta.get("deletionTimestamp"):
            return
        created = lifecycle.parse_time(meta.get("creationTimestamp"))
        now = self.clock()
        namespace = str(meta.get("namespace"))
        if created is None or now - created < MOUNT_CHECK_AFTER:
            return
        with self._mounts_guard:
            if now - self._mounts_checked.get(namespace, 0.0) < MOUNT_CHECK_EVERY:
                return
            self._mounts_checked[namespace] = now
        self.queue.add(("mounts", namespace))

    def _check_mounts(self, namespace: str) -> None:
        try:
            failures = events.mount_failures(self.kube, namespace)
        except ApiError as exc:
            log.warning("could not read the FailedMount events of %s: %s", namespace, exc)
            return
        for name, message in failures.items():
            pod = self.cache.get(namespace, name)
            if pod is None or _phase(pod) != "Pending":
                continue
            if message and not self._repair_secrets(pod, message):
                with self._mounts_guard:
                    known = self._mount_errors.get((namespace, name))
                    self._mount_errors[(namespace, name)] = message
                if known != message:
                    log.info("pod %s/%s cannot mount a volume: %s", namespace, name, message)

    def _repair_secrets(self, pod: dict, message: str) -> bool:
        """Recreate the pod's own Secrets when the kubelet says one of them is missing."""
        meta = _meta(pod)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        missing = [s for s in (f"{name}-input", f"{name}-proxy")
                   if f'secret "{s}" not found' in message]
        job = (meta.get("labels") or {}).get(names.LABEL_JOB, "")
        rec = self.store.get(job) if job and missing else None
        if rec is None or not rec.ad:
            return False
        try:
            self._ensure_secrets(namespace, job, pod,
                                 *self._secret_contents(parse_submit_ad(rec.ad)))
        except (KgahpError, OSError) as exc:
            log.warning("pod %s/%s waits for its missing Secret(s) %s, which kgahp could not "
                        "recreate: %s", namespace, name, ", ".join(missing), exc)
            return False
        log.warning("pod %s/%s was waiting for its missing Secret(s) %s; recreated them",
                    namespace, name, ", ".join(missing))
        return True

    def _vanished(self, namespace: str, job: str, rec: Optional[JobRecord]) -> JobState:
        if rec is None or rec.cancelled:
            # Nothing kgahp knows of: it cannot have finished well, so never COMPLETED.
            return JobState(REMOVED)
        with self._pending_guard:
            recreating = (namespace, job) in self._recreate_wanted
        if recreating:
            # a disrupted pod (an eviction) can be gone before its successor is recorded:
            # that is a job being moved, not one deleted
            return JobState(IDLE, num_restarts=rec.restarts + 1)
        verdict = lifecycle.vanished(ever_started=rec.started, restarts=rec.restarts,
                                     settings=self.settings.lifecycle, namespace=namespace,
                                     name=names.pod_name(job, rec.attempt))
        if verdict.action is lifecycle.Action.RECREATE:
            with self._pending_guard:
                self._recreate_wanted.add((namespace, job))
            self.enqueue(namespace, job)
        elif verdict.state.job_status == REMOVED:
            if self._record_final(namespace, job, rec.attempt, verdict.state,
                                  "vanished after it started; reporting it removed"):
                return verdict.state
            final = (self.store.get(job) or rec).final
            return final if final is not None else verdict.state
        return verdict.state

    def _record_final(self, namespace: str, job: str, attempt: int, state: JobState,
                      what: str, pod: Optional[dict] = None) -> bool:
        """Record the attempt's one final answer (the first recorded wins: the store refuses
        later ones) and let `pod`'s Secrets go: the finished pod no longer needs them."""
        if not self.store.record_final(job, attempt, state):
            log.debug("job %s/%s attempt %d already has its final answer; not recording %s",
                      namespace, job, attempt, what)
            return False
        log.info("job %s/%s %s: JobStatus %d exit %s signal %s hold %s", namespace, job, what,
                 state.job_status, state.exit_code, state.exit_signal, state.hold_code)
        if pod is not None and _attempt(pod) == attempt:
            self._drop_secrets(pod)
        return True

    def _drop_secrets(self, pod: dict) -> None:
        """Schedule the deletion of the job's own Secrets that `pod` mounts (`<pod>-input`,
        `<pod>-proxy`; never a Secret of the admin's template). None mounted: no request."""
        meta = _meta(pod)
        namespace, pod_name = str(meta.get("namespace")), str(meta.get("name"))
        own = tuple(sorted({
            str((v.get("secret") or {}).get("secretName"))
            for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and str((v.get("secret") or {}).get(
                "secretName") or "") in (f"{pod_name}-input", f"{pod_name}-proxy")}))
        key = (namespace, pod_name)
        with self._secrets_guard:
            if not own or key in self._secrets_done:
                return
            self._secrets_pending[key] = own
        self.queue.add(("secrets", namespace, pod_name))

    def _delete_secrets_of(self, namespace: str, pod_name: str, retry: bool = True) -> None:
        key = (namespace, pod_name)
        with self._secrets_guard:
            secrets = self._secrets_pending.get(key)
        if not secrets:
            return
        try:
            gone = [s for s in secrets if self.kube.delete_secret(namespace, s, retry=retry)]
        except ApiError as exc:
            log.warning("could not delete the Secrets of pod %s/%s: %s", namespace, pod_name,
                        exc)
            return
        with self._secrets_guard:
            self._secrets_pending.pop(key, None)
            self._secrets_done.add(key)
        if gone:
            log.info("deleted Secret(s) %s of finished pod %s/%s", ", ".join(gone), namespace,
                     pod_name)

    # ------------------------------------------------------------------ reconciliation
    def _on_pod_event(self, kind: str, pod: dict) -> None:
        """Called from the watch thread for every change. It only notes what the cache can no
        longer tell (a deleted pod's last state) and enqueues the job: the reconcile, on a
        worker, decides and acts, so a slow store or API never stalls the watch."""
        meta = _meta(pod)
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if kind == "DELETED" or _phase(pod) != "Pending":
            with self._mounts_guard:
                self._mount_errors.pop(key, None)
            if kind == "DELETED":
                with self._secrets_guard:   # its Secrets went with it (owner references)
                    self._secrets_done.discard(key)
                    self._secrets_pending.pop(key, None)
        job = (meta.get("labels") or {}).get(names.LABEL_JOB)
        if not job:
            return
        if kind == "DELETED":
            with self._pending_guard:
                self._departed.setdefault((key[0], job), {})[key[1]] = pod
        self.enqueue(key[0], job)

    def _handle(self, key: WorkKey) -> Optional[float]:
        if key[0] == "job":
            return self.reconcile(key[1], key[2])
        if key[0] == "mounts":
            self._check_mounts(key[1])
        elif key[0] == "secrets":
            self._delete_secrets_of(key[1], key[2])
        return None

    def reconcile(self, namespace: str, job: str) -> Optional[float]:
        """Bring the job's pods in line with its record: level-based (the pods are read from
        the cache and the record from the store now, never taken from an event), so running
        it again, or for nothing, is harmless. Returns when to look again, if ever."""
        with self._pending_guard:
            departed = self._departed.pop((namespace, job), {})
            recreate = (namespace, job) in self._recreate_wanted
        try:
            for pod in departed.values():
                self._reconcile_pod("DELETED", job, pod)
            if recreate:
                self._recreate_vanished(namespace, job)
        finally:
            if recreate:
                with self._pending_guard:
                    self._recreate_wanted.discard((namespace, job))
        again = [self._reconcile_pod("CURRENT", job, pod)
                 for pod in self.cache.pods_for_job(namespace, job)]
        return min((a for a in again if a is not None), default=None)

    def _recreate_vanished(self, namespace: str, job: str) -> None:
        """A status found the job's pod gone (and the rules say: a new one)."""
        rec = self.store.get(job)
        if rec is None or rec.cancelled or rec.final is not None:
            return
        if any(_attempt(p) >= rec.attempt for p in self.cache.pods_for_job(namespace, job)):
            return   # not vanished after all: the pod's own classification decides
        self._recreate(namespace, job, None)

    def _reconcile_pod(self, kind: str, job: str, pod: dict) -> Optional[float]:
        meta = _meta(pod)
        namespace = str(meta.get("namespace"))
        rec = self.store.get(job)
        if rec is not None and _attempt(pod) != rec.attempt:
            if any(_attempt(p) == rec.attempt for p in self.cache.pods_for_job(namespace, job)):
                # superseded: its fate no longer matters, and a crash may have cost it the
                # delete that recreation or resubmission asked for
                if kind != "DELETED" and not meta.get("deletionTimestamp"):
                    self._delete_pod(pod)
                return None
            # the store names an attempt that was never created (a crash between recording
            # it and creating its pod): this pod is still the job's, as status treats it
        if kind == "DELETED":
            if rec is not None and rec.final is None and not rec.cancelled:
                # The last state of a pod a node controller deleted (node lost, preemption)
                # still says why: a disruption, so a new pod, not "removed".
                verdict = self._classify(pod, rec)
                if verdict.action is lifecycle.Action.RECREATE or \
                        verdict.state.job_status == REMOVED:
                    self._act(pod, verdict, rec, inline=True)
                else:
                    self._vanished(namespace, job, rec)
                    self._recreate_if_wanted(namespace, job)
            return None
        if rec is not None and rec.final is not None:
            if rec.cancelled:   # still force-delete a cancelled pod stuck terminating
                verdict = self._classify(pod, rec)
                if verdict.action is lifecycle.Action.DELETE:
                    self._act(pod, verdict, rec, inline=True)
            if _attempt(pod) == rec.attempt:
                # a GAHP that stopped before deleting them: the Secrets go now
                self._drop_secrets(pod)
            return self._cleanup(pod, rec)
        return self._act(pod, self._classify(pod, rec), rec, inline=True)

    def _recreate_if_wanted(self, namespace: str, job: str) -> None:
        with self._pending_guard:
            wanted = (namespace, job) in self._recreate_wanted
        if wanted:
            try:
                self._recreate(namespace, job, None)
            finally:
                with self._pending_guard:
                    self._recreate_wanted.discard((namespace, job))

    def _act(self, pod: dict, verdict: lifecycle.Verdict, rec: Optional[JobRecord], *,
             inline: bool) -> Optional[float]:
        """Record what the verdict settles, then act on it: `inline` on the job's reconcile
        worker; otherwise (a status answer) only enqueue the job, whose reconcile will
        classify the pod again and act."""
        meta = _meta(pod)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        job = (meta.get("labels") or {}).get(names.LABEL_JOB, name)
        if rec is not None and not rec.started and verdict.state.job_status == RUNNING:
            self.store.update(job, started=True)
        if verdict.state.job_status == IDLE:
            self._maybe_check_mounts(pod)
        if verdict.state.job_status == REMOVED and rec is not None and rec.final is None \
                and _attempt(pod) == rec.attempt:
            # deleted by someone else, or cancelled: that is the attempt's answer, now, before
            # the kubelet's last status makes the pod look like it ended on its own
            self._record_final(namespace, job, rec.attempt, verdict.state,
                               f"removed ({verdict.reason})", pod)
        action = verdict.action
        if action is lifecycle.Action.NONE:
            return None
        if action is lifecycle.Action.COLLECT and rec is not None and rec.cancelled:
            return None   # a pod kgahp is deleting is never collected
        if action is lifecycle.Action.RECREATE and (rec is None or rec.cancelled):
            return None
        if not inline:
            if action is lifecycle.Action.RECREATE:
                with self._pending_guard:   # status shows IDLE meanwhile, not "vanished"
                    self._recreate_wanted.add((namespace, job))
            self.enqueue(namespace, job)
            return None
        if action is lifecycle.Action.COLLECT:
            return self._collect(pod, job, verdict.final or verdict.state)
        if action is lifecycle.Action.RECREATE:
            self._recreate_marked(namespace, job, pod)
        elif action is lifecycle.Action.DELETE:
            if verdict.state.job_status == IDLE and rec is not None and not rec.cancelled:
                # node lost: the job deserves another pod. Recreate first, so the old pod's
                # DELETED event already belongs to a superseded attempt.
                self._recreate_marked(namespace, job, pod)
            self._delete_pod(pod, grace_seconds=0)
        return None

    def _recreate_marked(self, namespace: str, job: str, pod: Optional[dict]) -> None:
        """Recreate, showing the job as being moved (IDLE) to status meanwhile."""
        with self._pending_guard:
            self._recreate_wanted.add((namespace, job))
        try:
            self._recreate(namespace, job, pod)
        finally:
            with self._pending_guard:
                self._recreate_wanted.discard((namespace, job))

    def _collect(self, pod: dict, job: str, final: JobState) -> Optional[float]:
        """Fetch a finished pod's outputs and record its result. Returns when to try again
        (outputs not readable yet) or when its pod is due for deletion."""
        meta = _meta(pod)
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        rec = self.store.get(job)
        if rec is None:   # store lost or legacy pod: rebuild the record from the cluster
            rec = self.store.record_submit(job, namespace, _attempt(pod), "",
                                           restarts=lifecycle.restarts_of(pod))
        if rec.final is not None or rec.cancelled:
            return None   # answered already, or kgahp is deleting it: never collected
        req = _request_from_pod(pod)
        state = final
        transfer = self.settings.transfer
        text: Optional[str] = None
        if req is not None and transfer.mode == "api" and final.job_status == COMPLETED:
            try:
                limit = transfer.max_output_bytes * 4 // 3 + 65536
                text = self.kube.read_log(namespace, name, build.MAIN_CONTAINER, limit)
                written = sandbox.extract_outputs(text, req, transfer)
                log.info("collected %d output files of %s/%s into %s", len(written),
                         namespace, name, req.iwd)
            except TransferError as exc:
                state = JobState(HELD, hold_code=TRANSFER_HOLD_CODE, hold_subcode=0,
                                 hold_reason=f"{exc} (pod {namespace}/{name})",
                                 worker_node=final.worker_node)
            except ApiError as exc:
                if exc.transient or exc.status == 0:
                    log.warning("could not fetch outputs of %s/%s yet (%s); will retry",
                                namespace, name, exc)
                    return COLLECT_RETRY
                state = JobState(HELD, hold_code=TRANSFER_HOLD_CODE, hold_subcode=0,
                                 hold_reason=f"outputs of pod {namespace}/{name} could not be "
                                 f"fetched: {exc}", worker_node=final.worker_node)
        if req is not None:
            state = self._with_cpu(state, namespace, name, text)
        self._record_final(namespace, job, rec.attempt, state, "finished", pod)
        rec = self.store.get(job)
        return self._cleanup(pod, rec) if rec is not None else None

    def _with_cpu(self, state: JobState, namespace: str, name: str,
                  text: Optional[str]) -> JobState:
        """RemoteUserCpu/RemoteSysCpu of a completed job, from the CPU line its wrapper left on
        the log (api and shared modes; `none` runs no wrapper, so nothing is reported)."""
        mode = self.settings.transfer.mode
        if state.job_status != COMPLETED or mode == "none":
            return state
        if text is None:
            try:
                text = self.kube.read_log(namespace, name, build.MAIN_CONTAINER, CPU_LOG_LIMIT)
            except ApiError as exc:
                log.info("no CPU figures for %s/%s: %s", namespace, name, exc)
                return state
        usage = sandbox.cpu_usage(text)
        if usage is None:
            return state
        return dataclasses.replace(state, remote_user_cpu=usage.user,
                                   remote_sys_cpu=usage.system)

    def _cleanup(self, pod: dict, rec: JobRecord) -> Optional[float]:
        """Delete a finished pod (and, by ownership, its secrets) once the retention is over;
        before that, say when to look again."""
        if _meta(pod).get("deletionTimestamp"):
            return None
        age = self.clock() - (rec.finished_at or self.clock())
        delay = self.settings.lifecycle.pod_retention - age
        if delay > 0:
            return delay
        self._delete_pod(pod)
        return None

    def _recreate(self, namespace: str, job: str, old: Optional[dict]) -> None:
        with self._lock_for(job):
            rec = self.store.get(job)
            if rec is None or rec.cancelled or rec.final is not None:
                return
            attempt, restarts = rec.attempt + 1, rec.restarts + 1
            if old is not None and _attempt(old) != rec.attempt:
                if _attempt(old) > rec.attempt or any(
                        _attempt(p) == rec.attempt
                        for p in self.cache.pods_for_job(namespace, job)):
                    return   # already recreated
                # a recreation was recorded but its pod never seen (the instance died around
                # the create): make it now, under the recorded name, so a late one collides
                attempt, restarts = rec.attempt, rec.restarts
            if not rec.ad:
                self._record_final(namespace, job, rec.attempt, JobState(
                    REMOVED, remove_reason=f"pod of job {namespace}/{job} was lost and its "
                    f"submit ad is not known here, so it cannot be created again"),
                    "lost, not recreatable")
                return
            if old is None:
                # "vanished" came from the cache or one read; a second pod is a worse mistake
                # than a late answer, so ask the API once more before making one
                pods, _ = self.kube.list_pods(namespace, self._job_selector(job))
                live = sorted((p for p in pods if _is_active(p)), key=_attempt)
                if live:
                    log.info("job %s/%s: pod %s is there after all; not recreating",
                             namespace, job, _meta(live[-1]).get("name"))
                    self.cache.note(live[-1])
                    if _attempt(live[-1]) != rec.attempt:
                        self.store.update(job, attempt=_attempt(live[-1]),
                                          restarts=lifecycle.restarts_of(live[-1]))
                    return
            try:
                req = parse_submit_ad(rec.ad)
                self._create_attempt(req, rec.ad, namespace, job, attempt, restarts=restarts)
            except KgahpError as exc:
                if isinstance(exc, ApiError) and exc.transient:
                    raise
                self._record_final(namespace, job, rec.attempt, JobState(
                    HELD, hold_code=26, hold_subcode=0,
                    hold_reason=f"pod for job {namespace}/{job} was lost and could not be "
                                f"created again: {exc}"), "not recreatable")
        if old is not None:
            self._delete_pod(old)
        log.info("recreated job %s/%s after a disruption", namespace, job)

    def _delete_pod(self, pod: dict, grace_seconds: Optional[int] = None) -> None:
        meta = _meta(pod)
        try:
            self.kube.delete_pod(str(meta.get("namespace")), str(meta.get("name")),
                                 grace_seconds=grace_seconds)
        except ApiError as exc:
            log.warning("could not delete pod %s/%s: %s", meta.get("namespace"),
                        meta.get("name"), exc)

    # ------------------------------------------------------------------ cancel
    def cancel(self, job_id: str) -> Reply2:
        try:
            namespace, job, legacy = parse_job_id(job_id, self.settings.kube.namespace)
        except JobAdError as exc:
            return 1, str(exc)
        try:
            if legacy:
                self.kube.delete_pod(namespace, job)
                return 0, "No error"
            with self._lock_for(job):
                pods, _ = self.kube.list_pods(namespace, self._job_selector(job))
                if not pods and self.store.get(job) is None and self._legacy_record(job):
                    pods = self._adopt_legacy(namespace, job)
                rec = self.store.update(job, cancelled=True)
                for pod in pods:
                    if not _meta(pod).get("deletionTimestamp"):
                        self.kube.delete_pod(namespace, str(_meta(pod).get("name")))
                # Owned secrets go with their pod (garbage collection); this also catches one
                # orphaned by a crash between creating a pod and its secret. Best effort: the
                # cancel itself is about the pod.
                try:
                    self.kube.delete_secrets(namespace, self._job_selector(job))
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
    def refresh_proxy(self, job_id: str, proxy_path: str) -> Reply2:
        try:
            namespace, job, legacy = parse_job_id(job_id, self.settings.kube.namespace)
        except JobAdError as exc:
            return 1, str(exc)
        rec = None if legacy else self.store.get(job)
        if rec is not None and rec.final is not None:
            return 0, "No proxy to renew - job completed"
        pod = self.cache.get(namespace, job) if legacy else self._current_pod(namespace, job, rec)
        if pod is None or not _is_active(pod):
            return 0, "No proxy to renew - job not active"
        try:
            proxy = sandbox.read_credential(proxy_path)
        except TransferError as exc:
            return 1, str(exc)
        name = str(_meta(pod).get("name"))
        secret = f"{name}-proxy"
        try:
            try:
                data = sandbox.proxy_secret_data(proxy)
                self.kube.patch_secret(namespace, secret, {"data": data})
            except ApiError as exc:
                if exc.status != 404:
                    raise
                owner = {"apiVersion": "v1", "kind": "Pod", "name": name,
                         "uid": _meta(pod).get("uid", ""), "blockOwnerDeletion": False}
                labels = {**self.instance_labels, names.LABEL_JOB: job}
                self._create_secret(namespace, sandbox.proxy_secret_manifest(
                    secret, namespace, proxy, labels), owner)
        except ApiError as exc:
            return 1, f"could not update the proxy of {job_id}: {exc}"
        log.info("refreshed the proxy of %s", job_id)
        return 0, "Proxy renewed"

    # ------------------------------------------------------------------ shutdown
    def close(self, secrets_deadline: float = 10.0) -> None:
        self.cache.stop()
        self.queue.stop()
        self.finish_secret_cleanup(secrets_deadline)

    def finish_secret_cleanup(self, deadline: float) -> int:
        """Delete, now, the Secrets of jobs whose result is recorded but whose Secrets are still
        there (the gridmanager stops the GAHP soon after its last job: nobody would come back
        for them). Bounded by `deadline` seconds; returns how many pods are still left."""
        until = time.monotonic() + deadline
        with self._secrets_guard:
            pending = sorted(self._secrets_pending)
        for namespace, pod_name in pending:
            if time.monotonic() > until:
                break
            self._delete_secrets_of(namespace, pod_name, retry=False)   # exiting: one try
        with self._secrets_guard:
            left = len(self._secrets_pending)
        if left:
            log.warning("exiting with the Secrets of %d finished pod(s) not yet deleted; they "
                        "go with their pods (KGAHP_POD_RETENTION)", left)
        return left

