"""Verdicts for a pod not yet running (image pull, container config error, FailedMount,
Unschedulable, still starting) and for a running one.
"""

from __future__ import annotations

from kgahp.lifecycle.context import Context, _elapsed, _held, _seconds, _state
from kgahp.lifecycle.pod import Pod, parse_time
from kgahp.lifecycle.symptoms import (
    IMAGE_PULL_REASONS,
    MISSING_INPUT,
    _all_containers,
    _config_error,
    _pull_failure,
    _scheduler_message,
    _waiting_in,
    _waiting_since,
)
from kgahp.lifecycle.verdict import (
    HOLD_FAILED_TO_CREATE_PROCESS,
    HOLD_INVALID_DOCKER_IMAGE,
    HOLD_SYSTEM_POLICY,
    HOLD_TRANSFER_INPUT_ERROR,
    Action,
    Verdict,
    one_line,
)
from kgahp.model import IDLE, RUNNING, JobState


def _v_pull_hold(pod: Pod, ctx: Context) -> Verdict:
    c = _pull_failure(pod)
    assert c is not None
    detail = one_line(f"{c.waiting_reason}: {c.waiting_message}".rstrip(": "))
    state = _held(pod, ctx, HOLD_INVALID_DOCKER_IMAGE,
                  f'Image "{c.image}" could not be pulled ({detail}) for pod {pod.ref}; '
                  f"check the image name or the pull secret")
    return Verdict(state, Action.NONE, None,
                   f"{c.waiting_reason} for {_seconds(_elapsed(_waiting_since(pod, c), ctx))}")


def _v_pulling(pod: Pod, ctx: Context) -> Verdict:
    c = _waiting_in(pod, IMAGE_PULL_REASONS)
    assert c is not None
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"{c.waiting_reason} for {_seconds(_elapsed(_waiting_since(pod, c), ctx))}: "
                   f"{one_line(c.waiting_message, 200)}")


def _job_input_missing(pod: Pod, message: str) -> bool:
    """The kubelet names a missing object of the job's own (kgahp names them <pod>-...), not
    one the admin's template refers to (that is the site's to fix: hold 6, not 13)."""
    found = MISSING_INPUT.search(message)
    if found is None:
        return False
    name = found.group("name")
    return name is None or name.startswith(f"{pod.name}-")


def _start_failure_hold(pod: Pod, ctx: Context, message: str, *, missing: str,
                        other: str) -> JobState:
    """Hold 13 when the kubelet says a job-supplied Secret/ConfigMap is missing, else hold 6."""
    if _job_input_missing(pod, message):
        return _held(pod, ctx, HOLD_TRANSFER_INPUT_ERROR,
                     f"{missing}: a Secret or ConfigMap carrying the job's inputs or credentials "
                     f"is missing; check the job's input files and x509userproxy, then resubmit")
    return _held(pod, ctx, HOLD_FAILED_TO_CREATE_PROCESS, other)


def _v_config_hold(pod: Pod, ctx: Context) -> Verdict:
    c = _config_error(pod)
    assert c is not None
    detail = one_line(f"{c.waiting_reason}: {c.waiting_message}".rstrip(": "))
    kind = "Init container" if c.init else "Container"
    state = _start_failure_hold(
        pod, ctx, c.waiting_message,
        missing=f"{kind} {c.name} of pod {pod.ref} could not start ({detail})",
        other=f"{kind} {c.name} of pod {pod.ref} could not be created ({detail}); "
              f"check the job's executable, arguments and the image")
    return Verdict(state, Action.NONE, None,
                   f"{c.waiting_reason} for {_seconds(_elapsed(_waiting_since(pod, c), ctx))}")


def _v_config_waiting(pod: Pod, ctx: Context) -> Verdict:
    c = _config_error(pod)
    assert c is not None
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"{c.waiting_reason} for {_seconds(_elapsed(_waiting_since(pod, c), ctx))}: "
                   f"{one_line(c.waiting_message, 200)}")


def _mount_failing(pod: Pod, ctx: Context) -> bool:
    """A FailedMount event while the pod still waits for its containers to be created."""
    return bool(ctx.mount_error) and pod.phase in ("Pending", "") and pod.node is not None


def _mount_failed_too_long(pod: Pod, ctx: Context) -> bool:
    return _mount_failing(pod, ctx) and \
        _elapsed(_waiting_since(pod), ctx) > ctx.settings.config_error_grace


def _v_mount_hold(pod: Pod, ctx: Context) -> Verdict:
    detail = one_line(f"FailedMount: {ctx.mount_error}")
    state = _start_failure_hold(
        pod, ctx, ctx.mount_error,
        missing=f"A volume of pod {pod.ref} could not be mounted ({detail})",
        other=f"A volume of pod {pod.ref} could not be mounted ({detail}); check the "
              f"volumes of the pod template and the shared volume with the admin")
    return Verdict(state, Action.NONE, None,
                   f"FailedMount for {_seconds(_elapsed(_waiting_since(pod), ctx))}")


def _v_mount_waiting(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"FailedMount for {_seconds(_elapsed(_waiting_since(pod), ctx))}: "
                   f"{one_line(ctx.mount_error, 200)}")


def _unschedulable(pod: Pod) -> bool:
    cond = pod.condition("PodScheduled")
    return cond.get("status") == "False" and cond.get("reason") == "Unschedulable"


def _unschedulable_for(pod: Pod, ctx: Context) -> float:
    return _elapsed(parse_time(pod.condition("PodScheduled").get("lastTransitionTime")), ctx)


def _unschedulable_too_long(pod: Pod, ctx: Context) -> bool:
    limit = ctx.settings.pending_limit
    return _unschedulable(pod) and limit > 0 and _unschedulable_for(pod, ctx) > limit


def _v_unschedulable_hold(pod: Pod, ctx: Context) -> Verdict:
    waited = _seconds(_unschedulable_for(pod, ctx))
    state = _held(pod, ctx, HOLD_SYSTEM_POLICY,
                  f"Pod {pod.ref} could not be scheduled for {waited} (Unschedulable: "
                  f"{_scheduler_message(pod)}); no node fits the job's requests, so lower "
                  f"RequestCpus, RequestMemory or GPUs, or ask the admin "
                  f"(KGAHP_PENDING_LIMIT = {_seconds(ctx.settings.pending_limit)})")
    return Verdict(state, Action.NONE, None, f"Unschedulable for {waited}")


def _v_unschedulable(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"Unschedulable for {_seconds(_unschedulable_for(pod, ctx))}: "
                   f"{_scheduler_message(pod)}")


def _v_running(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, RUNNING), Action.NONE, None,
                   f"running on {pod.node or '(unknown node)'}")


def _starting_reason(pod: Pod) -> str:
    waiting = next((c for c in _all_containers(pod) if c.waiting_reason), None)
    if waiting is not None:
        return f"{waiting.waiting_reason} ({waiting.name})"
    return "waiting to be scheduled" if not pod.node else "starting"


def _v_starting(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, IDLE), Action.NONE, None,
                   f"Pending: {_starting_reason(pod)}")
