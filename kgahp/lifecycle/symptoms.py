"""Pure readings of a pod's facts the rules share: how long it has waited, a failing image pull
or container config, a failed init container, a disruption Kubernetes caused, the main
container's exit or signal, the scheduler's message.
"""

from __future__ import annotations

import re
from typing import Optional

from kgahp.lifecycle.context import Context, _elapsed
from kgahp.lifecycle.pod import Container, Pod, parse_time
from kgahp.lifecycle.verdict import one_line

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


def _scheduler_message(pod: Pod) -> str:
    return one_line(str(pod.condition("PodScheduled").get("message") or "no message"))
