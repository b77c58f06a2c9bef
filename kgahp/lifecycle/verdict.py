"""What the lifecycle table answers: a `Verdict` (the state to report and the `Action` to take),
the HTCondor hold codes it uses, and the bounding of Kubernetes text for hold and remove reasons.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from kgahp.codes import HoldCode
from kgahp.model import JobState

# HTCondor HoldReasonCode values (src/condor_utils/condor_holdcodes.h)
HOLD_FAILED_TO_CREATE_PROCESS = HoldCode.FailedToCreateProcess
HOLD_TRANSFER_INPUT_ERROR = HoldCode.TransferInputError
HOLD_SYSTEM_POLICY = HoldCode.SystemPolicy
HOLD_JOB_OUT_OF_RESOURCES = HoldCode.JobOutOfResources
HOLD_INVALID_DOCKER_IMAGE = HoldCode.InvalidDockerImage
HOLD_JOB_EXECUTE_EXCEEDED = HoldCode.JobExecuteExceeded


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


def one_line(text: str, limit: int = MAX_KUBE_MESSAGE) -> str:
    """Kubernetes text made safe for a HoldReason: one line, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _hold_reason(text: str) -> str:
    return one_line(text, MAX_HOLD_REASON)
