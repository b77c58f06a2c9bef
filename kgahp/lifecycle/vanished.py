"""A pod that disappeared without kgahp deleting it and without a recorded result: its own small
rule table (`VANISHED_RULES`). Such a job is never Completed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kgahp.config import LifecycleSettings
from kgahp.lifecycle.verdict import HOLD_SYSTEM_POLICY, Action, Verdict, _hold_reason, one_line
from kgahp.model import HELD, IDLE, REMOVED, JobState


@dataclass(frozen=True)
class VanishedRule:
    name: str
    situation: str
    applies: Callable[[bool, int, LifecycleSettings], bool]


VANISHED_RULES: tuple[VanishedRule, ...] = (
    VanishedRule("vanished-started", "Pod gone after it started: 3 Removed, never Completed",
                 lambda started, restarts, s: started),
    VanishedRule("vanished-unstarted-hold", "Pod gone before starting, past KGAHP_MAX_DISRUPTIONS",
                 lambda started, restarts, s: restarts + 1 > s.max_disruptions),
    VanishedRule("vanished-unstarted", "Pod gone before starting: create it again",
                 lambda started, restarts, s: True),
)


def vanished(*, ever_started: bool, restarts: int, settings: LifecycleSettings,
             namespace: str = "", name: str = "") -> Verdict:
    """The pod is gone, kgahp did not delete it and no result was recorded. Never COMPLETED."""
    ref = f"{namespace}/{name}" if name else "the job's pod"
    restarts = max(0, restarts)
    rule = next(r for r in VANISHED_RULES if r.applies(ever_started, restarts, settings))
    count = restarts + 1
    if rule.name == "vanished-started":
        state = JobState(job_status=REMOVED, num_restarts=restarts, remove_reason=one_line(
            f"{'Pod ' + ref if name else 'The pod of the job'} disappeared after the job "
            f"started, deleted by someone other than kgahp; the job did not finish on its own "
            f"and its outputs were not collected"))
        return Verdict(state, Action.NONE, None,
                       f"{ref} deleted by someone else after it started", rule.name)
    if rule.name == "vanished-unstarted-hold":
        state = JobState(
            job_status=HELD, num_restarts=count, hold_code=HOLD_SYSTEM_POLICY, hold_subcode=0,
            hold_reason=_hold_reason(
                f"Pod {ref} was deleted before it started, disruption {count} of at most "
                f"KGAHP_MAX_DISRUPTIONS = {settings.max_disruptions}; someone or something in "
                f"the cluster keeps removing the job's pods: check with the cluster admin, then "
                f"release the job"))
        return Verdict(state, Action.NONE, None, f"{ref} vanished before start, {count} times",
                       rule.name)
    return Verdict(JobState(job_status=IDLE, num_restarts=count), Action.RECREATE, None,
                   f"{ref} vanished before it started: recreating ({count})", rule.name)
