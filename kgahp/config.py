"""kgahp's knobs, read once from HTCondor's configuration and passed down as frozen dataclasses.

Every knob is `KGAHP_<NAME>` in HTCondor's configuration, so `condor_config_val KGAHP_NAMESPACE`
shows it and `_CONDOR_KGAHP_NAMESPACE=...` in the environment overrides it. `KNOBS` below is the
single list of knobs with their defaults and meaning; `condor_config.d/50-kgahp.conf` and
`docs/configuration.md` are generated from it (`kgahp show-config --write-docs .` in a checkout
rewrites both; tests/docs checks they agree).
"""

from __future__ import annotations

import getpass
import hashlib
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from kgahp.errors import ConfigError

PREFIX = "KGAHP_"


@dataclass(frozen=True)
class Knob:
    name: str            # without the prefix
    default: str         # as written in a config file
    help: str


KNOBS: tuple[Knob, ...] = (
    # --- cluster access
    Knob("KUBECONFIG", "", "Kubeconfig file; empty = $KUBECONFIG or ~/.kube/config; "
         "'in-cluster' = the pod's service account"),
    Knob("CONTEXT", "", "Kubeconfig context; empty = the current context"),
    Knob("NAMESPACE", "default", "Namespace for jobs that name none"),
    Knob("ALLOWED_NAMESPACES", "",
         "Comma list of namespaces a job may choose; empty = only NAMESPACE"),
    Knob("QPS", "20", "Client-side API rate limit, requests per second"),
    Knob("BURST", "40", "Client-side API burst allowance"),
    Knob("API_TIMEOUT", "30", "Seconds before one API request is abandoned"),
    Knob("INSTANCE", "", "Name that tells this GAHP's pods from others' (label value); "
         "empty = <user>-<hash of the schedd served (SCHEDD_NAME, else FULL_HOSTNAME)>"),
    # --- server
    Knob("WORKERS", "16", "Threads doing API work for submit/cancel/refresh"),
    Knob("MAX_QUEUED", "1000", "Requests waiting for a worker before the GAHP answers "
         "'F Threads limit reached'"),
    Knob("RECONCILE_WORKERS", "4", "Threads that reconcile jobs with their pods (collect "
         "outputs, recreate, delete); one job is never reconciled by two at once"),
    Knob("LOG", "", "Log file; empty = $(LOG)/KGahpLog.<user>, or stderr when $(LOG) is unset"),
    Knob("DEBUG", "INFO", "Log level: ERROR, WARNING, INFO or DEBUG"),
    Knob("STATE_DIR", "", "Directory of the durable job store; empty = ~/.kgahp "
         "(never GAHP_TEMP, which the gridmanager deletes)"),
    # --- pods
    Knob("POD_TEMPLATE", "", "YAML pod template every job pod starts from"),
    Knob("QUEUE_CONFIG", "", "YAML file: per-queue template overlay, namespace, "
         "priorityClassName, Kueue queue"),
    Knob("DEFAULT_IMAGE", "", "Image for jobs that name none; empty = such jobs fail to submit"),
    Knob("ALLOWED_IMAGES", "*",
         "Comma list of shell-style patterns a job's image must match"),
    Knob("POD_NAME_PREFIX", "kg", "Prefix of pod names"),
    Knob("DEFAULT_CPUS", "1", "CPUs for jobs that ask for none"),
    Knob("DEFAULT_MEMORY", "2048", "Memory (MiB) for jobs that ask for none"),
    Knob("DEFAULT_RUNTIME", "0", "Wall time (s) for jobs that ask for none; 0 = unlimited"),
    Knob("MAX_CPUS", "64", "Largest CPU request a job may make"),
    Knob("MAX_MEMORY", "262144", "Largest memory request (MiB) a job may make"),
    Knob("MAX_GPUS", "8", "Largest GPU request a job may make"),
    Knob("MAX_DISK", "0", "Largest disk request (KiB); 0 = no limit"),
    Knob("MAX_RUNTIME", "0", "Longest wall time (s) a job may ask for; 0 = no limit"),
    Knob("LIMIT_POLICY", "equal", "Resource limits: 'equal' (limit = request), 'factor' "
         "(limit = request x LIMIT_FACTOR) or 'no-cpu-limit' (memory limit = request, "
         "no CPU limit)"),
    Knob("LIMIT_FACTOR", "1.0", "Multiplier for LIMIT_POLICY = factor"),
    Knob("GPU_RESOURCE", "nvidia.com/gpu", "Extended resource name for GPUNumber"),
    Knob("GPU_MODEL_LABEL", "nvidia.com/gpu.product", "Node label that GPUModel selects on"),
    Knob("GPU_MODES", "", "GPU modes a job may name in GPUMode: space- or comma-separated "
         "MODE:RESOURCE[:LABEL=VALUE...] entries, e.g. 'shared:nvidia.com/gpu.shared "
         "exclusive_process:nvidia.com/gpu'. RESOURCE (domain/name) is requested instead of "
         "GPU_RESOURCE (empty = GPU_RESOURCE); each LABEL=VALUE is a node selector. Modes match "
         "case-insensitively and apply only with GPUNumber > 0; empty = every GPUMode is refused"),
    Knob("MIC_RESOURCE", "", "Extended resource name (domain/name) for MICNumber, the Xeon Phi "
         "cards a job asks for (request = limit); empty = MICNumber > 0 is refused"),
    Knob("MAX_MICS", "8", "Largest MICNumber a job may ask for"),
    Knob("WHOLE_NODE_CPUS", "0", "CPUs a WholeNodes job gets; 0 = WholeNodes jobs are refused"),
    Knob("WHOLE_NODE_MEMORY", "0", "Memory (MiB) a WholeNodes job gets"),
    Knob("EXTRA_ARGS_FIELDS", "", "Comma list of pod spec fields BatchExtraSubmitArgs (a JSON/YAML "
         "patch) may set, e.g. nodeSelector,tolerations; empty = BatchExtraSubmitArgs is ignored"),
    Knob("RUN_AS_USER", "65532", "Numeric user every container kgahp writes runs as (pod "
         "securityContext runAsUser, with runAsNonRoot: true), so pods pass Pod Security "
         "'restricted' and start even when the image's own user is root. 65532 is no login or "
         "system account on a usual host (those are below 60000; 65534 'nobody' is shared by "
         "host daemons) and is the 'nonroot' user of distroless images. 'owner' = the job "
         "owner's own uid (the GAHP runs as the owner), the default with TRANSFER_MODE = shared "
         "so the job can write its Iwd on the shared volume; 'image' = kgahp sets no user and "
         "the image (or the pod template) decides; 0 is refused. The template's own choice "
         "wins"),
    Knob("RUN_AS_GROUP", "65532", "Numeric group of that user (runAsGroup), also the fsGroup "
         "that makes the sandbox and mounted Secrets readable and writable by it; 'owner' = "
         "the job owner's gid; 'image' = none set"),
    Knob("ENVIRONMENT", "", "Extra NAME=VALUE;NAME2=VALUE2 set in every job container "
         "(e.g. a pilot's collector address)"),
    # --- lifecycle
    Knob("IMAGE_PULL_GRACE", "120", "Seconds an image pull may fail before the job is held"),
    Knob("CONFIG_ERROR_GRACE", "120", "Seconds a container config or mount error may last "
         "before the job is held"),
    Knob("PENDING_LIMIT", "0", "Seconds a pod may stay unschedulable before the job is held; "
         "0 = wait forever"),
    Knob("MAX_DISRUPTIONS", "3", "Evictions/preemptions/node losses before the job is held"),
    Knob("UNKNOWN_GRACE", "300", "Seconds a pod may be in phase Unknown or stuck terminating "
         "before it counts as lost"),
    Knob("OOM_POLICY", "hold", "'hold' (HoldReasonCode 34) or 'signal' (completed by signal 9)"),
    Knob("POD_RETENTION", "300", "Seconds a finished pod is kept for debugging after its result "
         "is collected"),
    Knob("RESULT_RETENTION", "604800", "Seconds a finished job's result stays answerable"),
    Knob("RESYNC_INTERVAL", "300", "Seconds between full relists of the watched pods"),
    # --- files and credentials
    Knob("TRANSFER_MODE", "api", "'api' (files through the Kubernetes API), 'shared' "
         "(SHARED_VOLUME mounted at Iwd) or 'none'"),
    Knob("SHARED_VOLUME", "", "For TRANSFER_MODE = shared: 'pvc:<claim>' or 'hostPath:<dir>'"),
    Knob("HELPER_IMAGE", "busybox:1.36", "Image of the init container that stages inputs"),
    Knob("HELPER_CPU_REQUEST", "10m", "CPU request of each kgahp helper container (the "
         "stage-in init container); budgeted apart from the job's RequestCpus"),
    Knob("HELPER_CPU_LIMIT", "100m", "CPU limit of each kgahp helper container"),
    Knob("HELPER_MEMORY_REQUEST", "16Mi", "Memory request of each kgahp helper container; "
         "budgeted apart from the job's RequestMemory"),
    Knob("HELPER_MEMORY_LIMIT", "64Mi", "Memory limit of each kgahp helper container"),
    Knob("SANDBOX_PATH", "/kgahp/sandbox", "Job working directory inside the pod"),
    Knob("MAX_INPUT_BYTES", "716800", "Largest input sandbox (bytes) shipped through the API"),
    Knob("MAX_OUTPUT_BYTES", "8388608", "Largest output sandbox (bytes) fetched through the API"),
    Knob("CREDENTIAL_FILES", "", "Comma list of input file names (e.g. token,idtoken) that travel "
         "in the job's credential Secret (0600, mounted at /kgahp/creds, $KGAHP_CREDENTIALS) "
         "instead of the input sandbox"),
)

_KNOB_NAMES = {k.name for k in KNOBS}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in value.replace(";", ",").split(",") if p.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


# Kubernetes' qualified name (label keys, resource names): [DNS subdomain/]name, name <= 63
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_NAME_PART = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
GPU_MODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")   # also what GPUMode may hold


def _is_qualified_name(text: str) -> bool:
    prefix, slash, name = text.rpartition("/")
    if slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_NAME_PART.fullmatch(name))


def _extended_resource(value: str) -> str:
    """An extended resource name: domain/name outside kubernetes.io, so never cpu or memory."""
    value = value.strip()
    if not value:
        return ""
    domain = value.rpartition("/")[0]
    if not domain or not _is_qualified_name(value):
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
            if not (equals and _is_qualified_name(key) and len(label) <= 63
                    and _LABEL_VALUE.fullmatch(label)):
                raise ValueError(f"entry {entry!r}: {selector!r} is not a node selector "
                                 "LABEL=VALUE")
            pairs.append((key, label))
        modes.append(GpuMode(name.lower(), _extended_resource(resource) if resource else "",
                             tuple(pairs)))
    return tuple(modes)


@dataclass(frozen=True)
class KubeSettings:
    kubeconfig: str = ""
    context: str = ""
    namespace: str = "default"
    allowed_namespaces: tuple[str, ...] = ()
    qps: float = 20.0
    burst: int = 40
    api_timeout: float = 30.0
    instance: str = ""

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace this instance may place pods in (and so must watch)."""
        out = [self.namespace]
        out += [n for n in self.allowed_namespaces if n not in out]
        return tuple(out)


@dataclass(frozen=True)
class ServerSettings:
    workers: int = 16
    max_queued: int = 1000
    reconcile_workers: int = 4
    log: str = ""
    debug: str = "INFO"
    state_dir: str = ""


@dataclass(frozen=True)
class PodSettings:
    pod_template: str = ""
    queue_config: str = ""
    default_image: str = ""
    allowed_images: tuple[str, ...] = ("*",)
    pod_name_prefix: str = "kg"
    default_cpus: float = 1.0
    default_memory: int = 2048
    default_runtime: int = 0
    max_cpus: float = 64.0
    max_memory: int = 262144
    max_gpus: int = 8
    max_disk: int = 0
    max_runtime: int = 0
    limit_policy: str = "equal"
    limit_factor: float = 1.0
    gpu_resource: str = "nvidia.com/gpu"
    gpu_model_label: str = "nvidia.com/gpu.product"
    gpu_modes: tuple[GpuMode, ...] = ()
    mic_resource: str = ""
    max_mics: int = 8
    whole_node_cpus: float = 0.0
    whole_node_memory: int = 0
    extra_args_fields: tuple[str, ...] = ()
    run_as_user: Optional[int] = 65532
    run_as_group: Optional[int] = 65532
    environment: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LifecycleSettings:
    image_pull_grace: float = 120.0
    config_error_grace: float = 120.0
    pending_limit: float = 0.0
    max_disruptions: int = 3
    unknown_grace: float = 300.0
    oom_policy: str = "hold"
    pod_retention: float = 300.0
    result_retention: float = 604800.0
    resync_interval: float = 300.0


@dataclass(frozen=True)
class TransferSettings:
    mode: str = "api"
    shared_volume: str = ""
    helper_image: str = "busybox:1.36"
    # requests/limits of kgahp's own helper containers: Kubernetes quantities
    helper_cpu_request: str = "10m"
    helper_cpu_limit: str = "100m"
    helper_memory_request: str = "16Mi"
    helper_memory_limit: str = "64Mi"
    sandbox_path: str = "/kgahp/sandbox"
    max_input_bytes: int = 716800
    max_output_bytes: int = 8388608
    credential_files: tuple[str, ...] = ()

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
    head = re.sub(r"[^A-Za-z0-9_.-]+", "-", owner)[:63 - len(digest) - 1]
    head = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", head)
    return f"{head}-{digest}" if head else digest


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


def _reconcile_workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 256:
        raise ValueError("must be between 1 and 256")
    return number


# knob name -> (section, field, converter)
_MAP: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "KUBECONFIG": ("kube", "kubeconfig", str),
    "CONTEXT": ("kube", "context", str),
    "NAMESPACE": ("kube", "namespace", str),
    "ALLOWED_NAMESPACES": ("kube", "allowed_namespaces", _csv),
    "QPS": ("kube", "qps", float),
    "BURST": ("kube", "burst", int),
    "API_TIMEOUT": ("kube", "api_timeout", float),
    "INSTANCE": ("kube", "instance", str),
    "WORKERS": ("server", "workers", int),
    "MAX_QUEUED": ("server", "max_queued", int),
    "RECONCILE_WORKERS": ("server", "reconcile_workers", _reconcile_workers),
    "LOG": ("server", "log", str),
    "DEBUG": ("server", "debug", lambda v: v.strip().upper() or "INFO"),
    "STATE_DIR": ("server", "state_dir", str),
    "POD_TEMPLATE": ("pod", "pod_template", str),
    "QUEUE_CONFIG": ("pod", "queue_config", str),
    "DEFAULT_IMAGE": ("pod", "default_image", str),
    "ALLOWED_IMAGES": ("pod", "allowed_images", _csv),
    "POD_NAME_PREFIX": ("pod", "pod_name_prefix", str),
    "DEFAULT_CPUS": ("pod", "default_cpus", float),
    "DEFAULT_MEMORY": ("pod", "default_memory", int),
    "DEFAULT_RUNTIME": ("pod", "default_runtime", int),
    "MAX_CPUS": ("pod", "max_cpus", float),
    "MAX_MEMORY": ("pod", "max_memory", int),
    "MAX_GPUS": ("pod", "max_gpus", int),
    "MAX_DISK": ("pod", "max_disk", int),
    "MAX_RUNTIME": ("pod", "max_runtime", int),
    "LIMIT_POLICY": ("pod", "limit_policy", lambda v: v.strip().lower()),
    "LIMIT_FACTOR": ("pod", "limit_factor", float),
    "GPU_RESOURCE": ("pod", "gpu_resource", str),
    "GPU_MODEL_LABEL": ("pod", "gpu_model_label", str),
    "GPU_MODES": ("pod", "gpu_modes", _gpu_modes),
    "MIC_RESOURCE": ("pod", "mic_resource", _extended_resource),
    "MAX_MICS": ("pod", "max_mics", int),
    "WHOLE_NODE_CPUS": ("pod", "whole_node_cpus", float),
    "WHOLE_NODE_MEMORY": ("pod", "whole_node_memory", int),
    "EXTRA_ARGS_FIELDS": ("pod", "extra_args_fields", _csv),
    "RUN_AS_USER": ("pod", "run_as_user", lambda v: _numeric_id(v, "RUN_AS_USER")),
    "RUN_AS_GROUP": ("pod", "run_as_group", lambda v: _numeric_id(v, "RUN_AS_GROUP")),
    "ENVIRONMENT": ("pod", "environment", _env_pairs),
    "IMAGE_PULL_GRACE": ("lifecycle", "image_pull_grace", float),
    "CONFIG_ERROR_GRACE": ("lifecycle", "config_error_grace", float),
    "PENDING_LIMIT": ("lifecycle", "pending_limit", float),
    "MAX_DISRUPTIONS": ("lifecycle", "max_disruptions", int),
    "UNKNOWN_GRACE": ("lifecycle", "unknown_grace", float),
    "OOM_POLICY": ("lifecycle", "oom_policy", lambda v: v.strip().lower()),
    "POD_RETENTION": ("lifecycle", "pod_retention", float),
    "RESULT_RETENTION": ("lifecycle", "result_retention", float),
    "RESYNC_INTERVAL": ("lifecycle", "resync_interval", float),
    "TRANSFER_MODE": ("transfer", "mode", lambda v: v.strip().lower()),
    "SHARED_VOLUME": ("transfer", "shared_volume", str),
    "HELPER_IMAGE": ("transfer", "helper_image", str),
    "HELPER_CPU_REQUEST": ("transfer", "helper_cpu_request", lambda v: _quantity(v, "cpu")),
    "HELPER_CPU_LIMIT": ("transfer", "helper_cpu_limit", lambda v: _quantity(v, "cpu")),
    "HELPER_MEMORY_REQUEST": ("transfer", "helper_memory_request",
                              lambda v: _quantity(v, "memory")),
    "HELPER_MEMORY_LIMIT": ("transfer", "helper_memory_limit",
                            lambda v: _quantity(v, "memory")),
    "SANDBOX_PATH": ("transfer", "sandbox_path", str),
    "MAX_INPUT_BYTES": ("transfer", "max_input_bytes", int),
    "MAX_OUTPUT_BYTES": ("transfer", "max_output_bytes", int),
    "CREDENTIAL_FILES": ("transfer", "credential_files", _csv),
}

_CHOICES = {
    "LIMIT_POLICY": ("equal", "factor", "no-cpu-limit"),
    "OOM_POLICY": ("hold", "signal"),
    "TRANSFER_MODE": ("api", "shared", "none"),
}

assert set(_MAP) == _KNOB_NAMES, "every knob needs a mapping"


def settings_from_mapping(values: Mapping[str, str], *, condor_log_dir: str = "",
                          user: str = "", schedd: str = "") -> Settings:
    """Build Settings from `{knob name without prefix: text}`; missing knobs take defaults.

    Raises ConfigError naming the knob when a value cannot be used.
    """
    sections: dict[str, dict[str, Any]] = {
        "kube": {}, "server": {}, "pod": {}, "lifecycle": {}, "transfer": {}}
    defaults = {k.name: k.default for k in KNOBS}
    for name, (section, attr, conv) in _MAP.items():
        raw = values.get(name)
        if raw is None:
            raw = defaults[name]
        raw = str(raw).strip()
        try:
            value = conv(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} is not valid: {exc}") from None
        if name in _CHOICES and value not in _CHOICES[name]:
            raise ConfigError(
                f"{PREFIX}{name} = {raw!r} is not one of {', '.join(_CHOICES[name])}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise ConfigError(f"{PREFIX}{name} = {raw!r} must not be negative")
        sections[section][attr] = value
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
    for section in ("kube", "server", "pod", "lifecycle", "transfer"):
        obj = getattr(settings, section)
        for f in fields(obj):
            out[f"{section}.{f.name}"] = getattr(obj, f.name)
    return out


def config_snippet() -> str:
    """The text of condor_config.d/50-kgahp.conf (a test keeps the shipped file in step)."""
    lines = [
        "# kgahp: the Kubernetes GAHP for HTCondor.",
        "# Drop this file into HTCondor's (or HTCondor-CE's) config.d and adjust.",
        "# Jobs use it with:  universe = grid   and   grid_resource = batch kubernetes",
        "# (exactly that: extra words after 'kubernetes' switch the gridmanager to remote mode).",
        "",
        "KUBERNETES_GAHP = $(BIN)/kgahp",
        "",
        "# How many jobs the gridmanager keeps submitted, and how fast it polls them.",
        "# kgahp answers status from a watch-fed cache, so a higher probe rate costs the",
        "# cluster nothing.",
        "#GRIDMANAGER_MAX_SUBMITTED_JOBS_PER_RESOURCE_BATCH = 1000",
        "#GRIDMANAGER_JOB_PROBE_RATE_BATCH = 5",
        "",
        "# Every kgahp knob, with its default. Uncomment to change.",
    ]
    for knob in KNOBS:
        lines.append(f"# {knob.help}")
        lines.append(f"#{PREFIX}{knob.name} = {knob.default}".rstrip())
    return "\n".join(lines) + "\n"


# --- the knob reference, generated (docs/configuration.md and the config snippet)

SECTION_TITLES: dict[str, str] = {
    "kube": "Cluster access",
    "server": "The GAHP process",
    "pod": "Pods, resources and policy",
    "lifecycle": "Job states and timing",
    "transfer": "Files and credentials",
}
REFERENCE_FILES = ("docs/configuration.md", "condor_config.d/50-kgahp.conf")
REGENERATE_COMMAND = "kgahp show-config --write-docs ."

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def markdown_cell(text: str) -> str:
    """Plain text made literal in a Markdown table cell, for MkDocs and GitHub alike (angle
    brackets become entities: Python-Markdown keeps a backslash written before them)."""
    text = _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _md_code(text: str) -> str:
    return f"`{text}`" if text else "(empty)"


_REFERENCE_INTRO = """\
kgahp reads {count} knobs. Each is an ordinary HTCondor configuration setting named
`{prefix}<NAME>`, read through the configuration of the schedd that starts the gridmanager (for
an HTCondor-CE, the CE's configuration). So:

- set a knob in a file under `config.d` (start from `condor_config.d/50-kgahp.conf`, which lists
  every knob below with its default, commented out);
- `condor_config_val -dump {prefix}` (`condor_ce_config_val` on a CE) shows what is set;
- `_CONDOR_{prefix}<NAME>` in the environment overrides a knob, as for any HTCondor setting;
- `kgahp show-config` prints the values kgahp itself ends up with, and names the knob at fault
  when a value cannot be used.

kgahp reads its knobs once, when the gridmanager starts it. A bad value does not stop the GAHP:
every request is then answered with a sentence naming the knob, and the gridmanager shows that
sentence as the reason the resource is down.

An empty default is shown as (empty). Sizes (MiB, KiB or bytes, as each knob says) and times
(seconds) are plain numbers."""


def knobs_markdown() -> str:
    """The text of docs/configuration.md: every knob, its default and meaning, by section."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated from KNOBS in kgahp/config.py: do not edit by hand. After changing a knob,",
        f"     run `{REGENERATE_COMMAND}` in the checkout (it rewrites this page and",
        "     condor_config.d/50-kgahp.conf). -->",
        "",
        *_REFERENCE_INTRO.format(count=len(KNOBS), prefix=PREFIX).splitlines(),
    ]
    for section, title in SECTION_TITLES.items():
        lines += ["", f"## {title}", "", "| Knob | Default | Meaning |", "|---|---|---|"]
        for knob in KNOBS:
            if _MAP[knob.name][0] != section:
                continue
            lines.append(f"| `{PREFIX}{knob.name}` | {_md_code(knob.default)} "
                         f"| {markdown_cell(knob.help)} |")
    return "\n".join(lines) + "\n"


def reference_texts() -> dict[str, str]:
    """Each generated file (path relative to a checkout) and the text it must hold."""
    return {REFERENCE_FILES[0]: knobs_markdown(), REFERENCE_FILES[1]: config_snippet()}
