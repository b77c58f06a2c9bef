"""What follows from a request and the knobs: the namespace, the effective CPUs, memory and
runtime, the GPU mode and resource, and the job container's resources. Pure; shared by the
policy check, the build and the final guard.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from kgahp.config import GpuMode, Settings
from kgahp.errors import ConfigError, JobAdError, PolicyError
from kgahp.model import JobRequest
from kgahp.podspec import quantity
from kgahp.podspec.templates import Templates


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
