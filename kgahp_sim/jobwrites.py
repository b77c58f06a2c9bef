"""The sim Job controller's writes (kgahp_sim.jobcontroller decides, these write): a Job's
status, its pods' tracking finalizer and ownerReferences, creating and deleting its pods, and
finishing a Foreground or Orphan deletion (22c, 22c2, 22g, 22h, 22i)."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Optional

from kgahp_sim.jobs import (
    CONDITION_ORDER,
    FOREGROUND,
    ORPHAN,
    STATUS_ORDER,
    TRACKING_FINALIZER,
    _ordered,
    _owned_by,
)
from kgahp_sim.store import ApiStatusError

if TYPE_CHECKING:
    from kgahp_sim.store import Store


class JobWrites:
    """The JobController's helpers that write to the store."""

    store: Store

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

    def _write_if_changed(self, namespace: str, name: str, status: dict[str, Any],
                          before: str) -> None:
        if not status.get("conditions"):
            status.pop("conditions", None)
        if json.dumps(status, sort_keys=True) != before:
            self._set_status(namespace, name, status)

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
