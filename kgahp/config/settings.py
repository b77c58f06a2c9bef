"""The settings: one frozen dataclass per section, one field per knob (each declared here once,
with `knob(...)`), and `Settings`, which holds the sections and what kgahp derives from them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Optional

from kgahp.config.knob import knob
from kgahp.config.parsers import (
    GpuMode,
    _bool,
    _byte_count,
    _cpu_quantity,
    _csv,
    _env_pairs,
    _extended_resource,
    _gpu_modes,
    _group_id,
    _log_level,
    _lower,
    _memory_quantity,
    _reconcile_workers,
    _user_id,
)
from kgahp.config.provision import ProvisionSettings
from kgahp.k8snames import LABEL_VALUE_MAX, label_fragment


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: str = knob(
        "KUBECONFIG", "",
        "Kubeconfig file; empty = $KUBECONFIG or ~/.kube/config; 'in-cluster' = the pod's "
        "service account")
    context: str = knob(
        "CONTEXT", "",
        "Kubeconfig context; empty = the current context")
    namespace: str = knob(
        "NAMESPACE", "default",
        "Namespace for jobs that name none")
    allowed_namespaces: tuple[str, ...] = knob(
        "ALLOWED_NAMESPACES", "",
        "Comma list of namespaces a job may choose; empty = only NAMESPACE",
        parse=_csv)
    qps: float = knob(
        "QPS", "20",
        "Client-side API rate limit, requests per second",
        parse=float)
    burst: int = knob(
        "BURST", "40",
        "Client-side API burst allowance",
        parse=int)
    api_timeout: float = knob(
        "API_TIMEOUT", "30",
        "Seconds before one API request is abandoned",
        parse=float)
    instance: str = knob(
        "INSTANCE", "",
        "Name that tells this GAHP's pods from others' (label value); empty = <user>-<hash of "
        "the schedd served (SCHEDD_NAME, else FULL_HOSTNAME)>")

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace this instance may place pods in (and so must watch)."""
        out = [self.namespace]
        out += [n for n in self.allowed_namespaces if n not in out]
        return tuple(out)


@dataclass(frozen=True)
class ServerSettings:
    workers: int = knob(
        "WORKERS", "50",
        "Threads doing API work for submit/cancel/refresh; 50 gives one to every request the "
        "gridmanager may have outstanding (GRIDMANAGER_MAX_PENDING_REQUESTS)",
        parse=int)
    max_queued: int = knob(
        "MAX_QUEUED", "1000",
        "Requests waiting for a worker before the GAHP answers 'F Threads limit reached'",
        parse=int)
    reconcile_workers: int = knob(
        "RECONCILE_WORKERS", "4",
        "Threads that reconcile jobs with their pods (collect outputs, recreate, delete); one "
        "job is never reconciled by two at once",
        parse=_reconcile_workers)
    log: str = knob(
        "LOG", "",
        "Log file; empty = $(LOG)/KGahpLog.<user>, or stderr when $(LOG) is unset")
    debug: str = knob(
        "DEBUG", "INFO",
        "Log level: ERROR, WARNING, INFO or DEBUG",
        parse=_log_level)
    max_log: int = knob(
        "MAX_LOG", "104857600",
        "Bytes the log file may reach before it is renamed to <log>.old (replacing the one "
        "before) and a new one begun, as HTCondor's MAX_<SUBSYS>_LOG; 0 = never",
        parse=_byte_count)
    state_dir: str = knob(
        "STATE_DIR", "",
        "Directory of the durable job store; empty = ~/.kgahp (never GAHP_TEMP, which the "
        "gridmanager deletes)")


@dataclass(frozen=True)
class PodSettings:
    pod_template: str = knob(
        "POD_TEMPLATE", "",
        "YAML pod template every job pod starts from")
    queue_config: str = knob(
        "QUEUE_CONFIG", "",
        "YAML file: per-queue template overlay, namespace, priorityClassName, Kueue queue, "
        "workload")
    workload: str = knob(
        "WORKLOAD", "pod",
        "What one job attempt is: 'pod' (a bare pod) or 'job' (a batch/v1 Job making that "
        "pod, for Kueue's Job integration and MultiKueue); a queue's `workload` overrides it",
        parse=_lower, choices=("pod", "job"))
    default_image: str = knob(
        "DEFAULT_IMAGE", "",
        "Image for jobs that name none; empty = such jobs fail to submit")
    allowed_images: tuple[str, ...] = knob(
        "ALLOWED_IMAGES", "*",
        "Comma list of shell-style patterns a job's image must match",
        parse=_csv)
    pod_name_prefix: str = knob(
        "POD_NAME_PREFIX", "kg",
        "Prefix of pod names")
    default_cpus: float = knob(
        "DEFAULT_CPUS", "1",
        "CPUs for jobs that ask for none",
        parse=float)
    default_memory: int = knob(
        "DEFAULT_MEMORY", "2048",
        "Memory (MiB) for jobs that ask for none",
        parse=int)
    default_runtime: int = knob(
        "DEFAULT_RUNTIME", "0",
        "Wall time (s) for jobs that ask for none; 0 = unlimited",
        parse=int)
    max_cpus: float = knob(
        "MAX_CPUS", "64",
        "Largest CPU request a job may make",
        parse=float)
    max_memory: int = knob(
        "MAX_MEMORY", "262144",
        "Largest memory request (MiB) a job may make",
        parse=int)
    max_gpus: int = knob(
        "MAX_GPUS", "8",
        "Largest GPU request a job may make",
        parse=int)
    max_disk: int = knob(
        "MAX_DISK", "0",
        "Largest disk request (KiB); 0 = no limit",
        parse=int)
    max_runtime: int = knob(
        "MAX_RUNTIME", "0",
        "Longest wall time (s) a job may ask for; 0 = no limit",
        parse=int)
    limit_policy: str = knob(
        "LIMIT_POLICY", "equal",
        "Resource limits: 'equal' (limit = request), 'factor' (limit = request x LIMIT_FACTOR) "
        "or 'no-cpu-limit' (memory limit = request, no CPU limit)",
        parse=_lower, choices=("equal", "factor", "no-cpu-limit"))
    limit_factor: float = knob(
        "LIMIT_FACTOR", "1.0",
        "Multiplier for LIMIT_POLICY = factor",
        parse=float)
    gpu_resource: str = knob(
        "GPU_RESOURCE", "nvidia.com/gpu",
        "Extended resource name for GPUNumber")
    gpu_model_label: str = knob(
        "GPU_MODEL_LABEL", "nvidia.com/gpu.product",
        "Node label that GPUModel selects on")
    gpu_modes: tuple[GpuMode, ...] = knob(
        "GPU_MODES", "",
        "GPU modes a job may name in GPUMode: space- or comma-separated "
        "MODE:RESOURCE[:LABEL=VALUE...] entries, e.g. 'shared:nvidia.com/gpu.shared "
        "exclusive_process:nvidia.com/gpu'. RESOURCE (domain/name) is requested instead of "
        "GPU_RESOURCE (empty = GPU_RESOURCE); each LABEL=VALUE is a node selector. Modes match "
        "case-insensitively and apply only with GPUNumber > 0; empty = every GPUMode is refused",
        parse=_gpu_modes)
    mic_resource: str = knob(
        "MIC_RESOURCE", "",
        "Extended resource name (domain/name) for MICNumber, the Xeon Phi cards a job asks for "
        "(request = limit); empty = MICNumber > 0 is refused",
        parse=_extended_resource)
    max_mics: int = knob(
        "MAX_MICS", "8",
        "Largest MICNumber a job may ask for",
        parse=int)
    whole_node_cpus: float = knob(
        "WHOLE_NODE_CPUS", "0",
        "CPUs a WholeNodes job gets; 0 = WholeNodes jobs are refused",
        parse=float)
    whole_node_memory: int = knob(
        "WHOLE_NODE_MEMORY", "0",
        "Memory (MiB) a WholeNodes job gets",
        parse=int)
    extra_args_fields: tuple[str, ...] = knob(
        "EXTRA_ARGS_FIELDS", "",
        "Comma list of pod spec fields BatchExtraSubmitArgs (a JSON/YAML patch) may set, e.g. "
        "nodeSelector,tolerations; empty = BatchExtraSubmitArgs is ignored",
        parse=_csv)
    run_as_user: Optional[int] = knob(
        "RUN_AS_USER", "65532",
        "Numeric user every container kgahp writes runs as (pod securityContext runAsUser, with "
        "runAsNonRoot: true), so pods pass Pod Security 'restricted' and start even when the "
        "image's own user is root. 65532 is no login or system account on a usual host (those "
        "are below 60000; 65534 'nobody' is shared by host daemons) and is the 'nonroot' user of "
        "distroless images. 'owner' = the job owner's own uid (the GAHP runs as the owner), the "
        "default with TRANSFER_MODE = shared so the job can write its Iwd on the shared volume; "
        "'image' = kgahp sets no user and the image (or the pod template) decides; 0 is refused. "
        "The template's own choice wins",
        parse=_user_id)
    run_as_group: Optional[int] = knob(
        "RUN_AS_GROUP", "65532",
        "Numeric group of that user (runAsGroup), also the fsGroup that makes the sandbox and "
        "mounted Secrets readable and writable by it; 'owner' = the job owner's gid; 'image' = "
        "none set",
        parse=_group_id)
    environment: tuple[tuple[str, str], ...] = knob(
        "ENVIRONMENT", "",
        "Extra NAME=VALUE;NAME2=VALUE2 set in every job container (e.g. a pilot's collector "
        "address)",
        parse=_env_pairs)


@dataclass(frozen=True)
class LifecycleSettings:
    image_pull_grace: float = knob(
        "IMAGE_PULL_GRACE", "120",
        "Seconds an image pull may fail before the job is held",
        parse=float)
    config_error_grace: float = knob(
        "CONFIG_ERROR_GRACE", "120",
        "Seconds a container config or mount error may last before the job is held",
        parse=float)
    pending_limit: float = knob(
        "PENDING_LIMIT", "0",
        "Seconds a pod may stay unschedulable before the job is held; 0 = wait forever",
        parse=float)
    max_disruptions: int = knob(
        "MAX_DISRUPTIONS", "3",
        "Evictions/preemptions/node losses before the job is held",
        parse=int)
    unknown_grace: float = knob(
        "UNKNOWN_GRACE", "300",
        "Seconds a pod may be in phase Unknown or stuck terminating before it counts as lost",
        parse=float)
    oom_policy: str = knob(
        "OOM_POLICY", "hold",
        "'hold' (HoldReasonCode 34) or 'signal' (completed by signal 9)",
        parse=_lower, choices=("hold", "signal"))
    pod_retention: float = knob(
        "POD_RETENTION", "300",
        "Seconds a finished pod is kept for debugging after its result is collected",
        parse=float)
    result_retention: float = knob(
        "RESULT_RETENTION", "604800",
        "Seconds a finished job's result stays answerable",
        parse=float)
    resync_interval: float = knob(
        "RESYNC_INTERVAL", "300",
        "Seconds between full relists of the watched pods",
        parse=float)
    disruption_policy: str = knob(
        "DISRUPTION_POLICY", "recreate",
        "What a disruption (eviction, preemption incl. Kueue's, node loss) does to the job: "
        "'recreate' = a new pod, NumRestarts + 1 (an access point, or a CE with "
        "ENABLE_JOB_RETRIES = True); 'hold' = no new pod, the job is held (HoldReasonCode 26 "
        "naming the disruption) so a user or periodic_release decides; 'remove' = no new pod "
        "for a job that had started, reported Idle with the disruption in ExitReason, which a "
        "default HTCondor-CE (ENABLE_JOB_RETRIES = False) removes ('disabled job retries'); a "
        "job that never started is created again. A queue's disruptionPolicy overrides it",
        parse=_lower, choices=("recreate", "hold", "remove"))
    tracking_finalizer: bool = knob(
        "TRACKING_FINALIZER", "true",
        "Put the finalizer kgahp.htcondor.org/collect on every job pod, so a pod deleted, "
        "evicted or garbage-collected (even while kgahp is down) stays until kgahp has read its "
        "exit code and outputs; kgahp removes it once the result is recorded, on cancel, and "
        "from pods of jobs it no longer tracks. Needs 'patch' on pods",
        parse=_bool)


@dataclass(frozen=True)
class TransferSettings:
    mode: str = knob(
        "TRANSFER_MODE", "api",
        "'api' (files through the Kubernetes API), 'shared' (SHARED_VOLUME mounted at Iwd) or "
        "'none'",
        parse=_lower, choices=("api", "shared", "none"))
    shared_volume: str = knob(
        "SHARED_VOLUME", "",
        "For TRANSFER_MODE = shared: 'pvc:<claim>' or 'hostPath:<dir>'")
    helper_image: str = knob(
        "HELPER_IMAGE", "busybox:1.36",
        "Image of the init container that stages inputs")
    helper_cpu_request: str = knob(
        "HELPER_CPU_REQUEST", "10m",
        "CPU request of each kgahp helper container (the stage-in init container); budgeted "
        "apart from the job's RequestCpus",
        parse=_cpu_quantity)
    helper_cpu_limit: str = knob(
        "HELPER_CPU_LIMIT", "100m",
        "CPU limit of each kgahp helper container",
        parse=_cpu_quantity)
    helper_memory_request: str = knob(
        "HELPER_MEMORY_REQUEST", "16Mi",
        "Memory request of each kgahp helper container; budgeted apart from the job's "
        "RequestMemory",
        parse=_memory_quantity)
    helper_memory_limit: str = knob(
        "HELPER_MEMORY_LIMIT", "64Mi",
        "Memory limit of each kgahp helper container",
        parse=_memory_quantity)
    sandbox_path: str = knob(
        "SANDBOX_PATH", "/kgahp/sandbox",
        "Job working directory inside the pod")
    max_input_bytes: int = knob(
        "MAX_INPUT_BYTES", "716800",
        "Largest input sandbox (bytes) shipped through the API",
        parse=int)
    max_output_bytes: int = knob(
        "MAX_OUTPUT_BYTES", "8388608",
        "Largest output sandbox (bytes) fetched through the API",
        parse=int)
    credential_files: tuple[str, ...] = knob(
        "CREDENTIAL_FILES", "",
        "Comma list of input file names (e.g. token,idtoken) that travel in the job's credential "
        "Secret (0600, mounted at /kgahp/creds, $KGAHP_CREDENTIALS) instead of the input sandbox",
        parse=_csv)

    @property
    def helper_resources(self) -> dict[str, dict[str, str]]:
        """requests/limits of each kgahp helper container, apart from the job's own."""
        return {"requests": {"cpu": self.helper_cpu_request,
                             "memory": self.helper_memory_request},
                "limits": {"cpu": self.helper_cpu_limit, "memory": self.helper_memory_limit}}


@dataclass(frozen=True)
class Settings:
    kube: KubeSettings = field(default_factory=KubeSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    pod: PodSettings = field(default_factory=PodSettings)
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    provision: ProvisionSettings = field(default_factory=ProvisionSettings)
    condor_log_dir: str = ""     # HTCondor's $(LOG), for the default log file
    user: str = ""               # the account kgahp runs as (the job owner)
    schedd: str = ""             # the schedd this GAHP serves (SCHEDD_NAME, else FULL_HOSTNAME)

    @property
    def instance(self) -> str:
        return self.kube.instance or default_instance(self.user, self.schedd)

    @property
    def legacy_instance(self) -> Optional[str]:
        """The instance name kgahp used by default before it told schedds apart (the user
        name), when that differs from today's default; None when KGAHP_INSTANCE is set."""
        if self.kube.instance:
            return None
        old = self.user or "kgahp"
        return old if old != self.instance else None

    @property
    def state_dir(self) -> str:
        if self.server.state_dir:
            return self.server.state_dir
        return os.path.join(os.path.expanduser("~"), ".kgahp")

    @property
    def log_file(self) -> str:
        """Empty string means stderr."""
        if self.server.log:
            return self.server.log
        if self.condor_log_dir:
            return os.path.join(self.condor_log_dir, f"KGahpLog.{self.user or 'kgahp'}")
        return ""


def default_instance(user: str, schedd: str) -> str:
    """The default instance label: the owner plus a short hash of the schedd the GAHP serves.

    Two GAHPs of one owner (two schedds, or two CEs mapping users to one account) then never
    share it, and it is the same at every restart. A valid label value (at most 63 characters):
    the readable user part is cut, never the hash. Without a schedd name: the user name alone.
    """
    owner = user or "kgahp"
    if not schedd:
        return owner
    digest = hashlib.sha256(schedd.encode("utf-8", "replace")).hexdigest()[:8]
    head = label_fragment(owner, LABEL_VALUE_MAX - len(digest) - 1)
    return f"{head}-{digest}" if head else digest
