"""What a job's pod means now: the lifecycle rules, what a batch/v1 Job adds in job mode, and the
queue's disruption policy. A reader: the status answer and the reconcile both ask it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from kgahp import disruption, lifecycle
from kgahp.config import Settings
from kgahp.podactions import attempt_of, meta
from kgahp.podspec import build
from kgahp.podspec.templates import Templates
from kgahp.store import JobRecord

if TYPE_CHECKING:
    from kgahp.jobmode import JobMode


def classify(pod: dict, rec: Optional[JobRecord], *, now: float, settings: Settings,
             jobs: Optional[JobMode], templates: Templates,
             mount_error: str) -> lifecycle.Verdict:
    ever_started = bool(rec and rec.started and rec.attempt == attempt_of(pod))
    verdict = lifecycle.classify(
        pod, now=now, settings=settings.lifecycle,
        main_container=build.MAIN_CONTAINER, restarts=lifecycle.restarts_of(pod),
        deleted_by_kgahp=bool(rec and rec.cancelled), mount_error=mount_error,
        ever_started=ever_started)
    if jobs is not None and not (rec and rec.cancelled):   # job mode
        verdict = jobs.amend(pod, verdict, now=now, settings=settings.lifecycle,
                             main_container=build.MAIN_CONTAINER)
    if not disruption.is_disruption(verdict):
        return verdict
    main = lifecycle.read_pod(pod, build.MAIN_CONTAINER).main
    started = ever_started or (main is not None and (main.running or main.terminated))
    m = meta(pod)
    return under_policy(verdict, disruption.queue_of(pod), started=started,
                        ref=f"{m.get('namespace')}/{m.get('name')}", settings=settings,
                        templates=templates)


def under_policy(verdict: lifecycle.Verdict, queue: str, *, started: bool, ref: str,
                 settings: Settings, templates: Templates) -> lifecycle.Verdict:
    """The verdict under the job's disruption policy (kgahp/disruption.py)."""
    policy = disruption.policy_for(queue, settings.lifecycle.disruption_policy, templates)
    return disruption.apply(verdict, policy, started=started, ref=ref)
