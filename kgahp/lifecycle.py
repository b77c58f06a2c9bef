"""Pod → job status: the lifecycle table of docs/job-states.md, as data.

`classify` reads a pod (a plain camelCase dict, as the API server returns it) and walks `RULES`
in order; the first rule whose `applies` is true gives the `Verdict`. Every threshold comes from
`LifecycleSettings`. Nothing here does I/O or reads a clock: the caller passes `now`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Optional

from kubernetes.utils.quantity import parse_quantity

from kgahp.codes import HoldCode
from kgahp.config import LifecycleSettings
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING, JobState

# HTCondor HoldReasonCode values (src/condor_utils/condor_holdcodes.h)
HOLD_FAILED_TO_CREATE_PROCESS = HoldCode.FailedToCreateProcess
HOLD_TRANSFER_INPUT_ERROR = HoldCode.TransferInputError
HOLD_SYSTEM_POLICY = HoldCode.SystemPolicy
HOLD_JOB_OUT_OF_RESOURCES = HoldCode.JobOutOfResources
HOLD_INVALID_DOCKER_IMAGE = HoldCode.InvalidDockerImage
HOLD_JOB_EXECUTE_EXCEEDED = HoldCode.JobExecuteExceeded

RESTARTS_ANNOTATION = "kgahp.htcondor.org/restarts"

IMAGE_PULL_REASONS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"})
CONFIG_ERROR_REASONS = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
# status.reason values the kubelet or node controllers set when the node, not the job, ended
# the pod: eviction, node loss, graceful node shutdown, admission refusals.
DISRUPTION_POD_REASONS = frozenset({
    "Evicted", "Preempting", "NodeLost", "Terminated", "Shutdown", "NodeShutdown",
    "UnexpectedAdmissionError", "NodeAffinity", "OutOfcpu", "OutOfmemory", "OutOfpods"})
THROTTLED_PULL = "pull qps exceeded"
# kubelet messages meaning a Secret/ConfigMap (how kgahp ships job inputs and credentials) is absent
MISSING_INPUT = re.compile(
    r'(secret|configmap) "(?P<name>[^"]*)" not found|couldn\'t find key', re.IGNORECASE)

CANCELLED_REASON = "Job cancelled through kgahp (BLAH_JOB_CANCEL); its pod was deleted"

MAX_HOLD_REASON = 999
MAX_KUBE_MESSAGE = 400


class Action(enum.Enum):
    """What the service should do next about the pod."""

    NONE = "none"          # nothing: report `state`
    COLLECT = "collect"    # pod finished: fetch outputs, then report `final`
    RECREATE = "recreate"  # disruption: once the old pod is gone, create a new one (state IDLE)
    DELETE = "delete"      # force-delete (grace 0) a pod stuck terminating; if `state` is IDLE
    #                        the job is then created again as for RECREATE


@dataclass(frozen=True)
class Verdict:
    state: JobState               # what to report now
    action: Action
    final: Optional[JobState]     # for COLLECT: the state to report once outputs are in place
    reason: str                   # short phrase for the log
    rule: str = ""                # name of the RULES entry that decided (for logs and tests)


# ---------------------------------------------------------------------------------------------
# Reading a pod dict into the few facts the rules look at


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    init: bool
    waiting_reason: str = ""
    waiting_message: str = ""
    running: bool = False
    terminated: bool = False
    exit_code: Optional[int] = None
    terminated_reason: str = ""
    terminated_message: str = ""
    memory_limit: str = ""
    finished_at: Optional[float] = None          # state.terminated.finishedAt


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    phase: str
    reason: str                                  # status.reason
    message: str                                 # status.message
    node: Optional[str]
    conditions: Mapping[str, Mapping[str, Any]]  # by type
    created: Optional[float]
    start_time: Optional[float]
    deletion_at: Optional[float]                 # deletionTimestamp (already includes the grace)
    deletion_grace: Optional[int]                # deletionGracePeriodSeconds
    active_deadline: Optional[int]
    main: Optional[Container]
    init_containers: tuple[Container, ...]
    cpus: Optional[float]
    memory_mib: Optional[int]
    disk_kib: Optional[int]
    scheduling_gates: tuple[str, ...] = ()       # spec.schedulingGates names
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def finished(self) -> bool:
        return self.phase in ("Succeeded", "Failed")

    def condition(self, kind: str) -> Mapping[str, Any]:
        return self.conditions.get(kind, {})


def parse_time(value: Any) -> Optional[float]:
    """RFC 3339 time (as the API or sanitize_for_serialization writes it) → epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
        # Python 3.9's fromisoformat wants 0, 3 or 6 fraction digits; the API may send up to 9.
        text = re.sub(r"\.(\d+)", lambda m: "." + (m.group(1) + "000000")[:6], text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _quantity(value: Any) -> Optional[Decimal]:
    if value is None or value == "":
        return None
    try:
        return Decimal(parse_quantity(value))
    except (ValueError, InvalidOperation, TypeError):
        return None


def _container(spec: Mapping[str, Any], status: Mapping[str, Any], init: bool) -> Container:
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated")
    limits = (spec.get("resources") or {}).get("limits") or {}
    exit_code = terminated.get("exitCode") if terminated else None
    return Container(
        name=str(spec.get("name") or status.get("name") or ""),
        image=str(spec.get("image") or status.get("image") or ""),
        init=init,
        waiting_reason=str(waiting.get("reason") or ""),
        waiting_message=str(waiting.get("message") or ""),
        running=state.get("running") is not None,
        terminated=terminated is not None,
        exit_code=int(exit_code) if exit_code is not None else None,
        terminated_reason=str((terminated or {}).get("reason") or ""),
        terminated_message=str((terminated or {}).get("message") or ""),
        memory_limit=str(limits.get("memory") or ""),
        finished_at=parse_time((terminated or {}).get("finishedAt")),
    )


def _containers(specs: list[Any], statuses: list[Any], init: bool) -> list[Container]:
    by_name = {s.get("name"): s for s in statuses if isinstance(s, Mapping)}
    return [_container(s, by_name.get(s.get("name"), {}), init)
            for s in specs if isinstance(s, Mapping)]


def read_pod(pod: Mapping[str, Any], main_container: str = "job") -> Pod:
    """The facts of one pod dict; missing fields read as empty, never raise."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    mains = _containers(spec.get("containers") or [], status.get("containerStatuses") or [], False)
    main = next((c for c in mains if c.name == main_container), mains[0] if mains else None)
    inits = _containers(spec.get("initContainers") or [],
                        status.get("initContainerStatuses") or [], True)
    main_spec = next((c for c in spec.get("containers") or []
                      if isinstance(c, Mapping) and c.get("name") == (main.name if main else None)),
                     {})
    resources = main_spec.get("resources") or {}
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}

    def requested(name: str) -> Optional[Decimal]:
        return _quantity(requests.get(name, limits.get(name)))

    cpus, memory, disk = requested("cpu"), requested("memory"), requested("ephemeral-storage")
    deadline = spec.get("activeDeadlineSeconds")
    grace = meta.get("deletionGracePeriodSeconds")
    return Pod(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        phase=str(status.get("phase") or ""),
        reason=str(status.get("reason") or ""),
        message=str(status.get("message") or ""),
        node=spec.get("nodeName") or None,
        conditions={str(c.get("type")): c for c in status.get("conditions") or []
                    if isinstance(c, Mapping)},
        created=parse_time(meta.get("creationTimestamp")),
        start_time=parse_time(status.get("startTime")),
        deletion_at=parse_time(meta.get("deletionTimestamp")),
        deletion_grace=int(grace) if isinstance(grace, (int, float, str)) and
        str(grace).lstrip("-").isdigit() else None,
        active_deadline=int(deadline) if deadline is not None else None,
        main=main,
        init_containers=tuple(inits),
        cpus=float(cpus) if cpus is not None else None,
        memory_mib=int(memory / (1 << 20)) if memory is not None else None,
        disk_kib=int(disk / (1 << 10)) if disk is not None else None,
        scheduling_gates=tuple(str(g.get("name") or "") for g in spec.get("schedulingGates")
                               or () if isinstance(g, Mapping)),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


# ---------------------------------------------------------------------------------------------
# Small helpers the rules share


@dataclass(frozen=True)
class Context:
    now: float
    settings: LifecycleSettings
    restarts: int
    deleted_by_kgahp: bool
    mount_error: str = ""      # newest FailedMount event message, when the caller watches events
    ever_started: bool = False  # an earlier look saw the job's container run


def one_line(text: str, limit: int = MAX_KUBE_MESSAGE) -> str:
    """Kubernetes text made safe for a HoldReason: one line, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _hold_reason(text: str) -> str:
    return one_line(text, MAX_HOLD_REASON)


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


def _waiting_since(pod: Pod, container: Optional[Container] = None) -> Optional[float]:
    """When the kubelet began preparing `container` (or the pod): its pull or creation began then.

    status.startTime is written by the kubelet when it admits the pod, so it is the earliest
    moment a pull can fail; the PodScheduled=True transition (binding) and creation are fallbacks.
    A regular container is prepared only after the init containers are done (Initialized=True),
    so a long input staging does not eat its grace.
    """
    scheduled = pod.condition("PodScheduled")
    bound = parse_time(scheduled.get("lastTransitionTime")) \
        if scheduled.get("status") == "True" else None
    since = next((t for t in (pod.start_time, bound, pod.created) if t is not None), None)
    initialized = pod.condition("Initialized")
    if container is not None and not container.init and initialized.get("status") == "True":
        done = parse_time(initialized.get("lastTransitionTime"))
        if done is not None and (since is None or done > since):
            since = done
    return since


def _elapsed(since: Optional[float], ctx: Context) -> float:
    # No timestamp means no evidence of how long: treat as just started (never hold on it).
    return max(0.0, ctx.now - since) if since is not None else 0.0


def _all_containers(pod: Pod) -> tuple[Container, ...]:
    return pod.init_containers + ((pod.main,) if pod.main else ())


def _waiting_in(pod: Pod, reasons: frozenset[str]) -> Optional[Container]:
    return next((c for c in _all_containers(pod) if c.waiting_reason in reasons), None)


def _pull_failure(pod: Pod) -> Optional[Container]:
    c = _waiting_in(pod, IMAGE_PULL_REASONS)
    if c is None or THROTTLED_PULL in c.waiting_message.lower():
        return None
    return c


def _pull_failed_too_long(pod: Pod, ctx: Context) -> bool:
    c = _pull_failure(pod)
    return c is not None and _elapsed(_waiting_since(pod, c), ctx) > ctx.settings.image_pull_grace


def _config_error(pod: Pod) -> Optional[Container]:
    return _waiting_in(pod, CONFIG_ERROR_REASONS)


def _config_failed_too_long(pod: Pod, ctx: Context) -> bool:
    c = _config_error(pod)
    return c is not None and \
        _elapsed(_waiting_since(pod, c), ctx) > ctx.settings.config_error_grace


def _failed_init(pod: Pod) -> Optional[Container]:
    return next((c for c in pod.init_containers if c.terminated and c.exit_code), None)


def _disruption(pod: Pod) -> Optional[str]:
    """Why Kubernetes (not the job) ended the pod, or None.

    Any DisruptionTarget=True counts (PreemptionByScheduler, DeletionByTaintManager,
    EvictionByEvictionAPI, DeletionByPodGC, TerminationByKubelet today; the condition means
    "disrupted" whatever reason later versions add).
    """
    target = pod.condition("DisruptionTarget")
    if target.get("status") == "True":
        return f"DisruptionTarget {target.get('reason') or 'unknown'}: " \
               f"{one_line(str(target.get('message') or ''), 200)}".rstrip(": ")
    if pod.reason in DISRUPTION_POD_REASONS:
        return f"{pod.reason}: {one_line(pod.message, 200)}".rstrip(": ")
    main = pod.main
    if main is not None and main.terminated_reason == "ContainerStatusUnknown":
        # The kubelet lost track of the container (node gone): its 137 is not the job's exit.
        return f"ContainerStatusUnknown: {one_line(main.terminated_message, 200)}".rstrip(": ")
    return None


def _main_exit(pod: Pod) -> Optional[Container]:
    main = pod.main
    return main if main is not None and main.terminated and main.exit_code is not None else None


def _signal_of(c: Container) -> Optional[int]:
    code = c.exit_code or 0
    return code - 128 if 129 <= code <= 128 + 64 else None


def _oom_killed(pod: Pod) -> bool:
    main = pod.main
    return main is not None and main.terminated and main.terminated_reason == "OOMKilled"


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


# ---------------------------------------------------------------------------------------------
# The rules. Each `applies` is a pure predicate; order matters: first match wins.


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


def _v_deleted_elsewhere(pod: Pod, ctx: Context) -> Verdict:
    requested = _deletion_requested_at(pod)
    grace = pod.deletion_grace
    how = "forced (grace 0)" if grace == 0 and not pod.finished else (
        f"grace {grace} s" if grace is not None else "grace unknown")
    when = datetime.fromtimestamp(requested, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") \
        if requested is not None else "?"
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


def _scheduler_message(pod: Pod) -> str:
    return one_line(str(pod.condition("PodScheduled").get("message") or "no message"))


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


# ---------------------------------------------------------------------------------------------
# Kueue (plain-pod integration): quota gate, preemption. Kueue's names, from its pod controller.

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


Predicate = Callable[[Pod, Context], bool]
Decide = Callable[[Pod, Context], Verdict]


@dataclass(frozen=True)
class Rule:
    name: str
    situation: str        # the docs/job-states.md row, in its words
    applies: Predicate
    verdict: Decide


def _not_own(pred: Predicate) -> Predicate:
    """Disruption rules do not apply to a pod kgahp itself is deleting."""
    return lambda pod, ctx: not ctx.deleted_by_kgahp and pred(pod, ctx)


RULES: tuple[Rule, ...] = (
    Rule("kueue-stopped", "Kueue stopped the pod (TerminationTarget=True: preempted, evicted, "
         "workload gone) and deletes it; it never recreates it: a disruption, created again",
         _not_own(lambda p, c: _kueue_stopped(p) is not None and p.phase != "Succeeded"),
         _v_kueue_stopped),
    Rule("deleted-elsewhere", "Pod deleted by someone else (kubectl delete, graceful or forced, "
         "namespace deletion) before its job ended: 3 Removed if it started, else created again; "
         "never Completed", _deleted_elsewhere, _v_deleted_elsewhere),
    Rule("stuck-terminating", "Pod stuck Terminating past its grace + KGAHP_UNKNOWN_GRACE",
         _not_own(_stuck_terminating), _v_stuck_terminating),
    Rule("stuck-terminating-own-delete", "Pod kgahp deleted, stuck Terminating past the grace",
         lambda p, c: c.deleted_by_kgahp and _stuck_terminating(p, c), _v_stuck_own_delete),
    Rule("cancelled", "Job kgahp cancelled (BLAH_JOB_CANCEL): 3 Removed, never collected",
         lambda p, c: c.deleted_by_kgahp and p.deletion_at is not None, _v_cancelled),
    Rule("node-lost", "Phase Unknown longer than KGAHP_UNKNOWN_GRACE",
         _not_own(_unknown_too_long), _v_node_lost),
    Rule("phase-unknown", "Phase Unknown (node unreachable), within KGAHP_UNKNOWN_GRACE",
         lambda p, c: p.phase == "Unknown", _v_unknown_within_grace),
    Rule("disruption", "Evicted, preempted, node lost (status.reason / DisruptionTarget)",
         _not_own(lambda p, c: _disruption(p) is not None and p.phase != "Succeeded"),
         _v_disruption),
    Rule("deadline-exceeded", "status.reason = DeadlineExceeded (activeDeadlineSeconds)",
         lambda p, c: p.reason == "DeadlineExceeded", _v_deadline),
    Rule("oom-killed-hold", "OOMKilled, KGAHP_OOM_POLICY = hold",
         lambda p, c: _oom_killed(p) and c.settings.oom_policy != "signal", _v_oom_hold),
    Rule("oom-killed-signal", "OOMKilled, KGAHP_OOM_POLICY = signal",
         lambda p, c: _oom_killed(p) and c.settings.oom_policy == "signal", _v_oom_signal),
    Rule("succeeded", "Phase Succeeded",
         lambda p, c: p.phase == "Succeeded", _v_succeeded),
    Rule("killed-by-signal", "Main container exited 128+s (s in 1..64), reason not OOMKilled",
         _killed_by_signal, _v_signal),
    Rule("exited", "Main container exited with N (Failed, reason Error or Completed)",
         lambda p, c: _main_exit(p) is not None, _v_exit),
    Rule("init-failed", "Init container failed (exit code != 0)",
         lambda p, c: _failed_init(p) is not None, _v_init_failed),
    Rule("failed-unexplained", "Phase Failed without a main-container exit code",
         lambda p, c: p.phase == "Failed", _v_failed_unexplained),
    Rule("image-pull-hold", "ErrImagePull/ImagePullBackOff/InvalidImageName/ErrImageNeverPull "
         "past KGAHP_IMAGE_PULL_GRACE", _pull_failed_too_long, _v_pull_hold),
    Rule("image-pull-waiting", "Image pull failing within the grace, or throttled "
         "(pull QPS exceeded)", lambda p, c: _waiting_in(p, IMAGE_PULL_REASONS) is not None,
         _v_pulling),
    Rule("config-error-hold", "CreateContainerConfigError/CreateContainerError/"
         "RunContainerError past KGAHP_CONFIG_ERROR_GRACE", _config_failed_too_long,
         _v_config_hold),
    Rule("config-error-waiting", "Container config error within the grace",
         lambda p, c: _config_error(p) is not None, _v_config_waiting),
    Rule("mount-failure-hold", "FailedMount event past KGAHP_CONFIG_ERROR_GRACE (kgahp reads "
         "the events of a pod on a node that has not started for 10 s)",
         _mount_failed_too_long, _v_mount_hold),
    Rule("mount-failure-waiting", "FailedMount event within the grace",
         _mount_failing, _v_mount_waiting),
    Rule("scheduling-gated", "Pod with scheduling gates (Kueue's kueue.x-k8s.io/admission: "
         "waiting for quota in its LocalQueue): Idle, never a hold",
         lambda p, c: _gated(p), _v_gated),
    Rule("kueue-unschedulable", "Kueue-admitted pod Unschedulable: Idle, no KGAHP_PENDING_LIMIT "
         "hold (the time spent gated keeps PodScheduled=False; Kueue's waitForPodsReady owns "
         "this timeout)", lambda p, c: _kueue_managed(p) and _unschedulable(p),
         _v_kueue_unschedulable),
    Rule("unschedulable-hold", "PodScheduled=False Unschedulable past KGAHP_PENDING_LIMIT",
         _unschedulable_too_long, _v_unschedulable_hold),
    Rule("unschedulable", "PodScheduled=False Unschedulable",
         lambda p, c: _unschedulable(p), _v_unschedulable),
    Rule("running", "Phase Running, main container running",
         lambda p, c: p.phase == "Running", _v_running),
    Rule("starting", "Pending: ContainerCreating, PodInitializing, image being pulled",
         lambda p, c: True, _v_starting),
)


def restarts_of(pod: Mapping[str, Any]) -> int:
    """Disruptions so far, from the pod's restarts annotation (0 when absent or unreadable)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    try:
        return max(0, int(str(annotations.get(RESTARTS_ANNOTATION, "0")).strip()))
    except ValueError:
        return 0


def classify(pod: Mapping[str, Any], *, now: float, settings: LifecycleSettings,
             main_container: str = "job", restarts: int = 0,
             deleted_by_kgahp: bool = False, mount_error: str = "",
             ever_started: bool = False) -> Verdict:
    """What to report for `pod` at time `now` (epoch seconds), and what to do about it.

    `restarts` is the number of disruptions so far (the pod's kgahp.htcondor.org/restarts
    annotation); `deleted_by_kgahp` says kgahp itself asked for the pod's deletion, so its
    termination is not a disruption. `mount_error` is the message of the newest FailedMount
    event of the pod (mount failures show only as events; the pod just stays ContainerCreating).
    `ever_started` says an earlier look saw the job run (a deleted pod then is not recreated).
    """
    facts = read_pod(pod, main_container)
    ctx = Context(now=now, settings=settings, restarts=max(0, restarts),
                  deleted_by_kgahp=deleted_by_kgahp, mount_error=mount_error,
                  ever_started=ever_started)
    for rule in RULES:
        if rule.applies(facts, ctx):
            return replace(rule.verdict(facts, ctx), rule=rule.name)
    raise AssertionError("the last rule always applies")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# A pod that disappeared without kgahp deleting it and without a recorded result


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
