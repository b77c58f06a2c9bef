"""What a job may ask for: the admin's limits checked before a pod is built (`check`), and a final
guard on the built pod (`verify_pod`, from kgahp.podspec.verify) so that no job attribute,
whatever path it takes, can widen the admin's policy.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from typing import Any, Optional

import yaml

from kgahp.config import Settings
from kgahp.errors import JobAdError, PolicyError
from kgahp.model import JobRequest
from kgahp.podspec.choices import (
    check_mics,
    choose_namespace,
    effective_cpus,
    effective_memory_mib,
    effective_runtime,
    gpu_mode,
    gpu_resource,
    resources,
)
from kgahp.podspec.templates import Templates
from kgahp.podspec.verify import admin_reference, verify_pod

__all__ = [   # the choices and the final guard, for callers that know them as policy's
    "EXTRA_ARGS_MAX", "admin_reference", "check", "check_image_allowed", "check_mics",
    "choose_namespace", "effective_cpus", "effective_memory_mib", "effective_runtime",
    "extra_spec_patch", "gpu_mode", "gpu_resource", "resources", "verify_pod",
]

EXTRA_ARGS_MAX = 65536


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
