"""batch/v1 Jobs for the sim: defaulting, validation, delete propagation, and a Job controller
with the ttl-after-finished controller, as kube-apiserver and kube-controller-manager v1.36 do
them for a NonIndexed Job. Pinned to tests/data/k8s-recordings-v1.36/22*:

- defaulting (22a): the four job labels, `selector`, `manualSelector: false`, the template's
  labels and container/pod-spec defaults, `parallelism`/`completions` 1, `backoffLimit` 6,
  `completionMode: NonIndexed`, `suspend: false`, `podReplacementPolicy: TerminatingOrFailed`
  (`Failed` with a podFailurePolicy), `status: {}`;
- validation (22k3, 22k5, 22m*, 22n*);
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
- DELETE: Background removes the Job and the garbage collector deletes its pods (22g);
  Foreground marks it (`foregroundDeletion`) until its pods are gone (22h); Orphan (also the
  default for batch/v1) strips the pods' ownerReferences and the Job goes (22i). The job
  controller drops its tracking finalizer from the pods of a deleted Job.

Not modelled: Indexed jobs, podFailurePolicy rules, successPolicy, backoffLimitPerIndex, the
exponential back-off between retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any, Optional

from kgahp_sim.store import ApiStatusError, now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.store import Store, WatchEvent
    from kgahp_sim.validation import Cause

log = logging.getLogger(__name__)

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
DEFAULT_MANAGER = "kubernetes.io/job-controller"
ORPHAN_WARNING = ("child pods are preserved by default when jobs are deleted; set "
                  "propagationPolicy=Background to remove them or set propagationPolicy=Orphan "
                  "to suppress this warning")

SPEC_ORDER = ("parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy",
              "successPolicy", "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes",
              "selector", "manualSelector", "template", "ttlSecondsAfterFinished",
              "completionMode", "suspend", "podReplacementPolicy", "managedBy")
STATUS_ORDER = ("conditions", "startTime", "completionTime", "active", "succeeded", "failed",
                "terminating", "completedIndexes", "failedIndexes", "uncountedTerminatedPods",
                "ready")
CONDITION_ORDER = ("type", "status", "lastProbeTime", "lastTransitionTime", "reason", "message")
COMPLETE_MESSAGE = "Reached expected number of succeeded pods"
BACKOFF_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
# what a suspended Job that never started may change in its pod template's spec (besides the
# template's labels and annotations): pkg/apis/batch/validation, AllowMutableSchedulingDirectives
SCHEDULING_DIRECTIVES = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _ordered(d: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    out = {k: d[k] for k in order if k in d}
    out.update((k, v) for k, v in d.items() if k not in out)
    return out


def job_labels(name: str, uid: str) -> dict[str, str]:
    return {"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
            "controller-uid": uid, "job-name": name}


# ----- defaulting -----------------------------------------------------------------------------
def default_job(job: dict[str, Any]) -> None:
    from kgahp_sim.defaulting import POD_SPEC_ORDER, _default_container

    meta = job["metadata"]
    name, uid = meta.get("name", ""), meta.get("uid", "")
    spec = job.setdefault("spec", {})
    labels = job_labels(name, uid)
    manual = bool(spec.get("manualSelector"))
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    if not manual:
        tmeta["labels"] = {**(tmeta.get("labels") or {}), **labels}
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
        spec["manualSelector"] = False
        meta["labels"] = {**labels, **(meta.get("labels") or {})} if not meta.get(
            "labels") else meta["labels"]
    tmeta.pop("creationTimestamp", None)
    pspec = template.setdefault("spec", {})
    for key in ("initContainers", "containers"):
        for c in pspec.get(key) or []:
            _default_container(c)
    pspec.setdefault("terminationGracePeriodSeconds", 30)
    pspec.setdefault("dnsPolicy", "ClusterFirst")
    pspec.setdefault("securityContext", {})
    pspec.setdefault("schedulerName", "default-scheduler")
    template["spec"] = _ordered(pspec, POD_SPEC_ORDER)
    if "parallelism" not in spec and "completions" not in spec:
        spec["completions"] = 1   # whatever the completionMode (22m5)
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy",
                    "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    job["spec"] = _ordered(spec, SPEC_ORDER)
    job["status"] = {}


# ----- validation -----------------------------------------------------------------------------
def _non_negative(spec: dict[str, Any], key: str) -> list[Cause]:
    from kgahp_sim.validation import bad

    value = spec.get(key)
    if isinstance(value, int) and value < 0:
        return [bad(f"spec.{key}", value, "must be greater than or equal to 0")]
    return []


def _domain_path(value: str) -> bool:
    import re

    domain, _, path = value.partition("/")
    return bool(path) and bool(re.fullmatch(
        r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+", domain))


def job_causes(job: dict[str, Any]) -> list[Cause]:
    from kgahp_sim.validation import bad, check_metadata, not_supported, pod_causes, required

    causes = check_metadata(job.get("metadata") or {}, namespaced=True)
    spec = job.get("spec") or {}
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        causes += _non_negative(spec, key)
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline < 0:
        causes.append(bad("spec.activeDeadlineSeconds", deadline,
                          "must be greater than or equal to 0"))
    policy = spec.get("podReplacementPolicy")
    if policy is not None:
        allowed = ["Failed"] if spec.get("podFailurePolicy") else ["Failed", "TerminatingOrFailed"]
        if policy not in allowed:
            causes.append(not_supported("spec.podReplacementPolicy", policy, allowed))
    manager = spec.get("managedBy")
    if manager is not None and not _domain_path(str(manager)):
        causes.append(bad("spec.managedBy", manager,
                          'must be a domain-prefixed path (such as "acme.io/foo")'))
    template = spec.get("template") or {}
    tspec = template.get("spec") or {}
    restart = tspec.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        causes.append(required("spec.template.spec.restartPolicy",
                               'valid values: "OnFailure", "Never"'))
    selector = (spec.get("selector") or {}).get("matchLabels")
    labels = (template.get("metadata") or {}).get("labels") or {}
    if spec.get("manualSelector") and isinstance(selector, dict) and any(
            labels.get(k) != v for k, v in selector.items()):
        causes.append(bad("spec.template.metadata.labels", "", "`selector` does not match "
                          "template `labels`"))
        causes[-1].message = ("Invalid value: " + json.dumps(labels, separators=(",", ":"))
                              + ": `selector` does not match template `labels`")
    pod = {"metadata": {"name": "x"}, "spec": {**tspec, "restartPolicy": "Never"}}
    for cause in pod_causes(pod):
        if not cause.field.startswith("metadata"):
            cause.field = "spec.template." + cause.field
            causes.append(cause)
    return causes


def update_causes(current: dict[str, Any], new: dict[str, Any]) -> list[Cause]:
    from kgahp_sim.validation import bad, forbidden

    causes: list[Cause] = []
    old_spec, new_spec = current.get("spec") or {}, new.get("spec") or {}
    if old_spec.get("managedBy") != new_spec.get("managedBy"):
        causes.append(bad("spec.managedBy", new_spec.get("managedBy"), "field is immutable"))
    if old_spec.get("completionMode") != "Indexed" and \
            old_spec.get("completions") != new_spec.get("completions"):
        causes.append(bad("spec.completions", new_spec.get("completions"), "field is immutable"))
    field, old_template, new_template = "spec.template", old_spec.get("template"), \
        new_spec.get("template")
    if old_spec.get("suspend") and not (current.get("status") or {}).get("startTime"):
        # suspended and never started: the scheduling directives may change (Kueue writes
        # them on admission), the rest of the pod spec may not (22n: the cause names
        # spec.template.spec)
        field = "spec.template.spec"
        old_template, new_template = (_without_directives(t) for t in (old_template,
                                                                        new_template))
    if old_template != new_template:
        causes.append(forbidden(field, "field is immutable"))
        causes[-1].reason = "FieldValueInvalid"
        causes[-1].message = "Invalid value: {...}: field is immutable"
    for key in ("selector", "completionMode", "podFailurePolicy"):
        if old_spec.get(key) != new_spec.get(key) and key != "podFailurePolicy":
            causes.append(bad(f"spec.{key}", new_spec.get(key), "field is immutable"))
    return causes


def _without_directives(template: Any) -> Any:
    """A pod template's spec without what a suspended, never started Job may change."""
    spec = dict((template or {}).get("spec") or {})
    for key in SCHEDULING_DIRECTIVES:
        spec.pop(key, None)
    return spec


# ----- DELETE with propagation ----------------------------------------------------------------
def delete(store: Store, namespace: Optional[str], name: str, policy: Optional[str], *,
           uid_precondition: Optional[str] = None,
           dry_run: bool = False) -> tuple[dict[str, Any], bool, list[str]]:
    """(the Job as answered, whether it is gone, warnings). batch/v1 defaults to Orphan."""
    warnings: list[str] = []
    if policy is None:
        policy = ORPHAN.capitalize()
        warnings.append(ORPHAN_WARNING)
    current = store.peek("jobs", namespace, name)
    if current is None or policy == "Background" or dry_run:
        obj, gone = store.delete("jobs", namespace, name, uid_precondition=uid_precondition,
                                 dry_run=dry_run)
        return obj, gone, warnings
    if uid_precondition is not None:
        store.delete("jobs", namespace, name, uid_precondition=uid_precondition, dry_run=True)
    finalizer = FOREGROUND if policy == "Foreground" else ORPHAN

    def mark(job: dict[str, Any]) -> None:
        meta = job["metadata"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            meta["generation"] = int(meta.get("generation") or 1) + 1
        finalizers = list(meta.get("finalizers") or ())
        if finalizer not in finalizers:
            finalizers.append(finalizer)
        meta["finalizers"] = finalizers

    return store.update("jobs", namespace, name, mark), False, warnings


# ----- the controllers ------------------------------------------------------------------------
def _condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
    now = now_rfc3339()
    return {"type": kind, "status": status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def _has(status: dict[str, Any], kind: str, value: str = "True") -> bool:
    return any(c.get("type") == kind and c.get("status") == value
               for c in status.get("conditions") or ())


def _owned_by(pod: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in pod["metadata"].get("ownerReferences") or ())


def _epoch(stamp: Optional[str]) -> Optional[float]:
    if not stamp:
        return None
    try:
        return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return None


class JobController:
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

    # ---- helpers that write
    def _set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        status = _ordered(status, STATUS_ORDER)
        status["conditions"] = [_ordered(c, CONDITION_ORDER)
                                for c in status.get("conditions") or ()] or None
        if status["conditions"] is None:
            del status["conditions"]

        def write(job: dict[str, Any]) -> None:
            job["status"] = status

        self.store.update("jobs", namespace, name, write, copy=False)

    def _drop_tracking(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        if TRACKING_FINALIZER not in (meta.get("finalizers") or ()):
            return
        uid = meta.get("uid")

        def drop(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") != uid:
                return
            left = [f for f in obj["metadata"].get("finalizers") or ()
                    if f != TRACKING_FINALIZER]
            if left:
                obj["metadata"]["finalizers"] = left
            else:
                obj["metadata"].pop("finalizers", None)

        with contextlib.suppress(ApiStatusError):
            self.store.update("pods", meta.get("namespace"), meta["name"], drop, copy=False)

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        with contextlib.suppress(ApiStatusError):
            self.store.delete("pods", pod["metadata"].get("namespace"), pod["metadata"]["name"])

    def _create_pod(self, job: dict[str, Any]) -> None:
        meta, spec = job["metadata"], job["spec"]
        template = spec.get("template") or {}
        tmeta = template.get("metadata") or {}
        pod_meta: dict[str, Any] = {
            "generateName": meta["name"] + "-", "labels": dict(tmeta.get("labels") or {}),
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}],
            # GetPodFromTemplate copies the template's finalizers; the controller then adds
            # its tracking one (pkg/controller/controller_utils.go, job_controller.go)
            "finalizers": [*[f for f in tmeta.get("finalizers") or () if f !=
                             TRACKING_FINALIZER], TRACKING_FINALIZER]}
        if tmeta.get("annotations"):
            pod_meta["annotations"] = dict(tmeta["annotations"])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
               "spec": json.loads(json.dumps(template.get("spec") or {}))}
        from kgahp_sim import admission

        with contextlib.suppress(ApiStatusError):
            admission.priority(self.store, pod)
        self.store.create("pods", meta.get("namespace"), pod)

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
                # the real controller (deleteJobPods) releases its tracking finalizer first: a
                # pod stopped by a suspension is never counted as failed, so a resumed Job
                # with backoffLimit 0 runs again instead of failing
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

    def _write_if_changed(self, namespace: str, name: str, status: dict[str, Any],
                          before: str) -> None:
        if not status.get("conditions"):
            status.pop("conditions", None)
        if json.dumps(status, sort_keys=True) != before:
            self._set_status(namespace, name, status)

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

    def _finish_deletion(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        meta = job["metadata"]
        namespace, name = meta.get("namespace"), meta["name"]
        finalizers = list(meta.get("finalizers") or ())
        for pod in pods:
            self._drop_tracking(pod)
        if ORPHAN in finalizers:
            uid = meta.get("uid")
            for pod in pods:
                def unown(obj: dict[str, Any]) -> None:
                    refs = [r for r in obj["metadata"].get("ownerReferences") or ()
                            if r.get("uid") != uid]
                    if refs:
                        obj["metadata"]["ownerReferences"] = refs
                    else:
                        obj["metadata"].pop("ownerReferences", None)

                with contextlib.suppress(ApiStatusError):
                    self.store.update("pods", namespace, pod["metadata"]["name"], unown,
                                      copy=False)
            self._remove_finalizer(namespace, name, ORPHAN)
            return
        if FOREGROUND in finalizers:
            left = [p for p in self.store.scan("pods", namespace)
                    if _owned_by(p, meta.get("uid", ""))]
            for pod in left:
                if not pod["metadata"].get("deletionTimestamp"):
                    self._delete_pod(pod)
            if not any(self.store.peek("pods", namespace, p["metadata"]["name"]) is not None
                       for p in left):
                self._remove_finalizer(namespace, name, FOREGROUND)

    def _remove_finalizer(self, namespace: Optional[str], name: str, finalizer: str) -> None:
        def drop(job: dict[str, Any]) -> None:
            left = [f for f in job["metadata"].get("finalizers") or () if f != finalizer]
            if left:
                job["metadata"]["finalizers"] = left
            else:
                job["metadata"].pop("finalizers", None)

        with contextlib.suppress(ApiStatusError):
            self.store.update("jobs", namespace, name, drop, copy=False)
