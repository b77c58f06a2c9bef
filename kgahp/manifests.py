"""The manifests of one job attempt, assembled once: build (policy check, templates, the job's
values) -> sandbox decoration -> transfer annotation -> verify, plus the Secrets the decorated
pod mounts.

Submit (kgahp.podactions) and `kgahp render` both call `assemble`, so what render prints is what the
GAHP creates. Pure except `secret_contents`, which reads the job's files from Iwd.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
from dataclasses import dataclass
from typing import Any, Optional

from kgahp import sandbox, workloads
from kgahp.config import Settings, TransferSettings
from kgahp.model import JobRequest
from kgahp.podspec import build, names, policy
from kgahp.podspec.templates import Templates

ANN_TRANSFER = "kgahp.htcondor.org/transfer"
OWNER_UID_PLACEHOLDER = "<uid of the pod, known once it is created>"
_SECRET_LABELS = (names.LABEL_MANAGED_BY, names.LABEL_INSTANCE, names.LABEL_JOB)


@dataclass(frozen=True)
class Manifests:
    """A pod and its Secrets (input sandbox, credentials), in the order they are created.
    The Secrets carry no ownerReferences yet: the owner's uid exists only once the pod does."""

    pod: dict[str, Any]
    secrets: tuple[dict[str, Any], ...]
    job: Optional[dict[str, Any]] = None   # job mode: the batch/v1 Job that makes `pod`


def secret_contents(req: JobRequest, transfer: TransferSettings
                    ) -> tuple[Optional[sandbox.InputBundle], dict[str, bytes]]:
    """What the job's input and credential Secrets carry, read from Iwd now.
    TransferError when a file is missing, unreadable or too large."""
    bundle = sandbox.gather_inputs(req, transfer) if transfer.mode == "api" else None
    return bundle, sandbox.gather_credentials(req, transfer)


def transfer_spec(req: JobRequest) -> str:
    """What collection needs, on the pod itself, so outputs can be fetched even if the durable
    store is lost. Paths only: nothing secret."""
    return json.dumps({
        "iwd": req.iwd, "out": req.stdout, "err": req.stderr,
        "transfer_output": list(req.transfer_output) if req.transfer_output is not None else None,
        "remaps": [list(r) for r in req.output_remaps],
        "job_directory": req.job_directory,
    }, separators=(",", ":"))


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("metadata") or {}


def secret_manifests(pod: dict[str, Any], bundle: Optional[sandbox.InputBundle],
                     creds: dict[str, bytes]) -> list[dict[str, Any]]:
    """The Secrets `pod` mounts (`<pod>-input`, `<pod>-proxy`), labelled as the pod is."""
    meta = _meta(pod)
    name, namespace = workloads.attempt_name(pod), str(meta.get("namespace"))
    pod_labels = meta.get("labels") or {}
    labels = {k: str(pod_labels[k]) for k in _SECRET_LABELS if k in pod_labels}
    out = []
    if bundle is not None:
        out.append(sandbox.input_secret_manifest(f"{name}-input", namespace, bundle, labels))
    if creds:
        out.append(sandbox.credentials_secret_manifest(f"{name}-proxy", namespace, creds,
                                                       labels))
    return out


def owner_reference(pod: dict[str, Any]) -> dict[str, Any]:
    """The ownerReference a Secret of `pod` carries, so it goes when the pod goes (when its
    Job goes, for a Job's pod)."""
    if pod.get("kind") == "Job":     # job mode, the attempt's Job itself
        return workloads.job_owner_reference(pod)
    job = workloads.owner_job(pod)
    if job is not None:
        return {"apiVersion": "batch/v1", "kind": "Job", "name": job.get("name"),
                "uid": job.get("uid", ""), "blockOwnerDeletion": False}
    meta = _meta(pod)
    return {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"),
            "uid": meta.get("uid", ""), "blockOwnerDeletion": False}


def assemble(req: JobRequest, settings: Settings, templates: Templates, *, attempt: int,
             restarts: int, bundle: Optional[sandbox.InputBundle],
             creds: dict[str, bytes]) -> Manifests:
    """Every manifest of one attempt. JobAdError, PolicyError, ConfigError or TransferError
    for what the GAHP refuses."""
    pod = build.build_pod(req, settings, templates, attempt=attempt, restarts=restarts,
                          verify=False)
    name = _meta(pod)["name"]
    sandbox.decorate_pod(pod, req, settings.transfer, inputs=bundle,
                         input_secret=f"{name}-input" if bundle is not None else None,
                         proxy_secret=f"{name}-proxy" if creds else None,
                         credential_keys=tuple(creds))
    pod["metadata"].setdefault("annotations", {})[ANN_TRANSFER] = transfer_spec(req)
    if settings.lifecycle.tracking_finalizer:
        # kgahp.htcondor.org/collect: a deleted pod stays until kgahp has read its result
        # (kgahp/finalizers.py removes it)
        finalizers = list(pod["metadata"].get("finalizers") or [])
        if names.FINALIZER_COLLECT not in finalizers:
            pod["metadata"]["finalizers"] = [*finalizers, names.FINALIZER_COLLECT]
    # once, on the finished pod: helpers within KGAHP_HELPER_*, the rest within the request
    policy.verify_pod(pod, templates, settings, req=req)
    job = None
    if workloads.workload_for(req.queue, settings, templates) == "job":
        queue = templates.queues.get(req.queue or "")
        job = workloads.job_manifest(pod, multikueue=bool(queue and queue.multikueue))
    return Manifests(pod, tuple(secret_manifests(pod, bundle, creds)), job)


def redacted(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret fit to print: every value replaced by its decoded size."""
    out = copy.deepcopy(secret)
    for field in ("data", "stringData"):
        values = out.get(field)
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            try:
                size = len(base64.b64decode(value)) if field == "data" else len(str(value))
            except (binascii.Error, ValueError, TypeError):
                size = 0
            values[key] = f"<redacted: {size} bytes>"
    return out
