"""kgahp's knobs, read once from HTCondor's configuration and passed down as frozen dataclasses.

Every knob is `KGAHP_<NAME>` in HTCondor's configuration, so `condor_config_val KGAHP_NAMESPACE`
shows it and `_CONDOR_KGAHP_NAMESPACE=...` in the environment overrides it. Each knob is declared
once, as a field of one of the section dataclasses below (`knob(...)`: its name, its default as
written in a config file, its meaning and the parser that turns the text into the field's value).
`KNOBS` and `show-config` are derived from those fields, and so are
`condor_config.d/50-kgahp.conf` and `docs/configuration.md` (kgahp.knob_reference; `kgahp
show-config --write-docs .` in a checkout rewrites both files; tests/docs checks they agree).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Optional

from kgahp.errors import ConfigError
from kgahp.k8snames import LABEL_VALUE_MAX, is_label_value, is_qualified_name, label_fragment

PREFIX = "KGAHP_"


@dataclass(frozen=True)
class Knob:
    """One knob: `name` without the prefix, `default` as written in a config file, `help` its
    meaning; `parse` turns the text into the settings field's value, `choices` limit it.
    `section` and `attr` say which settings field it fills (set when KNOBS is derived)."""

    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    choices: tuple[str, ...] = ()
    section: str = ""
    attr: str = ""


_KNOB = "kgahp.knob"    # the dataclass field metadata key that holds a field's Knob


def knob(name: str, default: str, help: str, *, parse: Callable[[str], Any] = str,
         choices: tuple[str, ...] = ()) -> Any:
    """A settings field that is the knob KGAHP_<name>; its value when the knob is unset is
    `parse(default)`, so the default is written once, as an admin would write it."""
    return field(default=parse(default),
                 metadata={_KNOB: Knob(name, default, help, parse, choices)})


# --- parsers: the text of a knob -> the value of its field (ValueError names the problem)

def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def _lower(value: str) -> str:
    return value.strip().lower()


def _reconcile_workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 256:
        raise ValueError("must be between 1 and 256")
    return number


def _log_level(value: str) -> str:
    return value.strip().upper() or "INFO"


def _extended_resource(value: str) -> str:
    """An extended resource name: domain/name outside kubernetes.io, so never cpu or memory."""
    value = value.strip()
    if not value:
        return ""
    domain = value.rpartition("/")[0]
    if not domain or not is_qualified_name(value):
        raise ValueError(f"{value!r} is not an extended resource name such as vendor.com/device")
    if domain == "kubernetes.io" or domain.endswith(".kubernetes.io"):
        raise ValueError(f"{value!r} is in the kubernetes.io domain, not an extended resource")
    return value


# A Kubernetes quantity as an admin writes one for cpu or memory: 100m, 0.5, 64Mi, 1G
_QUANTITY = re.compile(r"([0-9]+(\.[0-9]*)?|\.[0-9]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?")


_SCALE = {None: 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10,
          "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity_value(value: str) -> float:
    """A quantity accepted by `_quantity` as a number (cores or bytes)."""
    match = _QUANTITY.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not a quantity")
    return float(match.group(1)) * _SCALE[match.group(3)]


def _quantity(value: str, what: str) -> str:
    value = value.strip()
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"not a Kubernetes {what} quantity such as "
                         f"{'100m' if what == 'cpu' else '64Mi'}")
    return value


def _cpu_quantity(value: str) -> str:
    return _quantity(value, "cpu")


def _memory_quantity(value: str) -> str:
    return _quantity(value, "memory")


GPU_MODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")   # also what GPUMode may hold


@dataclass(frozen=True)
class GpuMode:
    """One KGAHP_GPU_MODES entry: what a job's GPUMode turns into."""

    name: str                                         # lower-case mode name
    resource: str = ""                                # "" = KGAHP_GPU_RESOURCE
    node_selector: tuple[tuple[str, str], ...] = ()   # admin's label=value pairs


def _gpu_modes(value: str) -> tuple[GpuMode, ...]:
    """`MODE:RESOURCE[:LABEL=VALUE...]` entries separated by spaces or commas."""
    modes: list[GpuMode] = []
    for entry in value.replace(",", " ").split():
        name, _, rest = entry.partition(":")
        if not GPU_MODE_NAME.fullmatch(name):
            raise ValueError(f"entry {entry!r}: the mode must be a short name "
                             "(letters, digits, '_', '-', '.')")
        if any(m.name == name.lower() for m in modes):
            raise ValueError(f"mode {name!r} is listed twice")
        resource, *selectors = rest.split(":") if rest else [""]
        pairs: list[tuple[str, str]] = []
        for selector in selectors:
            key, equals, label = selector.partition("=")
            if not (equals and is_qualified_name(key) and is_label_value(label)):
                raise ValueError(f"entry {entry!r}: {selector!r} is not a node selector "
                                 "LABEL=VALUE")
            pairs.append((key, label))
        modes.append(GpuMode(name.lower(), _extended_resource(resource) if resource else "",
                             tuple(pairs)))
    return tuple(modes)


def _env_pairs(value: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in value.split(";"):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"{PREFIX}ENVIRONMENT entry {item!r} is not NAME=VALUE")
        name, _, val = item.partition("=")
        pairs.append((name.strip(), val))
    return tuple(pairs)


def _numeric_id(value: str, knob: str) -> Optional[int]:
    """A non-root numeric user or group id; 'image' (HTCondor cannot say empty when the
    default is not) = None: kgahp sets none."""
    if value.strip().lower() in ("", "image"):
        return None
    if value.strip().lower() == "owner":
        number = os.getuid() if knob == "RUN_AS_USER" else os.getgid()
        if number == 0:
            raise ValueError("the GAHP runs as root, so 'owner' would be root; set a number")
        return number
    number = int(value)
    if number == 0:
        raise ValueError(f"0 is root; set {PREFIX}{knob} = image to let the image decide")
    if not 0 < number <= 2**31 - 1:
        raise ValueError("must be between 1 and 2147483647")
    return number


def _user_id(value: str) -> Optional[int]:
    return _numeric_id(value, "RUN_AS_USER")


def _group_id(value: str) -> Optional[int]:
    return _numeric_id(value, "RUN_AS_GROUP")


# --- the settings: one frozen dataclass per section, one field per knob

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
        "WORKERS", "16",
        "Threads doing API work for submit/cancel/refresh",
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
        "YAML file: per-queue template overlay, namespace, priorityClassName, Kueue queue")
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
class ProvisionSettings:
    """`kgahp provision`: pilots started as pods when idle jobs could run on them."""

    shapes: str = knob(
        "PROVISION_SHAPES", "",
        "YAML file listing the pilot shapes (cpus, memory, disk, GPUs, queue, START, caps); "
        "see Pilots on demand. Empty = kgahp provision refuses to run")
    interval: float = knob(
        "PROVISION_INTERVAL", "60",
        "Seconds between two provisioning cycles",
        parse=float)
    schedds: tuple[str, ...] = knob(
        "PROVISION_SCHEDDS", "",
        "Comma list of schedd names whose idle jobs are the demand; empty = the local schedd",
        parse=_csv)
    collector: str = knob(
        "PROVISION_COLLECTOR", "",
        "Collector (host[:port]) to locate those schedds and read the pilots' startd ads from; "
        "empty = COLLECTOR_HOST")
    job_constraint: str = knob(
        "PROVISION_JOB_CONSTRAINT", "true",
        "ClassAd constraint an idle job (JobStatus == 1) must also meet to count as demand, "
        "e.g. 'WantPilots =!= false'")
    instance: str = knob(
        "PROVISION_INSTANCE", "pilots",
        "Label value (kgahp.htcondor.org/instance) of this provisioner's pilot pods; two "
        "provisioners on one cluster need different values, and a GAHP never uses this one")
    attenuation: float = knob(
        "PROVISION_ATTENUATION", "3",
        "Idle matching jobs per pilot asked for in one cycle: a shape asks for "
        "ceil(idle / ATTENUATION) + RESERVE pilots waiting for work (at least 1)",
        parse=float)
    reserve: int = knob(
        "PROVISION_RESERVE", "1",
        "Extra pilots a shape keeps waiting for work while it has demand (never more than its "
        "idle matching jobs)",
        parse=int)
    max_pilots: int = knob(
        "PROVISION_MAX_PILOTS", "100",
        "Global cap: pilot pods of all shapes together (pending, idle and busy)",
        parse=int)
    max_pilots_per_shape: int = knob(
        "PROVISION_MAX_PILOTS_PER_SHAPE", "50",
        "Cap per shape, for shapes whose YAML entry sets no maxPilots",
        parse=int)
    curb: float = knob(
        "PROVISION_CURB", "0.8",
        "Fraction of a cap (per shape or global) past which each cycle creates half of what it "
        "otherwise would",
        parse=float)
    create_rate: float = knob(
        "PROVISION_CREATE_RATE", "1",
        "Pilot pods created per second at most, on average (bursts up to one interval's worth); "
        "every request also waits for the QPS/BURST limiter",
        parse=float)
    idle_grace: float = knob(
        "PROVISION_IDLE_GRACE", "300",
        "Seconds a pilot must be unclaimed (or a pod pending) before it may be deleted once its "
        "shape has less demand than pilots; busy pilots are never deleted",
        parse=float)
    noclaim_shutdown: int = knob(
        "PROVISION_NOCLAIM_SHUTDOWN", "1200",
        "The STARTD_NOCLAIM_SHUTDOWN given to each pilot: seconds it waits for a first claim "
        "before it shuts itself down",
        parse=int)
    unschedulable_limit: float = knob(
        "PROVISION_UNSCHEDULABLE_LIMIT", "600",
        "Seconds a pilot pod may stay unschedulable before it counts as a failure of its shape",
        parse=float)
    backoff: float = knob(
        "PROVISION_BACKOFF", "60",
        "Seconds a shape waits after a pilot failed (image pull, config error, crash, "
        "unschedulable) before it tries one pilot again; doubled per further failure",
        parse=float)
    backoff_max: float = knob(
        "PROVISION_BACKOFF_MAX", "3600",
        "Longest backoff; failed pilot pods are kept this long as the record of the failure, "
        "then deleted",
        parse=float)


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


# --- the knob list, derived from the fields above

SECTIONS: dict[str, type] = {
    "kube": KubeSettings,
    "server": ServerSettings,
    "pod": PodSettings,
    "lifecycle": LifecycleSettings,
    "transfer": TransferSettings,
    "provision": ProvisionSettings,
}

KNOBS: tuple[Knob, ...] = tuple(
    replace(f.metadata[_KNOB], section=section, attr=f.name)
    for section, cls in SECTIONS.items() for f in fields(cls) if _KNOB in f.metadata)


def settings_from_mapping(values: Mapping[str, str], *, condor_log_dir: str = "",
                          user: str = "", schedd: str = "") -> Settings:
    """Build Settings from `{knob name without prefix: text}`; missing knobs take defaults.

    Raises ConfigError naming the knob when a value cannot be used.
    """
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for spec in KNOBS:
        name = spec.name
        raw = values.get(name)
        if raw is None:
            raw = spec.default
        raw = str(raw).strip()
        try:
            value = spec.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} is not valid: {exc}") from None
        if spec.choices and value not in spec.choices:
            raise ConfigError(
                f"{PREFIX}{name} = {raw!r} is not one of {', '.join(spec.choices)}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} must not be negative")
        sections[spec.section][spec.attr] = value
    if (sections["transfer"]["mode"] == "shared" and values.get("RUN_AS_USER") is None
            and os.getuid() != 0):
        # files on the shared volume belong to the job owner: the job runs as the owner
        sections["pod"]["run_as_user"] = os.getuid()
        if values.get("RUN_AS_GROUP") is None:
            sections["pod"]["run_as_group"] = os.getgid()
    pod = PodSettings(**sections["pod"])
    gpu_resources = {pod.gpu_resource} | {m.resource for m in pod.gpu_modes}
    if pod.mic_resource and pod.mic_resource in gpu_resources:
        raise ConfigError(f"{PREFIX}MIC_RESOURCE = {pod.mic_resource!r} is also a GPU resource "
                          f"({PREFIX}GPU_RESOURCE or {PREFIX}GPU_MODES): MIC cards need their own")
    transfer = TransferSettings(**sections["transfer"])
    for resource in ("cpu", "memory"):
        request = getattr(transfer, f"helper_{resource}_request")
        limit = getattr(transfer, f"helper_{resource}_limit")
        if quantity_value(request) > quantity_value(limit):
            raise ConfigError(f"{PREFIX}HELPER_{resource.upper()}_REQUEST = {request} is more "
                              f"than {PREFIX}HELPER_{resource.upper()}_LIMIT = {limit}")
    if transfer.mode == "shared" and not transfer.shared_volume:
        raise ConfigError(f"{PREFIX}TRANSFER_MODE = shared needs {PREFIX}SHARED_VOLUME")
    return Settings(
        kube=KubeSettings(**sections["kube"]),
        server=ServerSettings(**sections["server"]),
        pod=pod,
        lifecycle=LifecycleSettings(**sections["lifecycle"]),
        transfer=transfer,
        provision=ProvisionSettings(**sections["provision"]),
        condor_log_dir=condor_log_dir,
        user=user,
        schedd=schedd,
    )


def _current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers): fall back to the uid
        return str(os.getuid())


def load_settings(overrides: Optional[Mapping[str, str]] = None) -> Settings:
    """Read every KGAHP_ knob through HTCondor's configuration (htcondor2.param).

    `overrides` (knob name without prefix -> text) win over the configuration; the CLI uses them.
    Without a readable HTCondor configuration the defaults apply, as do `_CONDOR_KGAHP_*`
    environment variables (HTCondor's own override rule).
    """
    values: dict[str, str] = {}
    log_dir = ""
    schedd = ""
    try:
        import htcondor2

        param = htcondor2.param
        for knob in KNOBS:
            v = param.get(PREFIX + knob.name)
            if v is not None:
                values[knob.name] = str(v)
        log_dir = str(param.get("LOG") or "")
        # the schedd whose gridmanager runs this GAHP: its configured name, else the host's
        schedd = str(param.get("SCHEDD_NAME") or param.get("FULL_HOSTNAME") or "")
    except Exception:  # htcondor2 without any config file: env overrides still count
        for knob in KNOBS:
            v = os.environ.get(f"_CONDOR_{PREFIX}{knob.name}")
            if v is not None:
                values[knob.name] = v
        schedd = os.environ.get("_CONDOR_SCHEDD_NAME", "")
    if not schedd:
        schedd = socket.getfqdn()
    if log_dir and not os.path.isdir(log_dir):
        log_dir = ""
    values.update(overrides or {})
    return settings_from_mapping(values, condor_log_dir=log_dir, user=_current_user(),
                                 schedd=schedd)


def describe(settings: Settings) -> dict[str, Any]:
    """Flat view for `kgahp --show-config` and the log's first lines (nothing secret lives here)."""
    out: dict[str, Any] = {}
    for section in SECTIONS:
        obj = getattr(settings, section)
        for f in fields(obj):
            out[f"{section}.{f.name}"] = getattr(obj, f.name)
    return out
