"""What a job may ask for: the admin's limits checked before a pod is built, and a final guard
on the built pod so that no job attribute, whatever path it takes, can widen the admin's policy.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

import yaml

from kgahp.config import GpuMode, Settings
from kgahp.errors import ConfigError, JobAdError, PolicyError
from kgahp.model import JobRequest
from kgahp.podspec import quantity
from kgahp.podspec.merge import strategic_merge
from kgahp.podspec.names import ANN_QUEUE
from kgahp.podspec.templates import HELPER_PREFIX, MAIN_CONTAINER, Templates

EXTRA_ARGS_MAX = 65536
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC", "hostUsers")


# --- choices that follow from the request (pure, shared with build)

def choose_namespace(req: JobRequest, settings: Settings, templates: Templates) -> str:
    """The job's namespace, else its queue's, else KGAHP_NAMESPACE."""
    if req.namespace:
        return req.namespace
    queue = templates.queues.get(req.queue or "")
    if queue is not None and queue.namespace:
        return queue.namespace
    return settings.kube.namespace


def effective_cpus(req: JobRequest, settings: Settings) -> float:
    if req.whole_node:
        return settings.pod.whole_node_cpus
    return req.cpus if req.cpus_explicit else settings.pod.default_cpus


def effective_memory_mib(req: JobRequest, settings: Settings) -> int:
    if req.whole_node and settings.pod.whole_node_memory:
        return settings.pod.whole_node_memory
    return req.memory_mib if req.memory_mib is not None else settings.pod.default_memory


def effective_runtime(req: JobRequest, settings: Settings) -> Optional[int]:
    """Wall time in seconds: the job's, else DEFAULT_RUNTIME, else MAX_RUNTIME; None = unlimited."""
    for value in (req.runtime_seconds, settings.pod.default_runtime, settings.pod.max_runtime):
        if value:
            return int(value)
    return None


def gpu_mode(req: JobRequest, settings: Settings) -> Optional[GpuMode]:
    """The KGAHP_GPU_MODES entry the job's GPUMode names; None without a mode or without GPUs.

    As blahp's scripts do (pbs_submit.sh adds the mode only to a GPU count), a mode without
    GPUNumber > 0 asks for nothing and is ignored. A mode the site does not map is a PolicyError
    naming the mode, the knob and the modes on offer.
    """
    if not req.gpu_mode or not req.gpus:
        return None
    wanted = req.gpu_mode.lower()
    modes = settings.pod.gpu_modes
    for mode in modes:
        if mode.name == wanted:
            return mode
    if not modes:
        raise PolicyError("GPUMode", "this site offers no GPU modes (KGAHP_GPU_MODES is empty)",
                          f"asked for {req.gpu_mode!r}; leave GPUMode unset")
    offered = ", ".join(sorted(m.name for m in modes))
    raise PolicyError("GPUMode", f"{req.gpu_mode!r} is not a GPU mode this site maps in "
                      "KGAHP_GPU_MODES", f"choose one of {offered}, or leave GPUMode unset")


def gpu_resource(req: JobRequest, settings: Settings) -> str:
    """The extended resource the job's GPUs are requested as: its mode's, else GPU_RESOURCE."""
    mode = gpu_mode(req, settings)
    return (mode.resource if mode is not None else "") or settings.pod.gpu_resource


def check_mics(req: JobRequest, settings: Settings) -> None:
    pod = settings.pod
    if req.mics and not pod.mic_resource:
        raise PolicyError("MICNumber", "this site offers no MIC (Xeon Phi) resource "
                          "(KGAHP_MIC_RESOURCE is empty)", f"asked for {req.mics}")
    if req.mics > pod.max_mics:
        raise PolicyError("MICNumber", f"at most {pod.max_mics} MIC cards (KGAHP_MAX_MICS)",
                          f"asked for {req.mics}")


def resources(req: JobRequest, settings: Settings) -> dict[str, Any]:
    """requests/limits for the main container, limits following KGAHP_LIMIT_POLICY."""
    pod = settings.pod
    try:
        milli = quantity.cpu_millicores(effective_cpus(req, settings))
        memory = effective_memory_mib(req, settings)
        requests: dict[str, Any] = {"cpu": quantity.format_millicores(milli),
                                    "memory": quantity.format_mebibytes(memory)}
        if req.disk_kib is not None:
            requests["ephemeral-storage"] = quantity.format_kibibytes(req.disk_kib)
    except ValueError as exc:
        raise JobAdError(f"Resource request is not usable: {exc}") from None
    if req.gpus:
        requests[gpu_resource(req, settings)] = str(req.gpus)
    if req.mics:
        check_mics(req, settings)    # MIC_RESOURCE set: config refuses a GPU or core name
        requests[pod.mic_resource] = str(req.mics)
    limits: dict[str, Any] = dict(requests)
    if pod.limit_policy == "factor":
        if not math.isfinite(pod.limit_factor) or pod.limit_factor < 1:
            raise ConfigError(f"KGAHP_LIMIT_FACTOR = {pod.limit_factor:g} must be at least 1")
        limits["cpu"] = quantity.format_millicores(math.ceil(milli * pod.limit_factor))
        limits["memory"] = quantity.format_mebibytes(memory * pod.limit_factor)
    elif pod.limit_policy == "no-cpu-limit":
        limits["cpu"] = None     # also removes a CPU limit the template may carry
    return {"requests": requests, "limits": limits}


# --- check: the request against the knobs

def check(req: JobRequest, settings: Settings, templates: Templates) -> None:
    """PolicyError(attribute, rule) for the first thing the admin does not allow."""
    pod = settings.pod
    if req.image is not None:
        check_image_allowed(req.image, settings, "KubernetesImage")
    if req.queue and templates.queues and req.queue not in templates.queues:
        raise PolicyError("Queue", "the queue must be one this site configured",
                          f"{req.queue!r} is not one of {', '.join(sorted(templates.queues))}")
    namespace = choose_namespace(req, settings, templates)
    if namespace not in settings.kube.namespaces:
        attribute = "KubernetesNamespace" if req.namespace else "Queue"
        raise PolicyError(attribute, "the namespace must be one this GAHP may use",
                          f"{namespace!r} is not one of {', '.join(settings.kube.namespaces)}")
    if req.whole_node and not pod.whole_node_cpus:
        raise PolicyError("WholeNodes", "this site does not run whole-node jobs")
    cpus = effective_cpus(req, settings)
    memory = effective_memory_mib(req, settings)
    # A whole-node shape is the admin's own (WHOLE_NODE_*), so the caps apply to other jobs;
    # a zero cap on CPUs or memory would refuse every job, so 0 means "no limit" there.
    if pod.max_cpus and cpus > pod.max_cpus and not req.whole_node:
        raise PolicyError("RequestCpus", f"at most {pod.max_cpus:g} CPUs", f"asked for {cpus:g}")
    if pod.max_memory and memory > pod.max_memory and not req.whole_node:
        raise PolicyError("RequestMemory", f"at most {pod.max_memory} MiB",
                          f"asked for {memory}")
    if req.gpus > pod.max_gpus:
        raise PolicyError("GPUNumber", f"at most {pod.max_gpus} GPUs", f"asked for {req.gpus}")
    gpu_mode(req, settings)
    check_mics(req, settings)
    if pod.max_disk and req.disk_kib is not None and req.disk_kib > pod.max_disk:
        raise PolicyError("RequestDisk", f"at most {pod.max_disk} KiB",
                          f"asked for {req.disk_kib}")
    if pod.max_runtime and req.runtime_seconds and req.runtime_seconds > pod.max_runtime:
        raise PolicyError("BatchRuntime", f"at most {pod.max_runtime} seconds",
                          f"asked for {req.runtime_seconds}")
    extra_spec_patch(req, settings)


def check_image_allowed(image: str, settings: Settings, attribute: str) -> None:
    patterns = settings.pod.allowed_images
    if not any(fnmatch.fnmatchcase(image, p) for p in patterns):
        raise PolicyError(attribute, "the image must match KGAHP_ALLOWED_IMAGES",
                          f"{image!r} matches none of {', '.join(patterns)}")


def extra_spec_patch(req: JobRequest, settings: Settings) -> Optional[dict[str, Any]]:
    """BatchExtraSubmitArgs as a pod-spec patch, or None when absent or the knob is off."""
    allowed = settings.pod.extra_args_fields
    text = req.extra_submit_args
    if not allowed or text is None or not text.strip():
        return None
    if len(text) > EXTRA_ARGS_MAX:
        raise JobAdError(f"BatchExtraSubmitArgs is longer than {EXTRA_ARGS_MAX} characters")
    patch = _parse_mapping(text)
    for key in patch:
        if key not in allowed:
            raise PolicyError("BatchExtraSubmitArgs",
                              f"it may only set the pod spec fields {', '.join(allowed)}",
                              f"it sets {key!r}")
    return patch


def _parse_mapping(text: str) -> dict[str, Any]:
    problem = "must be a JSON or YAML mapping of pod spec fields"
    try:
        # aliases could expand a short text into a huge document: refuse them
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise JobAdError("BatchExtraSubmitArgs must not use YAML aliases")
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise JobAdError(f"BatchExtraSubmitArgs {problem}: it does not parse") from None
    if not isinstance(data, dict):
        raise JobAdError(f"BatchExtraSubmitArgs {problem}")
    try:
        # YAML may produce dates, sets or non-string keys that have no JSON form
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError):
        raise JobAdError(f"BatchExtraSubmitArgs {problem}: it holds non-JSON values") from None
    if not all(isinstance(k, str) for k in _all_keys(data)):
        raise JobAdError(f"BatchExtraSubmitArgs {problem}: every key must be a string")
    return data


def _all_keys(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_keys(item)


# --- verify_pod: the final guard

def admin_reference(templates: Templates, queue: Optional[str]) -> dict[str, Any]:
    """The admin's own pod for a queue: base template + that queue's overlay."""
    ref = templates.base
    config = templates.queues.get(queue or "")
    if config is not None and config.template:
        ref = strategic_merge(ref, config.template)
    return ref


def verify_pod(pod: dict[str, Any], templates: Templates, settings: Settings, *,
               req: Optional[JobRequest] = None) -> None:
    """PolicyError unless every privilege the pod holds comes from the admin's own templates.

    Checked: privileged containers, privilege escalation, added capabilities, root user or group,
    runAsNonRoot: false, an unconfined seccomp profile, hostPath volumes, host namespaces,
    service account and its token, the namespace, and resources (see `_verify_resources`).
    With `req`, resources are held to what `resources(req)` gives the job;
    without it (a pod changed after building), only to the admin's caps.
    """
    metadata = pod.get("metadata") or {}
    namespace = metadata.get("namespace")
    if namespace not in settings.kube.namespaces:
        raise PolicyError("namespace", "the namespace must be one this GAHP may use",
                          f"{namespace!r} is not one of {', '.join(settings.kube.namespaces)}")
    ref = admin_reference(templates, (metadata.get("annotations") or {}).get(ANN_QUEUE))
    spec = pod.get("spec") or {}
    ref_spec = ref.get("spec") or {}
    for key in _HOST_NAMESPACES:
        wanted = spec.get(key)
        # hostUsers is the opposite sense: false shares the host's user namespace
        risky = (wanted is False) if key == "hostUsers" else bool(wanted)
        if risky and ref_spec.get(key) != wanted:
            raise PolicyError(f"spec.{key}", "only the admin's pod template may set it")
    for key in ("serviceAccountName", "serviceAccount"):
        if spec.get(key) and spec.get(key) != ref_spec.get(key):
            raise PolicyError(f"spec.{key}", "only the admin's pod template may choose one")
    if spec.get("automountServiceAccountToken") and not ref_spec.get(
            "automountServiceAccountToken"):
        raise PolicyError("spec.automountServiceAccountToken",
                          "only the admin's pod template may mount the service account token")
    _verify_host_paths(spec, ref_spec, settings)
    _verify_identity("spec.securityContext", spec.get("securityContext") or {},
                     ref_spec.get("securityContext") or {})
    _verify_containers(spec, ref_spec)
    _verify_resources(spec, ref_spec, settings, req)


def _verify_host_paths(spec: dict[str, Any], ref_spec: dict[str, Any],
                       settings: Settings) -> None:
    allowed = {(v.get("name"), json.dumps(v.get("hostPath"), sort_keys=True))
               for v in ref_spec.get("volumes") or [] if v.get("hostPath") is not None}
    # TRANSFER_MODE = shared with SHARED_VOLUME = hostPath:<dir> is the admin's grant too
    kind, _, rest = settings.transfer.shared_volume.partition(":")
    shared_dir = rest if kind.lower() == "hostpath" and rest else None
    for volume in spec.get("volumes") or []:
        host_path = volume.get("hostPath")
        if host_path is None:
            continue
        key = (volume.get("name"), json.dumps(host_path, sort_keys=True))
        is_shared = (settings.transfer.mode == "shared" and shared_dir is not None
                     and isinstance(host_path, dict) and host_path.get("path") == shared_dir)
        if key not in allowed and not is_shared:
            raise PolicyError(f"spec.volumes[{volume.get('name')}].hostPath",
                              "only the admin's pod template may mount host directories")


def _verify_identity(where: str, context: dict[str, Any], ref_context: dict[str, Any]) -> None:
    """Root, a root group, runAsNonRoot: false or no seccomp filter only as the admin chose."""
    for key in ("runAsUser", "runAsGroup"):
        if context.get(key) == 0 and ref_context.get(key) != 0:
            raise PolicyError(f"{where}.{key}", "only the admin's pod template may run as root "
                              "(KGAHP_RUN_AS_USER, KGAHP_RUN_AS_GROUP)")
    if context.get("runAsNonRoot") is False and ref_context.get("runAsNonRoot") is not False:
        raise PolicyError(f"{where}.runAsNonRoot", "only the admin's pod template may allow "
                          "running as root")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp == "Unconfined" and (ref_context.get("seccompProfile") or {}).get(
            "type") != "Unconfined":
        raise PolicyError(f"{where}.seccompProfile", "only the admin's pod template may turn "
                          "the seccomp filter off")


def _verify_containers(spec: dict[str, Any], ref_spec: dict[str, Any]) -> None:
    ref_containers = {c.get("name"): c for kind in _CONTAINER_LISTS
                      for c in ref_spec.get(kind) or []}
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            name = container.get("name")
            where = f"spec.{kind}[{name}].securityContext"
            context = container.get("securityContext") or {}
            ref_context = (ref_containers.get(name) or {}).get("securityContext") or {}
            _verify_identity(where, context, ref_context)
            if context.get("privileged") and not ref_context.get("privileged"):
                raise PolicyError(f"{where}.privileged",
                                  "only the admin's pod template may run privileged containers")
            if context.get("allowPrivilegeEscalation") and not ref_context.get(
                    "allowPrivilegeEscalation"):
                raise PolicyError(f"{where}.allowPrivilegeEscalation",
                                  "only the admin's pod template may allow it")
            added = set(((context.get("capabilities") or {}).get("add")) or [])
            ref_added = set(((ref_context.get("capabilities") or {}).get("add")) or [])
            if added - ref_added:
                raise PolicyError(f"{where}.capabilities.add",
                                  "only the admin's pod template may add capabilities",
                                  ", ".join(sorted(added - ref_added)))


# --- verify_pod: resources
#
# A patch (BatchExtraSubmitArgs with `containers` allowed) may write any quantity into any
# container. The pod is held to a "granted" pod: the admin's reference containers, with the job
# container's resources as `resources(req)` makes them. Per container, an accelerator or other
# non-core resource may not exceed what the granted container holds; over the pod, the effective
# cpu/memory/ephemeral-storage request (max of the sum of containers and the largest init
# container, as the scheduler counts it) and the sum of limits may not exceed the granted pod's;
# and the job's share of GPUs and MIC cards stays within KGAHP_MAX_GPUS / KGAHP_MAX_MICS.

_CORE = {  # resource -> (job attribute, cap knob, unit name, unit in bytes or cores)
    "cpu": ("RequestCpus", "KGAHP_MAX_CPUS", "CPUs", Decimal(1)),
    "memory": ("RequestMemory", "KGAHP_MAX_MEMORY", "MiB", Decimal(2**20)),
    "ephemeral-storage": ("RequestDisk", "KGAHP_MAX_DISK", "KiB", Decimal(2**10)),
}
_QUANTITY_MAX = 40
_QUANTITY = re.compile(r"\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
                       r"(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{1,3})?")
_SUFFIX = {None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("0.001"),
           "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
           "P": Decimal(10**15), "E": Decimal(10**18), "Ki": Decimal(2**10),
           "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
           "Pi": Decimal(2**50), "Ei": Decimal(2**60)}
_ZERO = Decimal(0)
_Key = tuple[str, Any]   # (container list, container name)


def _short(value: Any, limit: int = 40) -> str:
    """A job-supplied value fit for a message: never longer than `limit` (plus '...')."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _amount(value: Any, where: str) -> Decimal:
    """A quantity as a number (cores, bytes, devices); PolicyError for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float) and math.isfinite(value):
        value = repr(value)
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) and \
        len(value) <= _QUANTITY_MAX else None
    if match is None:
        raise PolicyError(where, "it must be a non-negative Kubernetes quantity such as 2, "
                          "500m or 4Gi", f"not {_short(value)}")
    number, suffix = match.groups()
    try:
        if suffix and suffix[0] in "eE":
            return Decimal(number) * Decimal(10) ** int(suffix[1:])
        return Decimal(number) * _SUFFIX[suffix]
    except InvalidOperation:   # pragma: no cover - the pattern keeps numbers small
        raise PolicyError(where, "it must be a usable Kubernetes quantity") from None


def _fmt(value: Decimal) -> str:
    if value == value.to_integral_value() and abs(value) < 10**18:
        return str(int(value))
    return f"{value:.6g}"


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(where, "it must be a mapping")
    return value


def _quantities(resources: dict[str, Any], field: str, where: str) -> dict[str, Decimal]:
    return {str(name): _amount(value, f"{where}.{field}[{_short(name)}]")
            for name, value in _mapping(resources.get(field), f"{where}.{field}").items()}


class _Usage:
    """One container's requests and limits as numbers; requests default to limits (as the API
    defaults them), so a limit-only quantity counts as requested."""

    def __init__(self, container: dict[str, Any], where: str) -> None:
        resources = _mapping(container.get("resources"), where)
        self.limits = _quantities(resources, "limits", where)
        self.requests = {**self.limits, **_quantities(resources, "requests", where)}
        self.claims = {json.dumps(c, sort_keys=True) for c in resources.get("claims") or []}
        # an init container with restartPolicy Always is a sidecar: it runs beside the others
        self.sidecar = container.get("restartPolicy") == "Always"

    def device(self, name: str) -> Decimal:
        """Extended resources: request and limit must be equal; take the larger."""
        return max(self.requests.get(name, _ZERO), self.limits.get(name, _ZERO))


def _granted(ref_spec: dict[str, Any], req: Optional[JobRequest],
             settings: Settings) -> dict[_Key, dict[str, Any]]:
    """The admin's containers, with the job container's resources as kgahp builds them."""
    granted = {(kind, c.get("name")): c for kind in _CONTAINER_LISTS
               for c in ref_spec.get(kind) or [] if isinstance(c, dict)}
    job_key = ("containers", MAIN_CONTAINER)
    job = dict(granted.get(job_key) or {"name": MAIN_CONTAINER})
    if req is not None:
        job["resources"] = strategic_merge(job.get("resources") or {}, resources(req, settings))
    granted[job_key] = job
    return granted


def _usages(spec: dict[str, Any], what: str) -> dict[_Key, _Usage]:
    out: dict[_Key, _Usage] = {}
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            if not isinstance(container, dict):
                raise PolicyError(f"{what}.{kind}", "every entry must be a container mapping")
            name = container.get("name")
            out[(kind, name)] = _Usage(container, f"{what}.{kind}[{_short(name)}].resources")
    return out


def _verify_resources(spec: dict[str, Any], ref_spec: dict[str, Any], settings: Settings,
                      req: Optional[JobRequest]) -> None:
    if spec.get("resources") and spec.get("resources") != ref_spec.get("resources"):
        raise PolicyError("spec.resources", "only the admin's pod template may set pod-level "
                          "resources (KGAHP_POD_TEMPLATE, KGAHP_QUEUE_CONFIG)")
    ref_claims = {json.dumps(c, sort_keys=True) for c in ref_spec.get("resourceClaims") or []}
    for claim in spec.get("resourceClaims") or []:
        if json.dumps(claim, sort_keys=True) not in ref_claims:
            raise PolicyError("spec.resourceClaims", "only the admin's pod template may claim "
                              "devices (KGAHP_POD_TEMPLATE, KGAHP_QUEUE_CONFIG)",
                              _short(json.dumps(claim, sort_keys=True)))
    _verify_unique_names(spec)
    everything = _usages(spec, "spec")
    helpers = {k: u for k, u in everything.items() if _is_helper(k, u)}
    _verify_helpers(helpers, settings)
    usages = {k: u for k, u in everything.items() if k not in helpers}
    granted = _usages({k: [c for (kind, _), c in _granted(ref_spec, req, settings).items()
                           if kind == k] for k in _CONTAINER_LISTS}, "the admin's template")
    template = _usages(ref_spec, "the admin's template")
    gpus = {settings.pod.gpu_resource} | {m.resource for m in settings.pod.gpu_modes
                                          if m.resource}
    mic = settings.pod.mic_resource
    # without the request, the job container may hold up to the caps of what kgahp translates
    open_job = ({name: Decimal(settings.pod.max_gpus) for name in gpus}
                | ({mic: Decimal(settings.pod.max_mics)} if mic else {})) if req is None else {}
    for key, usage in everything.items():
        kind, name = key
        where = f"spec.{kind}[{_short(name)}].resources"
        grant = granted.get(key)
        extra = open_job if key == ("containers", MAIN_CONTAINER) else {}
        if usage.claims - (grant.claims if grant else set()):
            raise PolicyError(f"{where}.claims", "only the admin's pod template may claim "
                              "devices (KGAHP_POD_TEMPLATE, KGAHP_QUEUE_CONFIG)")
        for resource in set(usage.requests) | set(usage.limits):
            if resource in _CORE:
                continue
            amount = usage.device(resource)
            allowed = (grant.device(resource) if grant else _ZERO) + extra.get(resource, _ZERO)
            if amount > allowed:
                raise _device_refusal(f"{where}[{_short(resource)}]", resource, amount,
                                      allowed, gpus, mic)
    _verify_device_caps(usages, template, gpus, mic, settings)
    for resource in _CORE:
        _verify_core(resource, usages, granted, settings, req)


def _is_helper(key: _Key, usage: _Usage) -> bool:
    """kgahp's own helper: a (non-sidecar) init container with the reserved name prefix. It
    runs before the job's containers, so Kubernetes counts the pod as the larger of it and the
    job (not their sum); it is held to the helper budget instead of the job's request."""
    kind, name = key
    return (kind == "initContainers" and isinstance(name, str)
            and name.startswith(HELPER_PREFIX) and not usage.sidecar)


def _verify_unique_names(spec: dict[str, Any]) -> None:
    """Kubernetes refuses two containers of one name; the checks below key containers by
    name, so a duplicate must never hide one of them."""
    seen: set[Any] = set()
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            name = container.get("name") if isinstance(container, dict) else None
            if name in seen:
                raise PolicyError(f"spec.{kind}[{_short(name)}]",
                                  "container names must be unique in a pod")
            seen.add(name)


def _verify_helpers(helpers: dict[_Key, _Usage], settings: Settings) -> None:
    """Each helper within KGAHP_HELPER_* (what kgahp gives it), whatever the job asked for."""
    budget = settings.transfer.helper_resources
    for (kind, name), usage in helpers.items():
        where = f"spec.{kind}[{_short(name)}].resources"
        for field in ("requests", "limits"):
            values = usage.requests if field == "requests" else usage.limits
            for resource, amount in values.items():
                if resource not in _CORE:
                    continue   # devices: held to the (empty) grant with every other container
                knob = f"KGAHP_HELPER_{resource.upper()}_{field[:-1].upper()}"
                cap = budget[field].get(resource)
                allowed = _amount(cap, knob) if cap else _ZERO
                if amount > allowed:
                    rule = (f"kgahp's helper containers get at most {knob}" if cap else
                            f"kgahp's helper containers get no {resource}")
                    raise PolicyError(f"{where}.{field}[{resource}]", rule,
                                      f"{_fmt(amount)} asked, {_fmt(allowed)} granted")


def _device_refusal(where: str, resource: str, amount: Decimal, allowed: Decimal,
                    gpus: set[str], mic: str) -> PolicyError:
    detail = f"{_fmt(amount)} asked, {_fmt(allowed)} granted"
    if resource in gpus:
        return PolicyError(where, "GPUs come only from the job's GPUNumber (and GPUMode), "
                           "requested as KGAHP_GPU_RESOURCE or the mode's KGAHP_GPU_MODES "
                           "resource, at most KGAHP_MAX_GPUS",
                           f"{detail}; ask with GPUNumber, not BatchExtraSubmitArgs")
    if resource == mic:
        return PolicyError(where, "MIC cards come only from the job's MICNumber, requested as "
                           "KGAHP_MIC_RESOURCE, at most KGAHP_MAX_MICS",
                           f"{detail}; ask with MICNumber, not BatchExtraSubmitArgs")
    return PolicyError(where, "only the admin's pod template (KGAHP_POD_TEMPLATE, "
                       "KGAHP_QUEUE_CONFIG) may request this resource; a job gets accelerators "
                       "only through GPUNumber (KGAHP_GPU_RESOURCE, KGAHP_GPU_MODES) and "
                       "MICNumber (KGAHP_MIC_RESOURCE)", detail)


def _verify_device_caps(usages: dict[_Key, _Usage], template: dict[_Key, _Usage],
                        gpus: set[str], mic: str, settings: Settings) -> None:
    """The job's share (pod total minus the admin's template) of GPUs and MICs, within caps."""
    def share(resource: str) -> Decimal:
        total = sum((u.device(resource) for u in usages.values()), _ZERO)
        admin = sum((u.device(resource) for u in template.values()), _ZERO)
        return max(total - admin, _ZERO)

    gpu_share = sum((share(name) for name in gpus), _ZERO)
    if gpu_share > settings.pod.max_gpus:
        raise PolicyError("spec.containers.resources", f"at most {settings.pod.max_gpus} GPUs "
                          "(KGAHP_MAX_GPUS), counting every GPU resource of every container",
                          f"the pod asks for {_fmt(gpu_share)} beyond the admin's template")
    if mic and share(mic) > settings.pod.max_mics:
        raise PolicyError("spec.containers.resources", f"at most {settings.pod.max_mics} MIC "
                          "cards (KGAHP_MAX_MICS), counting every container",
                          f"the pod asks for {_fmt(share(mic))} {mic}")


def _pod_total(usages: dict[_Key, _Usage], resource: str, field: str) -> Optional[Decimal]:
    """What the scheduler counts: the larger of the running containers' sum and the largest
    init container. For limits, None when some running container has none (no bound)."""
    running: list[Optional[Decimal]] = []
    init = _ZERO
    for (kind, _), usage in usages.items():
        values = usage.requests if field == "requests" else usage.limits
        if kind == "ephemeralContainers":
            continue
        if kind == "initContainers" and not usage.sidecar:
            init = max(init, values.get(resource, _ZERO))
        else:
            running.append(values.get(resource, _ZERO if field == "requests" else None))
    if any(v is None for v in running):
        return None
    return max(sum((v for v in running if v is not None), _ZERO), init)


def _verify_core(resource: str, usages: dict[_Key, _Usage], granted: dict[_Key, _Usage],
                 settings: Settings, req: Optional[JobRequest]) -> None:
    attribute, knob, unit, scale = _CORE[resource]
    pod = settings.pod
    if req is None:
        # without the request: the largest job the admin allows (a whole-node one included)
        caps = {"cpu": (pod.max_cpus and max(pod.max_cpus, pod.whole_node_cpus)),
                "memory": (pod.max_memory and max(pod.max_memory, pod.whole_node_memory)),
                "ephemeral-storage": pod.max_disk}
        template = {k: u for k, u in granted.items() if k != ("containers", MAIN_CONTAINER)}
        cap = caps[resource]
        total = _pod_total(usages, resource, "requests") or _ZERO
        if cap:
            ceiling = Decimal(repr(cap)) * scale + (_pod_total(template, resource, "requests")
                                                    or _ZERO)
            if total > ceiling:
                raise PolicyError(f"spec.containers.resources[{resource}]",
                                  f"at most {cap:g} {unit} ({knob}) beyond the admin's template",
                                  f"the pod asks for {_fmt(total / scale)} {unit}")
        return
    for field in ("requests", "limits"):
        asked = _pod_total(usages, resource, field)
        allowed = _pod_total(granted, resource, field)
        if asked is None or allowed is None or asked <= allowed:
            continue
        hint = f"raise {attribute} instead (at most {knob})"
        if resource == "ephemeral-storage" and req.disk_kib is None:
            hint = f"the job sets no {attribute}: set it instead (at most {knob})"
        raise PolicyError(f"spec.containers.resources.{field}[{resource}]",
                          f"the pod's {resource} {field} may not exceed what the job's "
                          f"{attribute} and the admin's template give it",
                          f"{_fmt(asked / scale)} {unit} asked, {_fmt(allowed / scale)} "
                          f"granted; {hint}")
