"""JobRequest + admin templates -> one complete Pod manifest (a plain dict, ready to POST).

Layers, each applied on the result of the one before:
1. the admin's base template, 2. the job's queue overlay (KGAHP_QUEUE_CONFIG),
3. BatchExtraSubmitArgs (only the spec fields KGAHP_EXTRA_ARGS_FIELDS lists),
4. the job's own values (image, command, env, resources, ...) in the fields a job may influence,
   so a patch in 3 cannot undo a checked value,
5. security defaults for whatever the layers above left unset,
6. kgahp's name, namespace, labels and annotations.
`check` runs first and `verify_pod` last, so every pod this returns is within policy.

Security defaults (Pod Security Standard "restricted"), for whatever the template leaves unset:
`allowPrivilegeEscalation: false` and `capabilities: {drop: [ALL]}` on every container;
`seccompProfile: RuntimeDefault`, `runAsNonRoot: true`, `runAsUser`/`runAsGroup`/`fsGroup` from
KGAHP_RUN_AS_USER / KGAHP_RUN_AS_GROUP and `automountServiceAccountToken: false` on the pod.
A numeric user is what lets a root image (busybox, python, ...) start under `runAsNonRoot`: the
kubelet refuses such an image only when it must trust the image's own user. With
KGAHP_RUN_AS_USER = image, `runAsNonRoot` is set only when the template names a non-root user.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Optional

from kgahp.config import GpuMode, Settings
from kgahp.errors import ConfigError, JobAdError
from kgahp.model import JobRequest
from kgahp.podspec import names
from kgahp.podspec.merge import strategic_merge, tree_copy
from kgahp.podspec.policy import (
    check,
    check_image_allowed,
    choose_namespace,
    effective_runtime,
    extra_spec_patch,
    gpu_mode,
    resources,
    verify_pod,
)
from kgahp.podspec.templates import HELPER_PREFIX, MAIN_CONTAINER, QueueConfig, Templates
from kgahp.podspec.values import check_env_name, check_image, check_text

ACTIVE_DEADLINE_MAX = 2**31 - 1
ATTEMPT_MAX = 999_999        # "-<attempt>" must fit the 7 characters a base name leaves free
_CONTAINER_LISTS = ("initContainers", "containers")


def build_pod(req: JobRequest, settings: Settings, templates: Templates, *,
              attempt: int, restarts: int = 0, verify: bool = True) -> dict[str, Any]:
    """The Pod for one attempt of a job. Raises JobAdError, PolicyError or ConfigError.

    `verify=False` leaves the final `verify_pod` to a caller that changes the pod further and
    verifies the result (kgahp.manifests.assemble)."""
    if not 0 <= attempt <= ATTEMPT_MAX:
        raise ValueError(f"attempt {attempt} is outside 0..{ATTEMPT_MAX}")
    check(req, settings, templates)
    queue = templates.queues.get(req.queue or "")
    pod = tree_copy(templates.base)
    if queue is not None and queue.template:
        pod = strategic_merge(pod, queue.template)
    spec: dict[str, Any] = pod.get("spec") or {}
    # the image is the admin's choice when the job names none: never one from the patch below
    image = _image(req, settings, _container_image(spec))
    _check_reserved_names(spec, "the pod template", ConfigError)
    patch = extra_spec_patch(req, settings)
    if patch:
        patched = strategic_merge(spec, patch)
        _check_patched_images(spec, patched, settings)
        _check_reserved_names(patched, "BatchExtraSubmitArgs", JobAdError)
        spec = patched
    spec = _with_job_values(spec, req, settings, queue, image)
    spec = with_security_defaults(spec, run_as_user=settings.pod.run_as_user,
                                  run_as_group=settings.pod.run_as_group)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata(pod.get("metadata") or {}, req, settings, queue,
                              choose_namespace(req, settings, templates), attempt, restarts),
        "spec": spec,
    }
    if verify:
        verify_pod(pod, templates, settings, req=req)
    return pod


def main_container(pod_or_spec: dict[str, Any]) -> dict[str, Any]:
    """The container named `job` (KeyError if there is none)."""
    spec = pod_or_spec.get("spec", pod_or_spec)
    for container in spec.get("containers") or []:
        if container.get("name") == MAIN_CONTAINER:
            return container
    raise KeyError(MAIN_CONTAINER)


# --- job values

def _with_job_values(spec: dict[str, Any], req: JobRequest, settings: Settings,
                     queue: Optional[QueueConfig], image: str) -> dict[str, Any]:
    spec = tree_copy(spec)
    containers = list(spec.get("containers") or [])
    index = next((i for i, c in enumerate(containers) if c.get("name") == MAIN_CONTAINER), None)
    if index is None:
        containers.insert(0, {"name": MAIN_CONTAINER})
        index = 0
    template_container = containers[index]
    container = dict(template_container)
    container["image"] = image
    container["command"] = [literal(check_text(req.cmd, "Cmd"))]
    container["args"] = [literal(check_text(a, "Arguments")) for a in req.arguments]
    container["env"] = _env(template_container.get("env") or [], req, settings)
    container["resources"] = strategic_merge(template_container.get("resources") or {},
                                             resources(req, settings))
    containers[index] = container
    spec["containers"] = containers
    spec["restartPolicy"] = "Never"
    runtime = effective_runtime(req, settings)
    if runtime is not None:
        if not 1 <= runtime <= ACTIVE_DEADLINE_MAX:
            raise JobAdError(f"BatchRuntime {runtime} is outside 1..{ACTIVE_DEADLINE_MAX} seconds")
        spec["activeDeadlineSeconds"] = runtime
    if req.gpu_model:
        selector = dict(spec.get("nodeSelector") or {})
        selector[settings.pod.gpu_model_label] = _gpu_model_value(req.gpu_model)
        spec["nodeSelector"] = selector
    mode = gpu_mode(req, settings)
    if mode is not None and mode.node_selector:
        spec["nodeSelector"] = _with_mode_selector(dict(spec.get("nodeSelector") or {}),
                                                   mode, req, settings)
    if queue is not None and queue.priority_class:
        spec["priorityClassName"] = queue.priority_class
    return spec


def _check_patched_images(before: dict[str, Any], after: dict[str, Any],
                          settings: Settings) -> None:
    """An image the patch brought in (for any container) obeys KGAHP_ALLOWED_IMAGES too."""
    admin = {c.get("name"): c.get("image") for kind in _CONTAINER_LISTS
             for c in before.get(kind) or []}
    for kind in _CONTAINER_LISTS:
        for container in after.get(kind) or []:
            image = container.get("image")
            if image == admin.get(container.get("name")) or container.get("name") == MAIN_CONTAINER:
                continue
            if not isinstance(image, str):
                raise JobAdError("BatchExtraSubmitArgs names a container without an image")
            check_image(image, "BatchExtraSubmitArgs image")
            check_image_allowed(image, settings, "BatchExtraSubmitArgs")


def _check_reserved_names(spec: dict[str, Any], source: str, error: type[Exception]) -> None:
    """Names starting HELPER_PREFIX are kgahp's own helpers, which policy budgets apart from
    the job: nobody else may name a container so."""
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            name = container.get("name") if isinstance(container, dict) else None
            if isinstance(name, str) and name.startswith(HELPER_PREFIX):
                raise error(f"{source} names a container {name[:63]!r}: names starting "
                            f"{HELPER_PREFIX!r} are reserved for kgahp's own containers")


def _container_image(spec: dict[str, Any]) -> Any:
    try:
        return main_container(spec).get("image")
    except KeyError:
        return None


def _image(req: JobRequest, settings: Settings, template_image: Any) -> str:
    """The job's image, else the template's (base or queue), else KGAHP_DEFAULT_IMAGE."""
    if req.image:
        return check_image(req.image)
    if isinstance(template_image, str) and template_image:
        return check_image(template_image, "the pod template's image")
    if settings.pod.default_image:
        return check_image(settings.pod.default_image, "KGAHP_DEFAULT_IMAGE")
    raise JobAdError("No container image: set +remote_KubernetesImage in the job "
                     "(or the site must set KGAHP_DEFAULT_IMAGE)")


def literal(text: str) -> str:
    """A job-supplied string as Kubernetes must see it to pass it on unchanged.

    The kubelet expands `$(VAR)` in command, args and env values and folds `$$` to `$`;
    HTCondor hands the job its Arguments and Environment literally. Doubling every `$` makes
    the kubelet's expansion a no-op. (Admin values in templates and KGAHP_ENVIRONMENT keep the
    Kubernetes meaning on purpose.)"""
    return text.replace("$", "$$")


def _env(template_env: list[Any], req: JobRequest, settings: Settings) -> list[dict[str, Any]]:
    """Template entries, overridden by the job's, overridden by KGAHP_ENVIRONMENT (by name).

    An override replaces the whole entry, so a job value never sits beside a template valueFrom.
    """
    merged: dict[str, dict[str, Any]] = {}
    for entry in template_env:
        merged[str(entry.get("name"))] = copy.deepcopy(entry)
    for name, value in req.environment:
        check_env_name(name)
        merged.pop(name, None)   # re-inserted last: later sources appear after earlier ones
        merged[name] = {"name": name,
                        "value": literal(check_text(value, f"Environment {name}"))}
    for name, value in settings.pod.environment:
        try:
            check_env_name(name)
            check_text(value, name)
        except JobAdError as exc:
            raise ConfigError(f"KGAHP_ENVIRONMENT: {exc}") from None
        merged.pop(name, None)
        merged[name] = {"name": name, "value": value}
    return list(merged.values())


def _with_mode_selector(selector: dict[str, Any], mode: GpuMode, req: JobRequest,
                        settings: Settings) -> dict[str, Any]:
    """The admin's node selector for the GPU mode wins over the template's and the patch's;
    a GPUModel that asks for a different value of the same label is refused, not dropped."""
    for key, value in mode.node_selector:
        if (req.gpu_model and key == settings.pod.gpu_model_label
                and selector.get(key) != value):
            raise JobAdError(f"GPUModel {req.gpu_model!r} conflicts with GPUMode "
                             f"{req.gpu_mode!r}, which this site ties to {key}={value}")
        selector[key] = value
    return selector


def _gpu_model_value(model: str) -> str:
    # node labels write spaces as '-' (e.g. NVIDIA's gpu.product "Tesla-V100-SXM2-16GB")
    value = re.sub(r"\s+", "-", model.strip())
    if not names.is_label_value(value):
        raise JobAdError(f"GPUModel {model!r} cannot be a node label value "
                         "(letters, digits, '-', '_', '.'; at most 63)")
    return value


# --- security defaults

def with_security_defaults(spec: dict[str, Any], *, run_as_user: Optional[int] = None,
                           run_as_group: Optional[int] = None) -> dict[str, Any]:
    """Restricted-profile settings wherever the spec leaves them unset.

    User and group go on the pod, where a template's container-level choice still wins over
    them (the kubelet's rule) and a template's pod-level choice is kept as it is.
    """
    spec = tree_copy(spec)
    pod_context = dict(spec.get("securityContext") or {})
    pod_context.setdefault("seccompProfile", {"type": "RuntimeDefault"})
    run_as = [pod_context.get("runAsUser")]
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            context = dict(container.get("securityContext") or {})
            if not context.get("privileged"):
                # the API refuses privileged together with allowPrivilegeEscalation: false
                context.setdefault("allowPrivilegeEscalation", False)
                context.setdefault("capabilities", {"drop": ["ALL"]})
            run_as.append(context.get("runAsUser"))
            container["securityContext"] = context
    if run_as_user is not None and "runAsUser" not in pod_context:
        pod_context["runAsUser"] = run_as_user
        run_as[0] = run_as_user
        if run_as_group is not None:
            pod_context.setdefault("runAsGroup", run_as_group)
    if run_as_group is not None and "fsGroup" not in pod_context:
        # the sandbox emptyDir and the mounted Secrets become group-owned (and readable) by it
        pod_context["fsGroup"] = pod_context.get("runAsGroup", run_as_group)
    if "runAsNonRoot" not in pod_context and 0 not in run_as and any(
            isinstance(u, int) and u > 0 for u in run_as):
        pod_context["runAsNonRoot"] = True
    spec["securityContext"] = pod_context
    spec.setdefault("automountServiceAccountToken", False)
    return spec


# --- metadata

def _metadata(template_meta: dict[str, Any], req: JobRequest, settings: Settings,
              queue: Optional[QueueConfig], namespace: str, attempt: int,
              restarts: int) -> dict[str, Any]:
    base = names.job_base_name(req.job_directory, settings.pod.pod_name_prefix)
    info = names.parse_job_directory(req.job_directory)
    labels: dict[str, str] = {
        k: names.label_value(str(v)) for k, v in (template_meta.get("labels") or {}).items()}
    annotations: dict[str, str] = {
        k: str(v) for k, v in (template_meta.get("annotations") or {}).items()}
    labels.update({
        names.LABEL_MANAGED_BY: names.MANAGED_BY_VALUE,
        names.LABEL_INSTANCE: names.label_value(settings.instance),
        names.LABEL_JOB: base,
        names.LABEL_ATTEMPT: str(attempt),
    })
    annotations.update({
        names.ANN_JOB_DIRECTORY: req.job_directory,
        names.ANN_ATTEMPT: str(attempt),
        names.ANN_RESTARTS: str(restarts),
    })
    optional = (
        (names.LABEL_SCHEDD, names.ANN_SCHEDD, info.schedd),
        (names.LABEL_CLUSTER_PROC, None, info.cluster_proc),
        (names.LABEL_OWNER, names.ANN_OWNER, settings.user or None),
        (names.LABEL_PROJECT, names.ANN_PROJECT, req.project),
        (names.LABEL_QUEUE, names.ANN_QUEUE, req.queue),
    )
    for label_key, annotation_key, value in optional:
        if value:
            labels[label_key] = names.label_value(value)
            if annotation_key:
                annotations[annotation_key] = value
    if queue is not None and queue.kueue_queue:
        labels[names.LABEL_KUEUE_QUEUE] = queue.kueue_queue
        if queue.kueue_priority_class:
            labels[names.LABEL_KUEUE_PRIORITY] = queue.kueue_priority_class
    return {
        "name": names.pod_name(base, attempt),
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
