"""Collecting a finished pod: its outputs into `Iwd`, its result recorded, and when its deletion
is due (the retention). The reconciler's step for a pod whose own process ended."""

from __future__ import annotations

from typing import Callable, Optional

from kgahp import lifecycle
from kgahp.model import JobState
from kgahp.podactions import PodActions, RetryLater, attempt_of, meta
from kgahp.store import JobRecord

COLLECT_RETRY = 15.0        # seconds before outputs that could not be read are tried again

# (pod, record) -> when to look again
Cleanup = Callable[[dict, JobRecord], Optional[float]]


def collect(actions: PodActions, pod: dict, job: str, final: JobState,
            record_final: Callable[..., bool], cleanup: Cleanup) -> Optional[float]:
    """Fetch a finished pod's outputs and record its result. Returns when to try again
    (outputs not readable yet) or when its pod is due for deletion."""
    namespace = str(meta(pod).get("namespace"))
    rec = actions.store.get(job)
    if rec is None:   # store lost or legacy pod: rebuild the record from the cluster
        rec = actions.store.record_submit(job, namespace, attempt_of(pod), "",
                                          restarts=lifecycle.restarts_of(pod))
    if rec.final is not None or rec.cancelled:
        return None   # answered already, or kgahp is deleting it: never collected
    state = actions.collect_outputs(pod, final)
    if isinstance(state, RetryLater):
        return COLLECT_RETRY
    record_final(namespace, job, rec.attempt, state, "finished", pod)
    rec = actions.store.get(job)
    return cleanup(pod, rec) if rec is not None else None


def retention_left(pod: dict, rec: JobRecord, *, now: float,
                   retention: float) -> Optional[float]:
    """Seconds until a finished pod is due for deletion (0 or less: due now), or None when it
    is being deleted already."""
    if meta(pod).get("deletionTimestamp"):
        return None
    return retention - (now - (rec.finished_at or now))


__all__ = ["COLLECT_RETRY", "collect", "retention_left"]
