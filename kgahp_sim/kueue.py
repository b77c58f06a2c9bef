"""A small stand-in for Kueue's plain-pod integration (not Kueue itself).

Enabled when `SimConfig.kueue_queues` names at least one LocalQueue (per test, or with
`kgahp sim --kueue-queue NAME=cpu=2,memory=4Gi,pods=1`). What it copies from Kueue
(kubernetes-sigs/kueue, pkg/controller/jobs/pod):

- the pod webhook: a pod labelled `kueue.x-k8s.io/queue-name` gets the label
  `kueue.x-k8s.io/managed: "true"`, the scheduling gate `kueue.x-k8s.io/admission` and the
  finalizer `kueue.x-k8s.io/managed` at create;
- admission: the gate is removed (FIFO per queue) when the LocalQueue's quota (cpu, memory,
  pods: sums of the pods' requests) still has room; an admitted pod holds its quota until it
  ends or is deleted;
- preemption (`preempt`): the pod gets the condition `TerminationTarget=True` with reason
  `WorkloadEvictedDueToPreempted` (Kueue's Stop: "WorkloadEvicted" + "DueTo" + the Workload's
  Evicted reason "Preempted"), then a plain DELETE; Kueue never recreates the pod;
- the finalizer is removed once the pod has ended or is being deleted and no longer runs.

Its Job integration (pkg/controller/jobs/job, jobframework): a batch/v1 Job labelled
`kueue.x-k8s.io/queue-name` is made `suspend: true` at create (ApplyDefaultForSuspend); admission
sets `suspend: false` when the template's requests fit the quota (the Job controller then makes
the pod); an evicted or preempted Job is suspended again (its pods deleted by the Job controller)
and waits to be admitted anew. Jobs `managedBy: kueue.x-k8s.io/multikueue` stay suspended here:
no worker cluster is modelled.

Not modelled: Workload, ClusterQueue and ResourceFlavor objects, fair sharing, automatic
preemption by priority.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kgahp_sim.quantity import QuantityError, parse_quantity
from kgahp_sim.store import now_rfc3339

if TYPE_CHECKING:
    from kgahp_sim.simconfig import SimConfig
    from kgahp_sim.store import Store, WatchEvent

log = logging.getLogger(__name__)

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
MANAGED_LABEL = "kueue.x-k8s.io/managed"
GATE = "kueue.x-k8s.io/admission"
FINALIZER = "kueue.x-k8s.io/managed"
PREEMPT_CONDITION = "TerminationTarget"
PREEMPT_REASON = "WorkloadEvictedDueToPreempted"
TERMINAL = ("Succeeded", "Failed")
MULTIKUEUE = "kueue.x-k8s.io/multikueue"


def enabled(config: SimConfig) -> bool:
    return bool(config.kueue_queues)


def parse_queue_flag(text: str) -> tuple[str, dict[str, str]]:
    """`NAME=cpu=2,memory=4Gi,pods=1` -> ("NAME", {"cpu": "2", ...}) (the `kgahp sim` flag)."""
    name, _, rest = text.partition("=")
    quota: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or key not in ("cpu", "memory", "pods"):
            raise ValueError(f"bad quota {part!r}: use cpu=N, memory=Q or pods=N")
        parse_quantity(value)
        quota[key] = value
    if not name:
        raise ValueError("a LocalQueue name is required (NAME=cpu=2,...)")
    return name, quota


def mutate_pod(config: SimConfig, pod: Any) -> None:
    """Kueue's pod webhook at create: managed label, admission gate, finalizer."""
    if not enabled(config) or not isinstance(pod, dict):
        return
    meta = pod.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), dict):
        return
    if not meta["labels"].get(QUEUE_LABEL):
        return
    meta["labels"][MANAGED_LABEL] = "true"
    spec = pod.get("spec")
    if isinstance(spec, dict):
        gates = spec.setdefault("schedulingGates", [])
        if isinstance(gates, list) and not any(
                isinstance(g, dict) and g.get("name") == GATE for g in gates):
            gates.append({"name": GATE})
    finalizers = meta.setdefault("finalizers", [])
    if isinstance(finalizers, list) and FINALIZER not in finalizers:
        finalizers.append(FINALIZER)


def mutate_job(config: SimConfig, job: Any) -> None:
    """Kueue's Job webhook at create: a Job in a LocalQueue starts suspended."""
    if not enabled(config) or not isinstance(job, dict):
        return
    labels = (job.get("metadata") or {}).get("labels")
    spec = job.get("spec")
    if isinstance(labels, dict) and labels.get(QUEUE_LABEL) and isinstance(spec, dict):
        spec["suspend"] = True


def _job_waits(job: Mapping[str, Any]) -> bool:
    """Suspended and stopped: Kueue admits an evicted Job again only once its pods are gone."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    return bool(spec.get("suspend")) and spec.get("managedBy") != MULTIKUEUE and \
        not job["metadata"].get("deletionTimestamp") and not _job_ended(job) and \
        not status.get("active") and not status.get("terminating")


def _job_ended(job: Mapping[str, Any]) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or ())


def _requests(pod: Mapping[str, Any]) -> dict[str, float]:
    total: dict[str, float] = {"pods": 1.0}
    for container in (pod.get("spec") or {}).get("containers") or ():
        requests = (container.get("resources") or {}).get("requests") or {}
        for key in ("cpu", "memory"):
            if key in requests:
                with contextlib.suppress(QuantityError, TypeError):
                    total[key] = total.get(key, 0.0) + float(parse_quantity(str(requests[key])))
    return total


def _gated(pod: Mapping[str, Any]) -> bool:
    return any(g.get("name") == GATE for g in (pod.get("spec") or {}).get("schedulingGates")
               or ())


def _holds_quota(pod: Mapping[str, Any]) -> bool:
    return not _gated(pod) and (pod.get("status") or {}).get("phase") not in TERMINAL


class KueueStandIn:
    """Admits gated pods per LocalQueue quota; releases the managed finalizer."""

    def __init__(self, store: Store, config: SimConfig) -> None:
        self.store = store
        self.config = config
        self._scheduled = False

    def quotas(self) -> dict[str, dict[str, float]]:
        """Read from the config on every pass: a test may enable the stand-in after start."""
        return {name: {k: float(parse_quantity(v)) for k, v in quota.items()}
                for name, quota in self.config.kueue_queues.items()}

    def observe(self, event: WatchEvent) -> None:
        if event.resource not in ("pods", "jobs") or not enabled(self.config):
            return
        labels = event.obj.get("metadata", {}).get("labels") or {}
        if event.resource == "jobs" and labels.get(QUEUE_LABEL):
            pass
        elif labels.get(MANAGED_LABEL) != "true":
            return
        elif event.type != "DELETED":
            self._release_finalizer(event.obj)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.admit)
            except RuntimeError:
                self.admit()

    def _release_finalizer(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        if FINALIZER not in (meta.get("finalizers") or ()):
            return
        phase = (pod.get("status") or {}).get("phase")
        deleting = bool(meta.get("deletionTimestamp"))
        running = bool((pod.get("spec") or {}).get("nodeName")) and phase not in TERMINAL
        done_deleting = deleting and int(meta.get("deletionGracePeriodSeconds") or 0) == 0
        if phase in TERMINAL or (deleting and not running) or done_deleting:
            uid = meta.get("uid")

            def drop(obj: dict[str, Any]) -> None:
                if obj["metadata"].get("uid") == uid:
                    obj["metadata"]["finalizers"] = [
                        f for f in obj["metadata"].get("finalizers") or () if f != FINALIZER]
                    if not obj["metadata"]["finalizers"]:
                        del obj["metadata"]["finalizers"]

            with contextlib.suppress(Exception):
                self.store.update("pods", meta.get("namespace"), meta["name"], drop, copy=False)

    def admit(self) -> None:
        """One admission pass over every queue (FIFO by creation time, then name)."""
        self._scheduled = False
        quotas = self.quotas()
        used: dict[tuple[str, str], dict[str, float]] = {}
        waiting: list[dict[str, Any]] = []
        for pod in self.store.scan("pods", None):
            meta = pod["metadata"]
            labels = meta.get("labels") or {}
            if labels.get(MANAGED_LABEL) != "true":
                continue
            key = (meta.get("namespace") or "", labels.get(QUEUE_LABEL, ""))
            if _gated(pod):
                if not meta.get("deletionTimestamp"):
                    waiting.append(pod)
            elif _holds_quota(pod):
                bucket = used.setdefault(key, {})
                for name, value in _requests(pod).items():
                    bucket[name] = bucket.get(name, 0.0) + value
        for job in self.store.scan("jobs", None):
            meta = job["metadata"]
            queue = (meta.get("labels") or {}).get(QUEUE_LABEL)
            if not queue:
                continue
            if _job_waits(job):
                waiting.append(job)
            elif not (job.get("spec") or {}).get("suspend") and not _job_ended(job):
                bucket = used.setdefault((meta.get("namespace") or "", queue), {})
                for name, value in _requests(job["spec"].get("template") or {}).items():
                    bucket[name] = bucket.get(name, 0.0) + value
        waiting.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""),
                                    int(p["metadata"].get("resourceVersion") or 0)))
        for pod in waiting:
            meta = pod["metadata"]
            queue = (meta.get("labels") or {}).get(QUEUE_LABEL, "")
            quota = quotas.get(queue)
            if quota is None:
                continue   # no such LocalQueue: Kueue leaves the pod gated
            key = (meta.get("namespace") or "", queue)
            bucket = used.setdefault(key, {})
            is_job = "template" in (pod.get("spec") or {})
            need = _requests(pod["spec"]["template"] if is_job else pod)
            if any(bucket.get(k, 0.0) + need.get(k, 0.0) > limit for k, limit in quota.items()):
                continue
            for name, value in need.items():
                bucket[name] = bucket.get(name, 0.0) + value
            if is_job:
                _set_suspend(self.store, meta.get("namespace") or "", meta["name"], False)
            else:
                self._ungate(pod)

    def _ungate(self, pod: Mapping[str, Any]) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid")

        def ungate(obj: dict[str, Any]) -> None:
            if obj["metadata"].get("uid") != uid:
                return
            gates = [g for g in obj["spec"].get("schedulingGates") or ()
                     if g.get("name") != GATE]
            if gates:
                obj["spec"]["schedulingGates"] = gates
            else:
                obj["spec"].pop("schedulingGates", None)
            obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1

        with contextlib.suppress(Exception):
            self.store.update("pods", meta.get("namespace"), meta["name"], ungate, copy=False)


def preempt(store: Store, namespace: str, name: str,
            message: str = "Preempted to accommodate a workload due to prioritization in the "
                           "ClusterQueue") -> None:
    """What Kueue does to a plain pod whose Workload is preempted: mark, then DELETE."""
    condition = {"type": PREEMPT_CONDITION, "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": now_rfc3339(), "reason": PREEMPT_REASON,
                 "message": message}

    def mark(obj: dict[str, Any]) -> None:
        status = obj.setdefault("status", {})
        status["conditions"] = [c for c in status.get("conditions") or ()
                                if c.get("type") != PREEMPT_CONDITION] + [condition]

    store.update("pods", namespace, name, mark, copy=False)
    store.delete("pods", namespace, name)


def _set_suspend(store: Store, namespace: str, name: str, value: bool) -> None:
    def write(obj: dict[str, Any]) -> None:
        obj["spec"]["suspend"] = value
        obj["metadata"]["generation"] = int(obj["metadata"].get("generation") or 1) + 1

    with contextlib.suppress(Exception):
        store.update("jobs", namespace, name, write, copy=False)


def preempt_job(store: Store, namespace: str, name: str) -> None:
    """What Kueue does to an admitted Job whose Workload is evicted or preempted: suspend it
    (the Job controller deletes its pods); it is admitted again when quota allows."""
    _set_suspend(store, namespace, name, True)
