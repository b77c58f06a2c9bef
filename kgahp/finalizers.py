"""The tracking finalizer `kgahp.htcondor.org/collect`: kgahp's hold on the pods it creates.

A pod that carries it is only marked for deletion (`deletionTimestamp`) when someone deletes it
(a person, the pod GC, an eviction, Kueue) and stays, with its last status and its log, until
kgahp removes the finalizer (tests/data/k8s-recordings-v1.36/23a*, 23b*). So a pod that ended and
was deleted while kgahp was down still gives its real exit code and outputs.

kgahp removes it when it no longer needs the pod (`release_reason`): the attempt's final result
is recorded (outputs already in Iwd), the attempt was superseded by a newer one, the job was
cancelled, or the store no longer tracks the job (the sweeper's case). The removal is a JSON
patch whose `test` op pins the finalizer's index: under concurrent writers (Kueue keeps its own
finalizer on the pods it manages, the Job controller its tracking finalizer) a stale index fails
the test with 422 (10d4) instead of removing someone else's finalizer, and kgahp reads the pod
again and retries. A merge patch on the list would replace the whole list, dropping or bringing
back another controller's finalizer (and 23a5: no finalizer may be added during a deletion).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional, cast

from kgahp.errors import ApiError, NotFoundError, TransientApiError
from kgahp.kube.api import Kube
from kgahp.kube.cache import PodCache
from kgahp.podspec import names
from kgahp.store import JobRecord, JobStore

log = logging.getLogger("kgahp.finalizers")

FINALIZER = names.FINALIZER_COLLECT
REMOVE_TRIES = 4


def _meta(pod: dict[str, Any]) -> dict[str, Any]:
    return pod.get("metadata") or {}


def has_finalizer(pod: dict[str, Any]) -> bool:
    return FINALIZER in (_meta(pod).get("finalizers") or ())


def removal_patch(pod: dict[str, Any]) -> Optional[list[dict[str, Any]]]:
    """The JSON patch that removes the finalizer from `pod` as last read, or None when it does
    not carry it. The `test` op makes the apiserver refuse (422) if the list changed since."""
    finalizers = list(_meta(pod).get("finalizers") or ())
    if FINALIZER not in finalizers:
        return None
    path = f"/metadata/finalizers/{finalizers.index(FINALIZER)}"
    return [{"op": "test", "path": path, "value": FINALIZER}, {"op": "remove", "path": path}]


def _attempt(pod: dict[str, Any]) -> int:
    try:
        return int((_meta(pod).get("labels") or {}).get(names.LABEL_ATTEMPT, -1))
    except ValueError:
        return -1


def release_reason(pod: dict[str, Any], rec: Optional[JobRecord]) -> Optional[str]:
    """Why kgahp no longer needs `pod` held (its finalizer may go), or None: keep it.

    `rec` is the job's record as it is now (after the reconcile acted). Kept: a pod of the
    job's current attempt whose result is not recorded yet (its exit code and outputs are still
    to be read)."""
    if not has_finalizer(pod):
        return None
    if rec is None:
        return "its job is not tracked by kgahp (no record)"
    if rec.cancelled:
        return "its job was cancelled"
    attempt = _attempt(pod)
    if attempt < rec.attempt:
        return f"attempt {attempt} was superseded by attempt {rec.attempt}"
    if rec.final is not None and attempt == rec.attempt:
        return "the attempt's result is recorded"
    return None


# What the sweeper needs to know of a pod, kept by the pod cache beside each pod (see
# `PodCache.summaries`): whether it carries the finalizer, and its attempt.
Summary = tuple[bool, int]


def summarize(pod: dict[str, Any]) -> Summary:
    return has_finalizer(pod), _attempt(pod)


def sweep_due(summary: Summary, rec: Optional[JobRecord]) -> bool:
    """The sweeper's question for a pod it found (as `summarize` saw it): is its job no longer
    tracked (no record, or the record's result recorded and reported, or cancelled)? Then the
    job's reconcile is asked to decide (it collects what is still to be collected first)."""
    held, attempt = summary
    if not held:
        return False
    return rec is None or rec.cancelled or attempt < rec.attempt or (
        rec.final is not None and rec.reported)


def release_all(kube: Kube, pods: list[dict[str, Any]], why: str) -> None:
    """Remove the finalizer from each of `pods` now, best effort (cancel: nothing may stay
    stuck; a failure is logged and the job's reconcile or the sweeper tries again)."""
    for pod in pods:
        try:
            remove_finalizer(kube, pod, why)
        except ApiError as exc:
            log.warning("could not remove the finalizer of pod %s/%s: %s",
                        _meta(pod).get("namespace"), _meta(pod).get("name"), exc)


def remove_finalizer(kube: Kube, pod: dict[str, Any], why: str) -> Optional[dict[str, Any]]:
    """Remove the tracking finalizer from `pod` (JSON patch with a `test` op; on a refused
    test, read the pod again and retry). Returns the patched pod, or None when it is gone or
    did not carry the finalizer. Transient errors propagate (the work queue retries)."""
    m = _meta(pod)
    namespace, name = str(m.get("namespace")), str(m.get("name"))
    current: Optional[dict[str, Any]] = pod
    for _ in range(REMOVE_TRIES):
        if current is None:
            return None
        patch = removal_patch(current)
        if patch is None:
            return None
        try:
            patched = kube.json_patch_pod(namespace, name, patch, "removing the finalizer")
            log.info("removed finalizer %s from pod %s/%s: %s", FINALIZER, namespace, name, why)
            return patched
        except NotFoundError:
            return None
        except ApiError as exc:
            if exc.status not in (409, 422):
                raise
            # the list changed under us (another controller's finalizer came or went)
            current = kube.get_pod(namespace, name)
    log.warning("could not remove the finalizer of pod %s/%s after %d tries; will retry",
                namespace, name, REMOVE_TRIES)
    raise ApiError(f"the finalizers of pod {namespace}/{name} kept changing")


class FinalizerKeeper:
    """The reconciler's side of the finalizer: release it from a pod kgahp is done with (after
    the job's reconcile acted), and the sweeper, which every `interval` seconds asks the
    reconcile of every job whose pod still carries it though the job is no longer tracked."""

    interval = 120.0

    def __init__(self, kube: Kube, store: JobStore, cache: PodCache,
                 enqueue: Callable[[str, str], None]) -> None:
        if cache.summarize is not summarize:   # the sweep reads what it keeps of each pod
            raise ValueError("the pod cache must be built with summarize=finalizers.summarize")
        self.kube = kube
        self.store = store
        self.cache = cache
        self.enqueue = enqueue
        # pods whose finalizer this process removed (or found gone), until their DELETED: a
        # cache view older than the patch does not send it again
        self._released: set[tuple[str, str]] = set()
        self._guard = threading.Lock()

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._released.discard((namespace, name))

    @staticmethod
    def job_of(pod: dict[str, Any]) -> str:
        return str((_meta(pod).get("labels") or {}).get(names.LABEL_JOB) or "")

    def due(self, pod: dict[str, Any]) -> bool:
        """Whether `pod`'s finalizer may go and this process has not removed it yet."""
        return self._why_due(pod) is not None

    def _why_due(self, pod: dict[str, Any]) -> Optional[str]:
        job = self.job_of(pod)
        why = release_reason(pod, self.store.get(job)) if job else None
        if why is None:
            return None
        with self._guard:
            if (str(_meta(pod).get("namespace")), str(_meta(pod).get("name"))) in self._released:
                return None
        return why

    def release_if_done(self, pod: dict[str, Any]) -> None:
        why = self._why_due(pod)
        if why is None:
            return
        key = (str(_meta(pod).get("namespace")), str(_meta(pod).get("name")))
        try:
            patched = remove_finalizer(self.kube, pod, why)
        except TransientApiError:
            raise   # the work queue tries again, backing off
        except ApiError as exc:   # e.g. 403: no 'patch' on pods; the sweeper asks again
            log.warning("could not remove the finalizer of pod %s/%s (%s): %s",
                        _meta(pod).get("namespace"), _meta(pod).get("name"), why, exc)
            return
        with self._guard:
            self._released.add(key)
        if patched is not None and not _meta(patched).get("deletionTimestamp"):
            self.cache.note(patched)   # a deleted one is gone now: the watch says so

    def sweep(self) -> float:
        """Enqueue the jobs of pods held by the finalizer whose job kgahp no longer tracks.
        Returns when to sweep again."""
        due = 0
        for namespace, _, job, summary in self.cache.summaries():
            if job and sweep_due(cast(Summary, summary), self.store.get(job)):
                self.enqueue(namespace, job)
                due += 1
        if due:
            log.info("sweeper: %d pod(s) carry %s for jobs kgahp no longer tracks", due,
                     FINALIZER)
        return self.interval
