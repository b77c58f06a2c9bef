"""The batch/v1 Job calls of job mode (kgahp/workloads.py), on the same client, retries and
rate limit as every other call (`Kube.call`/`Kube.request`). Used only when some queue runs in
job mode: otherwise kgahp never touches Jobs and its Role needs no `jobs` rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Optional

from kgahp.errors import NotFoundError
from kgahp.kube.api import Kube, _q

# what job mode adds to kgahp.kube.api.PERMISSIONS (`kgahp check` asks for these then)
JOB_PERMISSIONS: tuple[tuple[str, str, str], ...] = (
    ("create", "jobs", ""), ("get", "jobs", ""), ("list", "jobs", ""), ("watch", "jobs", ""),
    ("delete", "jobs", ""),
)


def _path(namespace: str, name: str = "") -> str:
    base = f"/apis/batch/v1/namespaces/{_q(namespace)}/jobs"
    return f"{base}/{_q(name)}" if name else base


def create_job(kube: Kube, namespace: str, job: dict[str, Any]) -> dict:
    name = job.get("metadata", {}).get("name", "?")
    return kube._json(kube.call(f"creating Job {namespace}/{name}", lambda: kube.request(
        "POST", _path(namespace), body=job, timeout=kube.timeout)))


def get_job(kube: Kube, namespace: str, name: str) -> Optional[dict]:
    try:
        return kube._json(kube.call(f"reading Job {namespace}/{name}", lambda: kube.request(
            "GET", _path(namespace, name), timeout=kube.timeout)))
    except NotFoundError:
        return None


def delete_job(kube: Kube, namespace: str, name: str) -> bool:
    """Delete a Job and, in the background, its pods (never orphaned); False: already gone."""
    try:
        kube.call(f"deleting Job {namespace}/{name}", lambda: kube.request(
            "DELETE", _path(namespace, name), query=[("propagationPolicy", "Background")],
            timeout=kube.timeout).read())
        return True
    except NotFoundError:
        return False


def list_jobs(kube: Kube, namespace: str, label_selector: str, *, retry: bool = True,
              transform: Optional[Callable[[dict], Any]] = None) -> tuple[list[Any], str]:
    """All matching Jobs and the list's resourceVersion (paged, as `Kube.list_all`)."""
    return kube.list_all(_path(namespace), f"Jobs in {namespace}", label_selector,
                         retry=retry, transform=transform)


def watch_jobs(kube: Kube, namespace: str, label_selector: str, resource_version: str,
               timeout_seconds: int) -> Iterator[dict]:
    """Raw watch events of Jobs, as `Kube.watch_pods` gives them for pods."""
    return kube.watch_all(_path(namespace), f"Jobs in {namespace}", label_selector,
                          resource_version, timeout_seconds)


def slim_job(job: dict) -> dict:
    """What the Job cache keeps: identity, the spec fields the rules read, status."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    return {"kind": "Job", "metadata": {k: v for k, v in meta.items() if k != "managedFields"},
            "spec": {k: spec.get(k) for k in ("suspend", "activeDeadlineSeconds", "managedBy")},
            "status": job.get("status") or {}}
