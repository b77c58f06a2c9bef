"""Recreating a job's pod after its pod was disrupted or vanished: the reconciler's one step that
makes a new attempt. It checks, under the job's lock, that the record still wants one and that
no pod of the current attempt exists (the cache, then, for a vanished pod, one API list), then
creates the attempt from the recorded submit ad; what cannot be recreated gets its final answer.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

from kgahp import lifecycle
from kgahp.codes import HoldCode
from kgahp.errors import KgahpError, TransientApiError
from kgahp.jobad import parse_submit_ad
from kgahp.model import HELD, REMOVED, JobState
from kgahp.podactions import PodActions, attempt_of, is_active, meta

log = logging.getLogger("kgahp.reconciler")   # the reconciler's step: its log lines keep that name

# records an attempt's final answer: (namespace, job, attempt, state, what) -> recorded
RecordFinal = Callable[[str, str, int, JobState, str], bool]


def recreate(actions: PodActions, namespace: str, job: str, old: Optional[dict], *,
             record_final: RecordFinal) -> None:
    """Make the job's next pod, in place of `old` (or of a pod that vanished, `old` None)."""
    with actions.lock_for(job):
        rec = actions.store.get(job)
        if rec is None or rec.cancelled or rec.final is not None:
            return
        attempt, restarts = rec.attempt + 1, rec.restarts + 1
        if old is not None and attempt_of(old) != rec.attempt:
            if attempt_of(old) > rec.attempt or any(
                    attempt_of(p) == rec.attempt
                    for p in actions.cache.pods_for_job(namespace, job)):
                return   # already recreated
            # a recreation was recorded but its pod never seen (the instance died around
            # the create): make it now, under the recorded name, so a late one collides
            attempt, restarts = rec.attempt, rec.restarts
        if not rec.ad:
            record_final(namespace, job, rec.attempt, JobState(
                REMOVED, remove_reason=f"pod of job {namespace}/{job} was lost and its "
                f"submit ad is not known here, so it cannot be created again"),
                "lost, not recreatable")
            return
        if old is None and actions.jobs is not None and \
                actions.jobs.blocks_recreate(namespace, job, rec.attempt):
            return   # job mode: the attempt's Job is still there (its pod is on its way)
        if old is None:
            # "vanished" came from the cache or one read; a second pod is a worse mistake
            # than a late answer, so ask the API once more before making one
            pods, _ = actions.kube.list_pods(namespace, actions.job_selector(job))
            live = sorted((p for p in pods if is_active(p)), key=attempt_of)
            if live:
                log.info("job %s/%s: pod %s is there after all; not recreating",
                         namespace, job, meta(live[-1]).get("name"))
                actions.cache.note(live[-1])
                if attempt_of(live[-1]) != rec.attempt:
                    actions.store.update(job, attempt=attempt_of(live[-1]),
                                      restarts=lifecycle.restarts_of(live[-1]))
                return
        try:
            req = parse_submit_ad(rec.ad)
            actions.create_attempt(req, rec.ad, namespace, job, attempt,
                                        restarts=restarts)
        except TransientApiError:
            raise   # the work queue tries again, backing off
        except KgahpError as exc:
            record_final(namespace, job, rec.attempt, JobState(
                HELD, hold_code=HoldCode.SystemPolicy, hold_subcode=0,
                hold_reason=f"pod for job {namespace}/{job} was lost and could not be "
                            f"created again: {exc}"), "not recreatable")
    if old is not None:
        actions.delete_pod(old)
    log.info("recreated job %s/%s after a disruption", namespace, job)
