"""What every rule is given besides the pod (`Context`), and the builders of the `JobState` a
verdict reports: a plain state, a hold, a counted disruption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from kgahp.config import LifecycleSettings
from kgahp.lifecycle.pod import Pod
from kgahp.lifecycle.verdict import HOLD_SYSTEM_POLICY, Action, Verdict, _hold_reason
from kgahp.model import HELD, IDLE, RUNNING, JobState


@dataclass(frozen=True)
class Context:
    now: float
    settings: LifecycleSettings
    restarts: int
    deleted_by_kgahp: bool
    mount_error: str = ""      # newest FailedMount event message, when the caller watches events
    ever_started: bool = False  # an earlier look saw the job's container run


def _state(pod: Pod, ctx: Context, status: int, **fields: Any) -> JobState:
    base: dict[str, Any] = {
        "worker_node": pod.node, "num_restarts": ctx.restarts,
        "cpus_provisioned": pod.cpus, "memory_provisioned": pod.memory_mib,
        "disk_provisioned": pod.disk_kib}
    base.update(fields)
    return JobState(job_status=status, **base)


def _held(pod: Pod, ctx: Context, code: int, reason: str, subcode: int = 0,
          **fields: Any) -> JobState:
    return _state(pod, ctx, HELD, hold_code=code, hold_subcode=subcode,
                  hold_reason=_hold_reason(reason), **fields)


def _seconds(value: float) -> str:
    return f"{int(value)} s"


def _elapsed(since: Optional[float], ctx: Context) -> float:
    # No timestamp means no evidence of how long: treat as just started (never hold on it).
    return max(0.0, ctx.now - since) if since is not None else 0.0


def _phase_state(pod: Pod, ctx: Context) -> JobState:
    """The state a pod's phase implies, used to keep the last known state during a grace."""
    return _state(pod, ctx, RUNNING if pod.phase in ("Running", "Unknown") else IDLE)


def _disrupted(pod: Pod, ctx: Context, why: str, action: Action) -> Verdict:
    """Count one more disruption: recreate (IDLE) or, past the limit, hold 26."""
    count = ctx.restarts + 1
    limit = ctx.settings.max_disruptions
    if count > limit:
        state = _held(pod, ctx, HOLD_SYSTEM_POLICY,
                      f"Pod {pod.ref} was disrupted {count} times, more than "
                      f"KGAHP_MAX_DISRUPTIONS = {limit} (last: {why}); the cluster keeps stopping "
                      f"it for reasons outside the job: check node health, preemption and "
                      f"priorities, then release the job", num_restarts=count)
        return Verdict(state, action if action is Action.DELETE else Action.NONE, None,
                       f"disruption {count} > {limit}: {why}")
    return Verdict(_state(pod, ctx, IDLE, num_restarts=count), action, None,
                   f"disruption {count}/{limit}: {why}")
