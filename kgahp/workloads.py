"""Job mode: what a job attempt is made of when its queue (or KGAHP_WORKLOAD) says `job`.

Pure. One attempt is one batch/v1 Job whose pod template is exactly the pod kgahp would create in
pod mode (name aside: the Job takes the pod's name, its controller names the pod
`<job>-<suffix>`). The pod it makes carries kgahp's labels, so the pod cache, the lifecycle table
and collection read it as they read a bare pod; what only the Job knows (suspended, its deadline
passed) is read by kgahp/lifecycle/jobs.py.

Spec choices (HTCondor, not the Job controller, owns retries and the attempt's identity):
`completions = parallelism = 1`; `backoffLimit: 0` (a failed pod fails the Job, never a second
pod); `podReplacementPolicy: Failed` (never two pods of one attempt at once: a pilot would join
twice); `activeDeadlineSeconds` = the pod's (BatchRuntime); `ttlSecondsAfterFinished` a generous
safety net only (kgahp deletes the Job itself once the result is recorded and the retention is
over, as it deletes a bare pod; a TTL patched after collection would cost one more request per
job for the same effect). A MultiKueue queue adds `managedBy: kueue.x-k8s.io/multikueue` and
`suspend: true`, as Kueue's Job webhook would set it: MultiKueue admits and dispatches it.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

from kgahp.config import Settings
from kgahp.podspec.templates import Templates

MULTIKUEUE_MANAGER = "kueue.x-k8s.io/multikueue"
JOB_TTL_SAFETY_NET = 7 * 24 * 3600   # seconds: a Job kgahp lost track of goes after a week
# the pod-level fields the template keeps; the Job's own metadata takes name and namespace
_JOB_META_KEYS = ("labels", "annotations")


def workload_for(queue: Optional[str], settings: Settings, templates: Templates) -> str:
    """`pod` or `job` for a job in `queue` (its queue config, else KGAHP_WORKLOAD)."""
    config = templates.queues.get(queue or "")
    if config is not None and config.workload:
        return config.workload
    return settings.pod.workload


def uses_jobs(settings: Settings, templates: Templates) -> bool:
    """True when some job may become a batch/v1 Job: only then is the Job cache started and
    the RBAC asked for `jobs`."""
    return settings.pod.workload == "job" or any(
        q.workload == "job" for q in templates.queues.values())


def job_manifest(pod: dict[str, Any], *, multikueue: bool = False) -> dict[str, Any]:
    """The batch/v1 Job of one attempt whose pod would be `pod` (not modified)."""
    pod_meta = pod.get("metadata") or {}
    template_meta = {k: copy.deepcopy(pod_meta[k]) for k in
                     ("labels", "annotations", "finalizers") if pod_meta.get(k)}
    spec = copy.deepcopy(pod.get("spec") or {})
    job_meta: dict[str, Any] = {"name": pod_meta["name"]}
    if pod_meta.get("namespace"):
        job_meta["namespace"] = pod_meta["namespace"]
    for key in _JOB_META_KEYS:
        if pod_meta.get(key):
            job_meta[key] = copy.deepcopy(pod_meta[key])
    job_spec: dict[str, Any] = {
        "completions": 1, "parallelism": 1, "backoffLimit": 0,
        "podReplacementPolicy": "Failed",
        "ttlSecondsAfterFinished": JOB_TTL_SAFETY_NET,
        "template": {"metadata": template_meta, "spec": spec},
    }
    if spec.get("activeDeadlineSeconds") is not None:
        job_spec["activeDeadlineSeconds"] = spec["activeDeadlineSeconds"]
    if multikueue:
        job_spec["managedBy"] = MULTIKUEUE_MANAGER
        job_spec["suspend"] = True
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": job_spec}


def owner_job(obj: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The controlling Job ownerReference of a pod (or Secret), if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("kind") == "Job" and ref.get("controller"):
            return ref
    return None


def attempt_name(pod: dict[str, Any]) -> str:
    """The attempt's kgahp name: the pod's own in pod mode, its Job's in job mode (the Job
    controller names the pod `<job>-<suffix>`; the Secrets carry the Job's name)."""
    ref = owner_job(pod)
    if ref is not None and ref.get("name"):
        return str(ref["name"])
    return str((pod.get("metadata") or {}).get("name"))


def job_owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    """The ownerReference a Secret of the attempt carries, so it goes when the Job goes."""
    meta = job.get("metadata") or {}
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta.get("name"),
            "uid": meta.get("uid", ""), "blockOwnerDeletion": False}
