"""Plain data passed between kgahp's layers. No behaviour, no I/O.

`JobRequest` is what the job ad asks for (produced by `kgahp.jobad`), `JobState` is what kgahp
reports about a job (produced by `kgahp.lifecycle`, turned into a status ad by `kgahp.statusad`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from kgahp.codes import JobStatus

# HTCondor JobStatus codes, by their short names
IDLE = JobStatus.IDLE
RUNNING = JobStatus.RUNNING
REMOVED = JobStatus.REMOVED
COMPLETED = JobStatus.COMPLETED
HELD = JobStatus.HELD

Scalar = Union[str, int, float, bool]


@dataclass(frozen=True)
class JobRequest:
    """A submit ad, typed. Every field is already validated for syntax and units (not policy)."""

    job_directory: str                      # JobDirectory: the stable per-job key
    cmd: str                                # Cmd: absolute path on the submit host
    iwd: str                                # Iwd: absolute directory on the submit host
    stage_cmd: bool = True                  # False: Cmd is a path inside the image
    arguments: tuple[str, ...] = ()         # parsed Arguments (V2) or Args (V1)
    environment: tuple[tuple[str, str], ...] = ()  # parsed Environment (V2) or Env (V1)
    stdin: Optional[str] = None             # In (None or /dev/null: no stdin)
    stdout: Optional[str] = None            # Out (relative to iwd unless absolute)
    stderr: Optional[str] = None            # Err
    transfer_input: tuple[str, ...] = ()    # TransferInput entries, as written
    transfer_output: Optional[tuple[str, ...]] = None  # TransferOutput (None: not given)
    output_remaps: tuple[tuple[str, str], ...] = ()    # TransferOutputRemaps name -> dest
    x509userproxy: Optional[str] = None     # absolute path of the proxy file
    image: Optional[str] = None             # KubernetesImage / K8sImage / k8s_image
    namespace: Optional[str] = None         # KubernetesNamespace / K8sNamespace / k8s_namespace
    cpus: float = 1                         # RequestCpus / SMPGranularity / NodeNumber
    cpus_explicit: bool = False             # True when the job named a CPU count at all
    memory_mib: Optional[int] = None        # RequestMemory (MiB)
    disk_kib: Optional[int] = None          # RequestDisk (KiB)
    gpus: int = 0                           # GPUNumber
    gpu_model: Optional[str] = None         # GPUModel
    gpu_mode: Optional[str] = None          # GPUMode, a short token (used only with gpus > 0)
    mics: int = 0                           # MICNumber (Xeon Phi cards)
    runtime_seconds: Optional[int] = None   # BatchRuntime
    queue: Optional[str] = None             # Queue
    project: Optional[str] = None           # BatchProject
    whole_node: bool = False                # WholeNodes
    extra_submit_args: Optional[str] = None  # BatchExtraSubmitArgs (raw)
    # CERequirements unwound as blahpd does, e.g.
    # {"KubernetesImage": "python:3.12", "Walltime_Max": 3600}
    ce_attributes: dict[str, Scalar] = field(default_factory=dict)
    # Every scalar attribute of the ad (after remote_ promotion), keyed by lower-cased name.
    attributes: dict[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class JobState:
    """What kgahp reports for one job: the 4th token and the status ad of a status result."""

    job_status: int                          # IDLE, RUNNING, REMOVED, COMPLETED, HELD
    exit_code: Optional[int] = None
    exit_by_signal: Optional[bool] = None
    exit_signal: Optional[int] = None
    hold_reason: Optional[str] = None
    hold_code: Optional[int] = None
    hold_subcode: Optional[int] = None
    worker_node: Optional[str] = None
    num_restarts: int = 0
    cpus_provisioned: Optional[float] = None
    memory_provisioned: Optional[int] = None   # MiB
    disk_provisioned: Optional[int] = None     # KiB
    remote_user_cpu: Optional[float] = None
    remote_sys_cpu: Optional[float] = None
    exit_reason: Optional[str] = None
    remove_reason: Optional[str] = None       # why a job is reported REMOVED (3)
