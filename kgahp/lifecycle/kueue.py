"""Kueue (plain-pod integration): the quota gate, a pod Kueue stopped, an admitted pod that is
Unschedulable. Kueue's names, from its pod controller.
"""

from __future__ import annotations

from typing import Optional

from kgahp.lifecycle.context import Context, _disrupted, _state
from kgahp.lifecycle.pod import Pod
from kgahp.lifecycle.symptoms import _scheduler_message
from kgahp.lifecycle.verdict import Action, Verdict, one_line
from kgahp.model import IDLE

KUEUE_GATE = "kueue.x-k8s.io/admission"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_MANAGED_LABEL = "kueue.x-k8s.io/managed"
KUEUE_STOP_CONDITION = "TerminationTarget"   # set by Kueue before it deletes a pod it stops


def _local_queue(pod: Pod) -> str:
    return pod.labels.get(KUEUE_QUEUE_LABEL, "") or "(no queue-name label)"


def _kueue_managed(pod: Pod) -> bool:
    return pod.labels.get(KUEUE_MANAGED_LABEL) == "true" or KUEUE_QUEUE_LABEL in pod.labels


def _gated(pod: Pod) -> bool:
    return bool(pod.scheduling_gates) and not pod.node and not pod.finished


def _v_gated(pod: Pod, ctx: Context) -> Verdict:
    if KUEUE_GATE in pod.scheduling_gates:
        why = f"waiting for quota in LocalQueue {_local_queue(pod)} (Kueue gate {KUEUE_GATE})"
    else:
        why = f"waiting for scheduling gates {', '.join(pod.scheduling_gates)} to be removed"
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None, why)


def _kueue_stopped(pod: Pod) -> Optional[str]:
    """Why Kueue stopped the pod (preemption, eviction, workload gone), or None."""
    target = pod.condition(KUEUE_STOP_CONDITION)
    if target.get("status") != "True":
        return None
    return f"stopped by Kueue ({target.get('reason') or 'unknown'}): " \
           f"{one_line(str(target.get('message') or ''), 200)}".rstrip(": ")


def _v_kueue_stopped(pod: Pod, ctx: Context) -> Verdict:
    return _disrupted(pod, ctx, _kueue_stopped(pod) or "stopped by Kueue", Action.RECREATE)


def _v_kueue_unschedulable(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"admitted by Kueue (LocalQueue {_local_queue(pod)}) but Unschedulable: "
                   f"{_scheduler_message(pod)}")
