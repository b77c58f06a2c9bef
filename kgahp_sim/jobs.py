"""batch/v1 Jobs for the sim, the API server's part: defaulting, validation and delete
propagation, as kube-apiserver v1.36 does them for a NonIndexed Job (the Job controller is
kgahp_sim.jobcontroller). Pinned to tests/data/k8s-recordings-v1.36/22*:

- defaulting (22a): the four job labels, `selector`, `manualSelector: false`, the template's
  labels and container/pod-spec defaults, `parallelism`/`completions` 1, `backoffLimit` 6,
  `completionMode: NonIndexed`, `suspend: false`, `podReplacementPolicy: TerminatingOrFailed`
  (`Failed` with a podFailurePolicy), `status: {}`;
- validation (22k3, 22k5, 22m*, 22n*);
- DELETE: Background removes the Job and the garbage collector deletes its pods (22g);
  Foreground marks it (`foregroundDeletion`) until its pods are gone (22h); Orphan (also the
  default for batch/v1) strips the pods' ownerReferences and the Job goes (22i).

Not modelled: Indexed jobs, podFailurePolicy rules, successPolicy, backoffLimitPerIndex.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Optional

from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.store import Store
    from kgahp_sim.validation import Cause

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


# ----- Job status helpers (kgahp_sim.jobcontroller uses them) --------------------------------
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
