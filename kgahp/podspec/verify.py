"""`verify_pod`, the final guard: every privilege a built pod holds (host namespaces and paths,
service account, root, privilege escalation, capabilities, seccomp, and its resources) must come
from the admin's own templates.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from kgahp.config import Settings
from kgahp.errors import PolicyError
from kgahp.model import JobRequest
from kgahp.podspec.merge import strategic_merge
from kgahp.podspec.names import ANN_QUEUE
from kgahp.podspec.templates import Templates
from kgahp.podspec.verify_resources import CONTAINER_LISTS, verify_resources

_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC", "hostUsers")


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
    service account and its token, the namespace, and resources (see `verify_resources`).
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
    verify_resources(spec, ref_spec, settings, req)


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
    ref_containers = {c.get("name"): c for kind in CONTAINER_LISTS
                      for c in ref_spec.get(kind) or []}
    for kind in CONTAINER_LISTS:
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
