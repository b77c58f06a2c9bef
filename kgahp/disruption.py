"""The disruption policy (`KGAHP_DISRUPTION_POLICY`, a queue's `disruptionPolicy`): what a
disruption does to the job. Pure: a verdict of the lifecycle table in, the verdict to report
and act on out.

A disruption is what the lifecycle table answers with a new pod and NumRestarts + 1: an
eviction (Eviction API or the kubelet), a preemption (the scheduler's or Kueue's), a lost node,
a pod stuck terminating, a pod deleted or gone before its job started. (A pod deleted by someone
while its job ran is a removal, 3, under every policy.)

- `recreate`: a new pod, as the table says (an access point; a CE with ENABLE_JOB_RETRIES = True).
- `hold`: no new pod; the job is held with HoldReasonCode 26 (SystemPolicy) and a HoldReason
  naming the disruption, so a user or `periodic_release` decides.
- `remove`: no new pod for a job that had started; it is reported Idle (1) with the disruption
  in ExitReason. Behind a default HTCondor-CE (ENABLE_JOB_RETRIES = False) the router removes a
  routed job that is Idle after it started ("disabled job retries"), and the gridmanager then
  cancels it here: the job ends removed, without a wasted pod. Reporting 3 (REMOVED) instead
  would make the gridmanager hold the job ("Job removed from batch queue manually") and the
  router copy that hold to the user's job. A job that never started is created again: the CE
  removes only a job that returns to Idle after a start, so an Idle answer would leave it
  waiting forever, and a first pod that never ran costs the CE nothing.

The reconciler records the stopped verdict's state as the attempt's final answer, so a restart
keeps it; status only reports it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Optional

from kgahp.codes import HoldCode
from kgahp.errors import KgahpError
from kgahp.jobad import parse_submit_ad
from kgahp.lifecycle import Action, Verdict, one_line
from kgahp.model import HELD, IDLE
from kgahp.podspec import names
from kgahp.podspec.templates import Templates

POLICIES = ("recreate", "hold", "remove")
_MARK = "/policy-"
_COUNT = re.compile(r"^disruption \d+/\d+: |: recreating \(\d+\)$")


def queue_of(pod: Optional[dict[str, Any]]) -> str:
    """The queue a pod was built for (its annotation, else its label)."""
    meta = (pod or {}).get("metadata") or {}
    return str((meta.get("annotations") or {}).get(names.ANN_QUEUE)
               or (meta.get("labels") or {}).get(names.LABEL_QUEUE) or "")


def queue_of_ad(ad: str) -> str:
    """The Queue a recorded submit ad names ("" when none or unreadable)."""
    try:
        return parse_submit_ad(ad).queue or "" if ad else ""
    except KgahpError:
        return ""


def policy_for(queue: str, default: str, templates: Templates) -> str:
    """The queue's disruptionPolicy, else the knob's."""
    config = templates.queues.get(queue) if queue else None
    return (config.disruption_policy if config is not None and config.disruption_policy
            else default)


def is_disruption(verdict: Verdict) -> bool:
    """The table counted a disruption and wants a new pod (Idle, recreate or force-delete)."""
    return verdict.state.job_status == IDLE and verdict.action in (Action.RECREATE,
                                                                   Action.DELETE)


def stopped(verdict: Verdict) -> bool:
    """The policy stopped this disruption's new pod: its state is the attempt's answer."""
    return _MARK in verdict.rule


def what_happened(verdict: Verdict) -> str:
    """The disruption, in the table's words, without its counting."""
    return _COUNT.sub("", verdict.reason).strip() or "disrupted"


def apply(verdict: Verdict, policy: str, *, started: bool, ref: str) -> Verdict:
    """The verdict under `policy`: unchanged unless it is a disruption the policy stops."""
    if policy not in ("hold", "remove") or not is_disruption(verdict):
        return verdict
    if policy == "remove" and not started:
        return verdict
    why = one_line(what_happened(verdict), 400)
    if policy == "hold":
        state = replace(verdict.state, job_status=HELD, hold_code=HoldCode.SystemPolicy,
                        hold_subcode=0, hold_reason=one_line(
                            f"Pod {ref} was disrupted ({why}); kgahp does not run it again "
                            f"(KGAHP_DISRUPTION_POLICY = hold): release the job to run it in a "
                            f"new pod", 999))
    else:
        state = replace(verdict.state, exit_reason=one_line(
            f"Pod {ref} was disrupted ({why}); kgahp does not run it again "
            f"(KGAHP_DISRUPTION_POLICY = remove): reported Idle so that a CE without job "
            f"retries removes the job", 999))
    action = Action.DELETE if verdict.action is Action.DELETE else Action.NONE
    return replace(verdict, state=state, action=action, final=None,
                   reason=f"{verdict.reason}; {policy} (KGAHP_DISRUPTION_POLICY)",
                   rule=f"{verdict.rule}{_MARK}{policy}")
