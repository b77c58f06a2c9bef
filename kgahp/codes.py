"""HTCondor's job status and hold reason codes, as the gridmanager reads them.

Names and values are HTCondor's own (`htcondor2.JobStatus`; the `CONDOR_HOLD_CODE` enum of
condor_holdcodes.h), so a code in a log or a test reads as it does in HTCondor's manual;
tests/reconcile/test_codes.py checks them against the installed bindings. Only the hold codes
kgahp reports are listed.
"""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):
    IDLE = 1
    RUNNING = 2
    REMOVED = 3
    COMPLETED = 4
    HELD = 5
    TRANSFERRING_OUTPUT = 6
    SUSPENDED = 7


class HoldCode(IntEnum):
    """HoldReasonCode values kgahp puts in a status ad (CamelCase as in HTCondor)."""

    FailedToCreateProcess = 6       # the container could not start (bad command, mounts)
    TransferOutputError = 12        # outputs could not be fetched or placed
    TransferInputError = 13         # inputs could not be staged
    SystemPolicy = 26               # kgahp's own policy: disruptions, lost pods
    JobOutOfResources = 34          # killed for memory (OOMKilled) or ephemeral storage
    InvalidDockerImage = 35         # the image cannot be pulled
    JobExecuteExceeded = 47         # activeDeadlineSeconds / the job's wall-clock limit
