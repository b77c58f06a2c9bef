"""What a job may ask for: the admin's limits checked before a pod is built, and a final guard
on the built pod so that no job attribute, whatever path it takes, can widen the admin's policy.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any, Optional

import yaml

from kgahp.config import GpuMode, Settings
from kgahp.errors import JobAdError, PolicyError
from kgahp.model import JobRequest
from kgahp.podspec.merge import strategic_merge
from kgahp.podspec.names import ANN_QUEUE
from kgahp.podspec.templates import Templates

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


def verify_pod(pod: dict[str, Any], templates: Templates, settings: Settings) -> None:
    """PolicyError unless every privilege the pod holds comes from the admin's own templates.

    Checked: privileged containers, privilege escalation, added capabilities, hostPath volumes,
    host namespaces, service account and its token, and the namespace.
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
    _verify_containers(spec, ref_spec)


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


def _verify_containers(spec: dict[str, Any], ref_spec: dict[str, Any]) -> None:
    ref_containers = {c.get("name"): c for kind in _CONTAINER_LISTS
                      for c in ref_spec.get(kind) or []}
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            name = container.get("name")
            where = f"spec.{kind}[{name}].securityContext"
            context = container.get("securityContext") or {}
            ref_context = (ref_containers.get(name) or {}).get("securityContext") or {}
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
