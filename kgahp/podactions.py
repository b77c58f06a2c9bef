"""The I/O the verbs and the reconciler do on a job's pods and Secrets: create an attempt, adopt
an older instance's pods, create, repair and delete Secrets, collect outputs, delete a pod.
Nothing here decides *whether* to act (service.py and reconciler.py do); each function does one
thing to the cluster and, where the order matters for a crash, to the store.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from kgahp import lifecycle, manifests, sandbox, workloads
from kgahp.codes import HoldCode
from kgahp.config import Settings
from kgahp.errors import ApiError, ConflictError, KgahpError, TransferError, TransientApiError
from kgahp.kube.api import Kube, label_selector
from kgahp.kube.cache import PodCache
from kgahp.model import COMPLETED, HELD, JobRequest, JobState
from kgahp.podspec import build, names
from kgahp.podspec.templates import Templates
from kgahp.store import JobRecord, JobStore

if TYPE_CHECKING:
    from kgahp.jobmode import JobMode

log = logging.getLogger(__name__)

ANN_TRANSFER = manifests.ANN_TRANSFER
TERMINAL_PHASES = ("Succeeded", "Failed")
# Submit, cancel and recreation of one job are serialised by these. Two jobs that share a
# stripe wait for each other: with 50 requests in flight, 64 stripes let only about 35 of them
# run at once; 1024 let about 49.
JOB_LOCK_STRIPES = 1024
CPU_LOG_LIMIT = 262144      # bytes of a shared-mode pod's log read for the wrapper's CPU line


class RetryLater:
    """`collect_outputs`' answer when the outputs could not be read yet (a transient error)."""


def meta(pod: dict) -> dict:
    return pod.get("metadata") or {}


def attempt_of(pod: dict) -> int:
    try:
        return int((meta(pod).get("labels") or {}).get(names.LABEL_ATTEMPT, -1))
    except ValueError:
        return -1


def phase(pod: dict) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active(pod: dict) -> bool:
    """Still running or about to: adopt it rather than create a second pod."""
    return phase(pod) not in TERMINAL_PHASES and not meta(pod).get("deletionTimestamp")


def request_from_pod(pod: dict) -> Optional[JobRequest]:
    raw = (meta(pod).get("annotations") or {}).get(ANN_TRANSFER)
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


def create_or_adopt(kind: str, namespace: str, name: str, create: Callable[[], dict],
                    get: Callable[[], Optional[dict]]) -> Optional[dict]:
    """Create an attempt's object (a pod, or job mode's Job), or adopt it when the name exists:
    a retried or lost create that had in fact succeeded, perhaps made by an instance that
    died, is this attempt's. None when the existing one is being deleted (the caller moves on
    to the next attempt)."""
    try:
        return create()
    except ConflictError:
        found = get()
        if found is not None and meta(found).get("deletionTimestamp"):
            return None
        adopted = found if found is not None else create()
        log.info("%s %s/%s already existed; adopted it", kind, namespace, name)
        return adopted
    except TransientApiError:
        raise
    except ApiError as exc:
        raise KgahpError(f"Kubernetes refused {kind} {namespace}/{name}: {exc}") from exc


class PodActions:
    def __init__(self, settings: Settings, kube: Kube, cache: PodCache, store: JobStore,
                 templates: Templates, legacy_store: Optional[JobStore] = None) -> None:
        self.settings = settings
        self.kube = kube
        self.cache = cache
        self.store = store
        self.templates = templates
        self.instance_labels = {
            names.LABEL_MANAGED_BY: "kgahp",
            names.LABEL_INSTANCE: names.label_value(settings.instance),
        }
        legacy = settings.legacy_instance
        self.legacy_labels = {names.LABEL_MANAGED_BY: "kgahp",
                              names.LABEL_INSTANCE: names.label_value(legacy)} if legacy else None
        self.legacy_store = legacy_store
        self.jobs: Optional[JobMode] = None    # job mode's Jobs (kgahp/jobmode.py), when used
        self._stripes = tuple(threading.Lock() for _ in range(JOB_LOCK_STRIPES))
        # (namespace, pod) whose Secrets are to go now that the job's result is recorded; and
        # those already gone (in this process), so a later look does not ask again
        self.secrets_pending: dict[tuple[str, str], tuple[str, ...]] = {}
        self.secrets_done: set[tuple[str, str]] = set()
        self._secrets_guard = threading.Lock()

    def lock_for(self, job: str) -> threading.Lock:
        """One of a fixed set of locks (no memory per job): submit, cancel and a recreation
        of the same job never overlap."""
        return self._stripes[hash(job) % len(self._stripes)]

    def job_selector(self, job: str) -> str:
        return label_selector({**self.instance_labels, names.LABEL_JOB: job})

    # ------------------------------------------------------------------ an older instance's jobs
    def legacy_record(self, job: str) -> Optional[JobRecord]:
        """The older kgahp's record of `job` (an in-memory look-up: no request for the jobs
        an older kgahp never made, so new submits cost nothing extra)."""
        if self.legacy_labels is None or self.legacy_store is None:
            return None
        return self.legacy_store.get(job)

    def legacy_pods(self, namespace: str, job: str) -> list[dict]:
        """The pods an older kgahp made for `job` under the old default instance label (a read:
        nothing is relabelled)."""
        if self.legacy_labels is None:
            return []
        pods, _ = self.kube.list_pods(
            namespace, label_selector({**self.legacy_labels, names.LABEL_JOB: job}))
        return list(pods)

    def adopt_legacy(self, namespace: str, job: str) -> list[dict]:
        """Pods and the record an older kgahp made for `job` under the old default instance
        label (the user name, shared by every GAHP of the user). Called only for a job this
        GAHP knows nothing of, that its gridmanager names (by submit, status or cancel): job
        names carry the schedd, so such a job is this GAHP's. Its pods are relabelled to this
        instance and its record copied over; other GAHPs' jobs stay untouched."""
        old = self.legacy_record(job)
        if old is None or self.legacy_labels is None:
            return []
        pods = self.legacy_pods(namespace, job)
        if old.namespace == namespace:
            self.store.import_record(old)
        adopted = []
        for pod in pods:
            name = str(meta(pod).get("name"))
            try:
                pod = self.kube.patch_pod_metadata(namespace, name, {"labels": {
                    names.LABEL_INSTANCE: self.instance_labels[names.LABEL_INSTANCE]}},
                    "relabelling")
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

    # ------------------------------------------------------------------ pods
    def create_attempt(self, req: JobRequest, ad_text: str, namespace: str, job: str,
                       attempt: int, restarts: int) -> dict:
        bundle, creds = self.secret_contents(req)
        made = manifests.assemble(req, self.settings, self.templates, attempt=attempt,
                                  restarts=restarts, bundle=bundle, creds=creds)
        pod = made.pod
        name = meta(pod)["name"]

        # Recorded first: a crash after the create still knows the name it may have made.
        self.store.record_submit(job, namespace, attempt, ad_text, restarts=restarts)
        if made.job is not None:
            if self.jobs is None:
                raise KgahpError("job mode is not set up; restart kgahp")
            return self.jobs.create_attempt(self, req, ad_text, namespace, job, attempt,
                                            restarts, made.job, bundle, creds)
        created = create_or_adopt("pod", namespace, name,
                                  lambda: self.kube.create_pod(namespace, pod),
                                  lambda: self.kube.get_pod(namespace, name))
        if created is None:
            return self.create_attempt(req, ad_text, namespace, job, attempt + 1, restarts)
        if lifecycle.restarts_of(created) != restarts:    # adopted from an earlier create
            self.store.update(job, restarts=lifecycle.restarts_of(created))
        try:
            self.ensure_secrets(namespace, job, created, bundle, creds)
        except ApiError as exc:
            # A pod without its inputs would wait forever: take it back, fail the submit.
            self.kube.delete_pod(namespace, name, grace_seconds=0)
            raise KgahpError(f"could not create the job's secret for pod {namespace}/{name}: "
                             f"{exc}") from None   # the cause may quote the Secret
        self.cache.note(created)
        log.info("created pod %s/%s (attempt %d, restarts %d) for %s", namespace, name, attempt,
                 restarts, req.job_directory)
        return created

    def delete_pod(self, pod: dict, grace_seconds: Optional[int] = None) -> None:
        m = meta(pod)
        owner = workloads.owner_job(pod)
        if owner is not None and self.jobs is not None:
            # job mode: the attempt is its Job; its pod and Secrets go with it
            self.jobs.delete(str(m.get("namespace")), str(owner.get("name")))
            if grace_seconds is None:
                return
        try:
            self.kube.delete_pod(str(m.get("namespace")), str(m.get("name")),
                                 grace_seconds=grace_seconds)
        except ApiError as exc:
            log.warning("could not delete pod %s/%s: %s", m.get("namespace"), m.get("name"),
                        exc)

    # ------------------------------------------------------------------ outputs
    def collect_outputs(self, pod: dict, final: JobState) -> Union[JobState, RetryLater]:
        """The finished pod's result, once its outputs are in Iwd (api mode) and its CPU
        figures read; a transfer failure makes it a hold."""
        m = meta(pod)
        namespace, name = str(m.get("namespace")), str(m.get("name"))
        req = request_from_pod(pod)
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
                state = JobState(HELD, hold_code=HoldCode.TransferOutputError, hold_subcode=0,
                                 hold_reason=f"{exc} (pod {namespace}/{name})",
                                 worker_node=final.worker_node)
            except TransientApiError as exc:
                log.warning("could not fetch outputs of %s/%s yet (%s); will retry",
                            namespace, name, exc)
                return RetryLater()
            except ApiError as exc:
                state = JobState(HELD, hold_code=HoldCode.TransferOutputError, hold_subcode=0,
                                 hold_reason=f"outputs of pod {namespace}/{name} could not be "
                                 f"fetched: {exc}", worker_node=final.worker_node)
        if req is not None:
            state = self._with_cpu(state, namespace, name, text)
        return state

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

    # ------------------------------------------------------------------ Secrets
    def secret_contents(self, req: JobRequest
                        ) -> tuple[Optional[sandbox.InputBundle], dict[str, bytes]]:
        """What the job's input and credential Secrets carry, read from Iwd now."""
        return manifests.secret_contents(req, self.settings.transfer)

    def ensure_secrets(self, namespace: str, job: str, pod: dict,
                       bundle: Optional[sandbox.InputBundle], creds: dict[str, bytes]) -> None:
        """Create the pod's input and credential Secrets, owned by the pod (so they go with
        it); existing ones are brought up to date."""
        owner = manifests.owner_reference(pod)
        for manifest in manifests.secret_manifests(pod, bundle, creds):
            self.create_secret(namespace, manifest, owner)

    def create_secret(self, namespace: str, manifest: dict[str, Any], owner: dict) -> None:
        manifest.setdefault("metadata", {})["ownerReferences"] = [owner]
        try:
            self.kube.create_secret(namespace, manifest)
        except ConflictError:
            self.kube.patch_secret(namespace, manifest["metadata"]["name"],
                                   {"data": manifest.get("data") or {},
                                    "metadata": {"ownerReferences": [owner]}})

    def update_proxy(self, namespace: str, job: str, pod: dict, proxy: bytes) -> None:
        """Put a renewed proxy into the pod's proxy Secret (made again if it is gone)."""
        name = workloads.attempt_name(pod)
        secret = f"{name}-proxy"
        try:
            self.kube.patch_secret(namespace, secret,
                                   {"data": sandbox.proxy_secret_data(proxy)})
        except ApiError as exc:
            if exc.status != 404:
                raise
            owner = manifests.owner_reference(pod)
            labels = {**self.instance_labels, names.LABEL_JOB: job}
            self.create_secret(namespace, sandbox.proxy_secret_manifest(
                secret, namespace, proxy, labels), owner)

    def want_secrets_deleted(self, pod: dict) -> bool:
        """Note the job's own Secrets that `pod` mounts (`<pod>-input`, `<pod>-proxy`; never
        a Secret of the admin's template) as due for deletion. False: none to delete."""
        m = meta(pod)
        namespace, pod_name = str(m.get("namespace")), workloads.attempt_name(pod)
        own = tuple(sorted({
            str((v.get("secret") or {}).get("secretName"))
            for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v, dict) and str((v.get("secret") or {}).get(
                "secretName") or "") in (f"{pod_name}-input", f"{pod_name}-proxy")}))
        key = (namespace, pod_name)
        with self._secrets_guard:
            if not own or key in self.secrets_done:
                return False
            self.secrets_pending[key] = own
        return True

    def forget_pod(self, namespace: str, pod_name: str) -> None:
        """The pod is deleted: its Secrets went with it (owner references)."""
        with self._secrets_guard:
            self.secrets_done.discard((namespace, pod_name))
            self.secrets_pending.pop((namespace, pod_name), None)

    def delete_secrets_of(self, namespace: str, pod_name: str, retry: bool = True) -> None:
        key = (namespace, pod_name)
        with self._secrets_guard:
            secrets = self.secrets_pending.get(key)
        if not secrets:
            return
        try:
            gone = [s for s in secrets if self.kube.delete_secret(namespace, s, retry=retry)]
        except ApiError as exc:
            log.warning("could not delete the Secrets of pod %s/%s: %s", namespace, pod_name,
                        exc)
            return
        with self._secrets_guard:
            self.secrets_pending.pop(key, None)
            self.secrets_done.add(key)
        if gone:
            log.info("deleted Secret(s) %s of finished pod %s/%s", ", ".join(gone), namespace,
                     pod_name)

    def finish_secret_cleanup(self, deadline: float) -> int:
        """Delete, now, the Secrets of jobs whose result is recorded but whose Secrets are still
        there (the gridmanager stops the GAHP soon after its last job: nobody would come back
        for them). Bounded by `deadline` seconds; returns how many pods are still left."""
        until = time.monotonic() + deadline
        with self._secrets_guard:
            pending = sorted(self.secrets_pending)
        for namespace, pod_name in pending:
            if time.monotonic() > until:
                break
            self.delete_secrets_of(namespace, pod_name, retry=False)   # exiting: one try
        with self._secrets_guard:
            left = len(self.secrets_pending)
        if left:
            log.warning("exiting with the Secrets of %d finished pod(s) not yet deleted; they "
                        "go with their pods (KGAHP_POD_RETENTION)", left)
        return left
