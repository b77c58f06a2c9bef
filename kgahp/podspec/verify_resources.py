"""`verify_pod`'s resource check.

A patch (BatchExtraSubmitArgs with `containers` allowed) may write any quantity into any
container. The pod is held to a "granted" pod: the admin's reference containers, with the job
container's resources as `resources(req)` makes them. Per container, an accelerator or other
non-core resource may not exceed what the granted container holds; over the pod, the effective
cpu/memory/ephemeral-storage request (max of the sum of containers and the largest init
container, as the scheduler counts it) and the sum of limits may not exceed the granted pod's;
and the job's share of GPUs and MIC cards stays within KGAHP_MAX_GPUS / KGAHP_MAX_MICS.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from kgahp.config import Settings
from kgahp.errors import PolicyError
from kgahp.model import JobRequest
from kgahp.podspec.choices import resources
from kgahp.podspec.merge import strategic_merge
from kgahp.podspec.templates import HELPER_PREFIX, MAIN_CONTAINER

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


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
    granted = {(kind, c.get("name")): c for kind in CONTAINER_LISTS
               for c in ref_spec.get(kind) or [] if isinstance(c, dict)}
    job_key = ("containers", MAIN_CONTAINER)
    job = dict(granted.get(job_key) or {"name": MAIN_CONTAINER})
    if req is not None:
        job["resources"] = strategic_merge(job.get("resources") or {}, resources(req, settings))
    granted[job_key] = job
    return granted


def _usages(spec: dict[str, Any], what: str) -> dict[_Key, _Usage]:
    out: dict[_Key, _Usage] = {}
    for kind in CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            if not isinstance(container, dict):
                raise PolicyError(f"{what}.{kind}", "every entry must be a container mapping")
            name = container.get("name")
            out[(kind, name)] = _Usage(container, f"{what}.{kind}[{_short(name)}].resources")
    return out


def verify_resources(spec: dict[str, Any], ref_spec: dict[str, Any], settings: Settings,
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
    admin = _granted(ref_spec, req, settings).items()   # once, not once per container list
    granted = _usages({k: [c for (kind, _), c in admin if kind == k] for k in CONTAINER_LISTS},
                      "the admin's template")
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
    for kind in CONTAINER_LISTS:
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
