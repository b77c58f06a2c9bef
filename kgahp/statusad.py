"""JobState → the status ad text of a BLAH_JOB_STATUS result (docs/protocol.md).

The ad is built with classad2 so every string is escaped by the ClassAd library, never by hand,
and unparsed in its one-line form (`[ A = 1; B = "x" ]`): a result token must not carry a raw
line break, and str(ClassAd) is the multi-line pretty form.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import classad2

from kgahp.model import HELD, REMOVED, JobState

# ClassAd attribute ← JobState field, sent only when the field is set. RemoteWallClockTime is
# deliberately absent: the gridmanager counts wall time itself and would double it.
OPTIONAL_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("ExitCode", "exit_code"),
    ("ExitBySignal", "exit_by_signal"),
    ("ExitSignal", "exit_signal"),
    ("ExitReason", "exit_reason"),
    ("WorkerNode", "worker_node"),
    ("NumRestarts", "num_restarts"),
    ("CpusProvisioned", "cpus_provisioned"),
    ("MemoryProvisioned", "memory_provisioned"),
    ("DiskProvisioned", "disk_provisioned"),
    ("RemoteUserCpu", "remote_user_cpu"),
    ("RemoteSysCpu", "remote_sys_cpu"),
)
# Read by the gridmanager only when JobStatus is 5, so sent only then.
HOLD_ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("HoldReason", "hold_reason"),
    ("HoldReasonCode", "hold_code"),
    ("HoldReasonSubCode", "hold_subcode"),
)

# Why kgahp reports 3: HTCondor's own name for the reason a job left the queue.
REMOVE_ATTRIBUTES: tuple[tuple[str, str], ...] = (("RemoveReason", "remove_reason"),)


def classad_safe(text: str) -> str:
    """A string classad2 can hold: no NUL (refused) and no lone surrogate (crashes classad2)."""
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _usable(value: Any) -> bool:
    if value is None:
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def status_attributes(job_id: str, state: JobState) -> dict[str, Any]:
    """The attributes of the status ad as plain Python values (unset ones left out)."""
    attributes: dict[str, Any] = {"BatchJobId": job_id, "JobStatus": state.job_status}
    pairs = OPTIONAL_ATTRIBUTES + (HOLD_ATTRIBUTES if state.job_status == HELD else ()) + (
        REMOVE_ATTRIBUTES if state.job_status == REMOVED else ())
    for attribute, field_name in pairs:
        value: Optional[Any] = getattr(state, field_name)
        if _usable(value):
            attributes[attribute] = value
    return {k: classad_safe(v) if isinstance(v, str) else v for k, v in attributes.items()}


def status_ad(job_id: str, state: JobState) -> str:
    """The status ad in new ClassAd syntax, on one line, escaped by classad2."""
    ad = classad2.ClassAd()
    for attribute, value in status_attributes(job_id, state).items():
        ad[attribute] = value
    return repr(ad)
