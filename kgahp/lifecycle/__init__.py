"""Pod → job status: the lifecycle table of docs/job-states.md, as data.

`classify` reads a pod (a plain camelCase dict, as the API server returns it) and walks `RULES`
in order; the first rule whose `applies` is true gives the `Verdict`. Every threshold comes from
`LifecycleSettings`. Nothing here does I/O or reads a clock: the caller passes `now`.

The modules: `verdict` (what the table answers), `pod` (the facts read from a pod dict),
`context` and `symptoms` (what the rules share), `ending`, `starting` and `kueue` (the verdicts),
`table` (the rule order and `classify`), `vanished` (a pod that disappeared).
"""

from __future__ import annotations

from kgahp.lifecycle import jobs
from kgahp.lifecycle.context import Context
from kgahp.lifecycle.kueue import (
    KUEUE_GATE,
    KUEUE_MANAGED_LABEL,
    KUEUE_QUEUE_LABEL,
    KUEUE_STOP_CONDITION,
)
from kgahp.lifecycle.pod import (
    RESTARTS_ANNOTATION,
    Container,
    Pod,
    parse_time,
    read_pod,
    restarts_of,
)
from kgahp.lifecycle.symptoms import (
    CONFIG_ERROR_REASONS,
    DISRUPTION_POD_REASONS,
    IMAGE_PULL_REASONS,
    MISSING_INPUT,
    THROTTLED_PULL,
)
from kgahp.lifecycle.table import RULES, Decide, Predicate, Rule, classify
from kgahp.lifecycle.vanished import VANISHED_RULES, VanishedRule, vanished
from kgahp.lifecycle.verdict import (
    CANCELLED_REASON,
    HOLD_FAILED_TO_CREATE_PROCESS,
    HOLD_INVALID_DOCKER_IMAGE,
    HOLD_JOB_EXECUTE_EXCEEDED,
    HOLD_JOB_OUT_OF_RESOURCES,
    HOLD_SYSTEM_POLICY,
    HOLD_TRANSFER_INPUT_ERROR,
    MAX_HOLD_REASON,
    MAX_KUBE_MESSAGE,
    Action,
    Verdict,
    one_line,
)

__all__ = [
    "CANCELLED_REASON", "CONFIG_ERROR_REASONS", "DISRUPTION_POD_REASONS",
    "HOLD_FAILED_TO_CREATE_PROCESS", "HOLD_INVALID_DOCKER_IMAGE", "HOLD_JOB_EXECUTE_EXCEEDED",
    "HOLD_JOB_OUT_OF_RESOURCES", "HOLD_SYSTEM_POLICY", "HOLD_TRANSFER_INPUT_ERROR",
    "IMAGE_PULL_REASONS", "KUEUE_GATE", "KUEUE_MANAGED_LABEL", "KUEUE_QUEUE_LABEL",
    "KUEUE_STOP_CONDITION", "MAX_HOLD_REASON", "MAX_KUBE_MESSAGE", "MISSING_INPUT",
    "RESTARTS_ANNOTATION", "RULES", "THROTTLED_PULL", "VANISHED_RULES", "Action", "Container",
    "Context", "Decide", "Pod", "Predicate", "Rule", "VanishedRule", "Verdict", "classify",
    "jobs", "one_line", "parse_time", "read_pod", "restarts_of", "vanished",
]
