"""Verdicts for a pod that is being deleted or has ended: deletion by someone else, cancel, stuck
terminating, node lost, disruption, deadline, OOM, exit code or signal, failed init.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Optional

from kgahp.lifecycle.context import (
    Context,
    _disrupted,
    _elapsed,
    _held,
    _phase_state,
    _seconds,
    _state,
)
from kgahp.lifecycle.pod import Container, Pod, _quantity, parse_time
from kgahp.lifecycle.symptoms import (
    MISSING_INPUT,
    _disruption,
    _failed_init,
    _main_exit,
    _signal_of,
)
from kgahp.lifecycle.vanished import vanished
from kgahp.lifecycle.verdict import (
    CANCELLED_REASON,
    HOLD_FAILED_TO_CREATE_PROCESS,
    HOLD_JOB_EXECUTE_EXCEEDED,
    HOLD_JOB_OUT_OF_RESOURCES,
    HOLD_TRANSFER_INPUT_ERROR,
    Action,
    Verdict,
    one_line,
)
from kgahp.model import COMPLETED, REMOVED, RUNNING


def _deletion_requested_at(pod: Pod) -> Optional[float]:
    """When the DELETE was sent: deletionTimestamp is that moment plus the grace period."""
    if pod.deletion_at is None:
        return None
    return pod.deletion_at - max(0, pod.deletion_grace or 0)


def _ended_before_deletion(pod: Pod) -> bool:
    """The job's own process had ended before anyone asked for the pod's deletion.

    A kubelet finishing a graceful deletion deletes again with grace 0, which moves
    deletionTimestamp to that moment: a container it stopped with SIGTERM/SIGKILL then looks
    finished "before" it. Such an exit (143/137) under a grace-0 deletion is counted as caused
    by the deletion. Otherwise a container that finished more than a second before the request
    ended on its own (a finished pod deleted later).
    """
    main = pod.main
    requested = _deletion_requested_at(pod)
    if not pod.finished or main is None or not main.terminated or main.finished_at is None \
            or requested is None:
        return False
    if (pod.deletion_grace or 0) == 0 and _signal_of(main) in (9, 15):
        return False
    return main.finished_at < requested - 1


def _deleted_elsewhere(pod: Pod, ctx: Context) -> bool:
    """Being deleted, not by kgahp, not a disruption Kubernetes marks as such, and the job had
    not ended on its own before: the deletion ended the job."""
    return pod.deletion_at is not None and not ctx.deleted_by_kgahp and \
        _disruption(pod) is None and not _ended_before_deletion(pod)


def _job_started(pod: Pod, ctx: Context) -> bool:
    main = pod.main
    return ctx.ever_started or pod.phase == "Running" or (
        main is not None and (main.running or main.terminated))


def deletion_requested_text(pod: Pod) -> str:
    """When the pod's DELETE was sent, as RFC 3339 UTC ("?" when unknown)."""
    requested = _deletion_requested_at(pod)
    return datetime.fromtimestamp(requested, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
        if requested is not None else "?"


def _v_deleted_elsewhere(pod: Pod, ctx: Context) -> Verdict:
    grace = pod.deletion_grace
    how = "forced (grace 0)" if grace == 0 and not pod.finished else (
        f"grace {grace} s" if grace is not None else "grace unknown")
    when = deletion_requested_text(pod)
    stuck = not pod.finished and ctx.now > (pod.deletion_at or ctx.now) + \
        ctx.settings.unknown_grace
    found = vanished(ever_started=_job_started(pod, ctx), restarts=ctx.restarts,
                     settings=ctx.settings, namespace=pod.namespace, name=pod.name)
    state = found.state
    if state.job_status == REMOVED:
        state = replace(_state(pod, ctx, REMOVED), remove_reason=one_line(
            f"Pod {pod.ref} was deleted by someone other than kgahp (requested {when}, {how}; "
            f"kubectl delete, a namespace deletion or a cleanup script) while the job ran, so "
            f"the job did not finish on its own and its outputs were not collected"))
    action = Action.DELETE if stuck else found.action
    return Verdict(state, action, None, f"deleted by someone else ({how}, requested {when}): "
                   f"{found.reason}")


def _v_cancelled(pod: Pod, ctx: Context) -> Verdict:
    state = replace(_state(pod, ctx, REMOVED), remove_reason=CANCELLED_REASON)
    return Verdict(state, Action.NONE, None, "cancelled by kgahp (BLAH_JOB_CANCEL)")


def _stuck_terminating(pod: Pod, ctx: Context) -> bool:
    return pod.deletion_at is not None and not pod.finished and \
        ctx.now > pod.deletion_at + ctx.settings.unknown_grace


def _v_stuck_terminating(pod: Pod, ctx: Context) -> Verdict:
    why = _disruption(pod) or f"pod stuck terminating on node {pod.node or '(none)'}"
    return _disrupted(pod, ctx, why, Action.DELETE)


def _v_stuck_own_delete(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_phase_state(pod, ctx), Action.DELETE, None,
                   f"pod kgahp deleted is still terminating "
                   f"{_seconds(ctx.now - (pod.deletion_at or ctx.now))} after its grace")


def _unknown_since(pod: Pod) -> Optional[float]:
    ready = pod.condition("Ready")
    return parse_time(ready.get("lastTransitionTime"))


def _v_unknown_within_grace(pod: Pod, ctx: Context) -> Verdict:
    return Verdict(_state(pod, ctx, RUNNING), Action.NONE, None,
                   f"phase Unknown for {_seconds(_elapsed(_unknown_since(pod), ctx))} "
                   f"(node {pod.node} unreachable?), keeping Running")


def _unknown_too_long(pod: Pod, ctx: Context) -> bool:
    return pod.phase == "Unknown" and \
        _elapsed(_unknown_since(pod), ctx) > ctx.settings.unknown_grace


def _v_node_lost(pod: Pod, ctx: Context) -> Verdict:
    return _disrupted(pod, ctx, f"node {pod.node or '(none)'} lost: pod phase Unknown for "
                      f"{_seconds(_elapsed(_unknown_since(pod), ctx))}", Action.RECREATE)


def _v_disruption(pod: Pod, ctx: Context) -> Verdict:
    return _disrupted(pod, ctx, _disruption(pod) or "disrupted", Action.RECREATE)


def _v_deadline(pod: Pod, ctx: Context) -> Verdict:
    limit = f"{pod.active_deadline} s" if pod.active_deadline is not None else "its limit"
    state = _held(pod, ctx, HOLD_JOB_EXECUTE_EXCEEDED,
                  f"Pod {pod.ref} ran longer than its activeDeadlineSeconds ({limit}, from the "
                  f"job's BatchRuntime) and Kubernetes stopped it (DeadlineExceeded); raise "
                  f"BatchRuntime if the job needs more time",
                  subcode=(pod.main.exit_code or 0) if pod.main else 0)
    return Verdict(state, Action.NONE, None, f"DeadlineExceeded after {limit}")


def _memory_limit(c: Container, pod: Pod) -> str:
    if c.memory_limit:
        mib = _quantity(c.memory_limit)
        exact = f" ({int(mib / (1 << 20))} MiB)" if mib is not None else ""
        return f"its memory limit of {c.memory_limit}{exact}"
    if pod.memory_mib is not None:
        return f"its memory request of {pod.memory_mib} MiB"
    return "the memory available to it"


def _v_oom_hold(pod: Pod, ctx: Context) -> Verdict:
    main = pod.main
    assert main is not None
    state = _held(pod, ctx, HOLD_JOB_OUT_OF_RESOURCES,
                  f"Container {main.name} of pod {pod.ref} was OOMKilled: the job used more than "
                  f"{_memory_limit(main, pod)}; resubmit with a larger RequestMemory",
                  subcode=main.exit_code or 0)
    return Verdict(state, Action.NONE, None, f"OOMKilled (limit {main.memory_limit or '?'})")


def _v_oom_signal(pod: Pod, ctx: Context) -> Verdict:
    final = _state(pod, ctx, COMPLETED, exit_by_signal=True, exit_signal=9,
                   exit_reason="OOMKilled")
    return Verdict(_state(pod, ctx, RUNNING), Action.COLLECT, final, "OOMKilled, signal 9")


def _v_succeeded(pod: Pod, ctx: Context) -> Verdict:
    final = _state(pod, ctx, COMPLETED, exit_code=0, exit_by_signal=False)
    return Verdict(_state(pod, ctx, RUNNING), Action.COLLECT, final, "pod Succeeded")


def _killed_by_signal(pod: Pod, ctx: Context) -> bool:
    c = _main_exit(pod)
    return c is not None and _signal_of(c) is not None and pod.phase != "Succeeded"


def _v_signal(pod: Pod, ctx: Context) -> Verdict:
    c = _main_exit(pod)
    assert c is not None
    signal = _signal_of(c)
    final = _state(pod, ctx, COMPLETED, exit_by_signal=True, exit_signal=signal)
    return Verdict(_state(pod, ctx, RUNNING), Action.COLLECT, final,
                   f"main container killed by signal {signal} (exit {c.exit_code}, "
                   f"{c.terminated_reason or 'no reason'})")


def _v_exit(pod: Pod, ctx: Context) -> Verdict:
    c = _main_exit(pod)
    assert c is not None
    final = _state(pod, ctx, COMPLETED, exit_code=c.exit_code, exit_by_signal=False)
    return Verdict(_state(pod, ctx, RUNNING), Action.COLLECT, final,
                   f"main container exited with {c.exit_code} ({c.terminated_reason or '-'})")


def _v_init_failed(pod: Pod, ctx: Context) -> Verdict:
    c = _failed_init(pod)
    assert c is not None
    detail = one_line(f"{c.terminated_reason}: {c.terminated_message}".strip(": "))
    missing = bool(MISSING_INPUT.search(c.terminated_message))
    code = HOLD_TRANSFER_INPUT_ERROR if missing else HOLD_FAILED_TO_CREATE_PROCESS
    state = _held(pod, ctx, code,
                  f"Init container {c.name} of pod {pod.ref} failed with exit code {c.exit_code}"
                  f"{f' ({detail})' if detail else ''}, so the job never started; "
                  f"see kubectl logs -n {pod.namespace} {pod.name} -c {c.name}",
                  subcode=c.exit_code or 0)
    return Verdict(state, Action.NONE, None, f"init container {c.name} exit {c.exit_code}")


def _v_failed_unexplained(pod: Pod, ctx: Context) -> Verdict:
    why = one_line(f"{pod.reason or 'no reason'}: {pod.message}".rstrip(": "))
    state = _held(pod, ctx, HOLD_FAILED_TO_CREATE_PROCESS,
                  f"Pod {pod.ref} failed ({why}) without an exit code from its main container; "
                  f"see kubectl describe pod -n {pod.namespace} {pod.name}")
    return Verdict(state, Action.NONE, None, f"pod Failed without exit: {why}")
