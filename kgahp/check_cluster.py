"""The checks of `kgahp check` that ask the cluster, all through kgahp.kube: the identity works,
RBAC grants every verb kgahp uses in every namespace it may use, each namespace exists and admits
the pod kgahp would build for each queue (a server-side dry run: validation and admission such
as Pod Security answer exactly as for a real submit), and every object the templates and queues
name (PriorityClass, Secret, ConfigMap, Kueue LocalQueue) exists.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Optional

from kgahp.check_local import FAIL, INFO, OK, WARN, Result
from kgahp.config import PREFIX, Settings
from kgahp.errors import ApiError, KgahpError
from kgahp.kube.api import PERMISSIONS, Kube
from kgahp.kube.jobs import JOB_PERMISSIONS
from kgahp.model import JobRequest
from kgahp.podspec import Templates, build_pod, choose_namespace, verify_pod
from kgahp.sandbox.credentials import CREDENTIALS_SECRET_PLACEHOLDER
from kgahp.workloads import uses_jobs

PSA_PREFIX = "pod-security.kubernetes.io/"
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_LABEL = "kueue.x-k8s.io/queue-name"
RBAC_FIX = ("grant the kgahp Role in that namespace to this identity (deploy/rbac.yaml: Role "
            "kgahp and a RoleBinding naming the job owner's Kubernetes user)")


def connect(settings: Settings) -> tuple[Optional[Kube], list[Result]]:
    """A Kube for the configured credentials, and a line saying who the server thinks we are."""
    from kgahp.kube.connect import api_client

    where = settings.kube.kubeconfig or "$KUBECONFIG or ~/.kube/config"
    try:
        kube = Kube(api_client(settings.kube, pool_size=4), settings.kube, retry_deadline=10)
    except KgahpError as exc:
        return None, [Result("kubernetes", FAIL, str(exc),
                             f"set {PREFIX}KUBECONFIG to a kubeconfig the job owner can read")]
    try:
        version = kube.server_version()
        user = kube.whoami()
    except ApiError as exc:
        fix = ("renew or replace the credentials in the kubeconfig" if exc.status == 401
               else "check the server address and the network path to it")
        return None, [Result("kubernetes", FAIL, f"{where}: {exc}", fix)]
    host = kube.api_client.configuration.host
    who = f"as {user}" if user else "(identity not reported: no SelfSubjectReview API)"
    return kube, [Result("kubernetes", OK, f"API server {version} at {host}, {who}",
                         data={"server": host, "version": version, "user": user})]


# ---- namespaces --------------------------------------------------------------------------------
def namespaces_in_use(settings: Settings, templates: Templates) -> list[str]:
    out = list(settings.kube.namespaces)
    for queue in templates.queues.values():
        if queue.namespace and queue.namespace not in out:
            out.append(queue.namespace)
    return out


def check_namespace(kube: Kube, namespace: str, settings: Settings) -> Result:
    label = f"namespace {namespace}"
    if namespace not in settings.kube.namespaces:
        return Result(label, FAIL, "a queue places pods here but it is not in "
                      f"{PREFIX}NAMESPACE or {PREFIX}ALLOWED_NAMESPACES, so every job of that "
                      "queue is refused", f"add {namespace} to {PREFIX}ALLOWED_NAMESPACES")
    try:
        ns = kube.get_namespace(namespace)
    except ApiError as exc:
        if exc.status == 403:
            return Result(label, INFO, "this identity may not read namespaces; its existence "
                          "and Pod Security level show in the dry runs below")
        return Result(label, FAIL, str(exc), "see the kubernetes line above")
    if ns is None:
        return Result(label, FAIL, "does not exist",
                      f"kubectl create namespace {namespace} (deploy/namespaces.yaml has the "
                      "examples' namespaces with their Pod Security labels)")
    labels = (ns.get("metadata") or {}).get("labels") or {}
    levels = {k[len(PSA_PREFIX):]: v for k, v in sorted(labels.items())
              if k.startswith(PSA_PREFIX)}
    shown = ", ".join(f"{k}={v}" for k, v in levels.items()) or "no Pod Security labels " \
        "(the cluster's default level applies)"
    return Result(label, OK, f"exists; {shown}", data={"podSecurity": levels})


def check_rbac(kube: Kube, namespace: str, *, job_mode: bool = False) -> Result:
    """Every permission kgahp uses in `namespace`; with `job_mode`, those on Jobs too."""
    label = f"rbac {namespace}"
    denied: list[str] = []
    wanted = PERMISSIONS + (JOB_PERMISSIONS if job_mode else ())
    for verb, resource, sub in wanted:
        try:
            allowed, _ = kube.can_i(verb, resource, namespace, sub)
        except ApiError as exc:
            return Result(label, FAIL, f"cannot ask (SelfSubjectAccessReview): {exc}",
                          "grant create on selfsubjectaccessreviews (every authenticated user "
                          "has it by default)")
        if not allowed:
            denied.append(f"{verb} {resource}{'/' + sub if sub else ''}")
    if denied:
        return Result(label, FAIL, f"may not {', '.join(denied)}", RBAC_FIX,
                      {"denied": denied})
    return Result(label, OK, f"all {len(wanted)} permissions kgahp uses are granted")


# ---- the pod of each queue ---------------------------------------------------------------------
@dataclass
class QueuePod:
    queue: str                     # "" = jobs that name no queue
    namespace: str = ""
    pod: Optional[dict[str, Any]] = None
    error: str = ""
    image_note: str = ""
    refs: dict[str, set[str]] = field(default_factory=dict)


def _stand_in_image(settings: Settings, templates: Templates,
                    queue: str) -> tuple[Optional[str], str]:
    """(image to put in the job, note): None when the admin's default or template applies."""
    from kgahp.check_local import pattern_example
    from kgahp.podspec.policy import admin_reference

    spec = admin_reference(templates, queue or None).get("spec") or {}
    job: dict[str, Any] = next(
        (c for c in spec.get("containers") or [] if c.get("name") == "job"), {})
    if settings.pod.default_image or job.get("image"):
        return None, ""
    if not settings.pod.allowed_images:
        return None, ""
    pattern = settings.pod.allowed_images[0]     # an image the policy lets a job name
    example = "busybox:1.36" if pattern == "*" else pattern_example(pattern)
    return example, f"no {PREFIX}DEFAULT_IMAGE: the dry runs give jobs the image {example!r}"


def render_queue_pod(queue: str, settings: Settings, templates: Templates) -> QueuePod:
    """The pod kgahp would create for a job of `queue` (input sandbox included), built by the
    same code as a real submit."""
    from kgahp.sandbox import decorate_pod
    from kgahp.sandbox.inputs import InputBundle

    out = QueuePod(queue)
    image, out.image_note = _stand_in_image(settings, templates, queue)
    stamp = int(time.time())
    iwd = "/tmp"
    try:
        if settings.transfer.mode == "shared":    # a job's Iwd must lie on the shared volume
            from kgahp.sandbox.decorate import parse_shared_volume

            iwd = os.path.join(parse_shared_volume(settings.transfer.shared_volume)[1], "job")
    except KgahpError as exc:
        out.error = str(exc)
        return out
    req = JobRequest(job_directory=f"home_bl_check.invalid_9619_check.invalid_0.0_{stamp}",
                     cmd="/bin/sh", iwd=iwd, image=image, queue=queue or None,
                     transfer_input=("input.txt",))
    try:
        out.namespace = choose_namespace(req, settings, templates)
        pod = build_pod(req, settings, templates, attempt=0)
        out.refs = references(pod)
        if queue and templates.queues[queue].kueue_queue:
            out.refs.setdefault("localqueue", set()).add(templates.queues[queue].kueue_queue or "")
        name = pod["metadata"]["name"]
        bundle = InputBundle(data={"f0": "", "f1": ""},
                             items=(("f0", "sh", 0o755), ("f1", "input.txt", 0o644)),
                             total_bytes=0)
        if settings.transfer.mode == "api":
            decorate_pod(pod, req, settings.transfer, inputs=bundle,
                         input_secret=f"{name}-input")
        else:
            decorate_pod(pod, replace(req, transfer_input=()), settings.transfer)
        verify_pod(pod, templates, settings, req=req)
        out.pod = pod
    except KgahpError as exc:
        out.error = str(exc)
    return out


def references(pod: dict[str, Any]) -> dict[str, set[str]]:
    """The objects a pod names that must exist before it can start (or be admitted)."""
    refs: dict[str, set[str]] = {"priorityclass": set(), "secret": set(), "configmap": set()}
    spec = pod.get("spec") or {}
    if spec.get("priorityClassName"):
        refs["priorityclass"].add(str(spec["priorityClassName"]))
    for item in spec.get("imagePullSecrets") or []:
        if item.get("name"):
            refs["secret"].add(str(item["name"]))
    for volume in spec.get("volumes") or []:
        _volume_refs(volume, refs)
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for source in container.get("envFrom") or []:
            for key, kind in (("secretRef", "secret"), ("configMapRef", "configmap")):
                ref = source.get(key) or {}
                if ref.get("name") and not ref.get("optional"):
                    refs[kind].add(str(ref["name"]))
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for key, kind in (("secretKeyRef", "secret"), ("configMapKeyRef", "configmap")):
                ref = value_from.get(key) or {}
                if ref.get("name") and not ref.get("optional"):
                    refs[kind].add(str(ref["name"]))
    # the template's stand-in for each job's own credential Secret, which kgahp creates
    refs["secret"].discard(CREDENTIALS_SECRET_PLACEHOLDER)
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(KUEUE_LABEL):
        refs["localqueue"] = {str(labels[KUEUE_LABEL])}
    return refs


def _volume_refs(volume: dict[str, Any], refs: dict[str, set[str]]) -> None:
    secret = volume.get("secret") or {}
    if secret.get("secretName") and not secret.get("optional"):
        refs["secret"].add(str(secret["secretName"]))
    config_map = volume.get("configMap") or {}
    if config_map.get("name") and not config_map.get("optional"):
        refs["configmap"].add(str(config_map["name"]))
    for source in (volume.get("projected") or {}).get("sources") or []:
        for key, kind in (("secret", "secret"), ("configMap", "configmap")):
            ref = source.get(key) or {}
            if ref.get("name") and not ref.get("optional"):
                refs[kind].add(str(ref["name"]))


_PSA = re.compile(r'violates? PodSecurity "([^"]+)": (.*)$', re.S)


def pod_security_rules(message: str) -> tuple[str, list[str]]:
    """("restricted:latest", ["runAsNonRoot != true", ...]) from a PodSecurity refusal or
    warning; ("", []) when the message is not one."""
    match = _PSA.search(message)
    if match is None:
        return "", []
    rules, depth, current = [], 0, ""
    for char in match.group(2):      # "rule (detail), rule (detail)": details hold commas
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            rules.append(current)
            current = ""
            continue
        if depth == 0 and char != ")":
            current += char
    rules.append(current)
    return match.group(1), [r.strip() for r in rules if r.strip()]


def check_dry_run(kube: Kube, queue_pod: QueuePod) -> Result:
    label = f"pod {queue_pod.queue or '(no queue)'}"
    if queue_pod.pod is None:
        return Result(label, FAIL, f"kgahp cannot build this queue's pod: {queue_pod.error}",
                      f"correct {PREFIX}POD_TEMPLATE / {PREFIX}QUEUE_CONFIG")
    ns = queue_pod.namespace
    try:
        warnings = kube.dry_run_pod(ns, queue_pod.pod)
    except ApiError as exc:
        message = str(exc).split(": ", 1)[-1]
        level, rules = pod_security_rules(message)
        if rules:
            fix = (f"the namespace {ns} enforces Pod Security {level}; the pod breaks "
                   f"{'; '.join(rules)}: change the template or queue overlay so the pod meets "
                   "the level, or label the namespace with a level the site accepts")
            return Result(label, FAIL, f"namespace {ns} refuses it: {message}", fix,
                          {"namespace": ns, "status": exc.status, "podSecurity": level,
                           "rules": rules})
        fix = ("change the template or queue overlay so the pod passes, or relax the "
               "namespace's policy")
        if exc.status == 403:
            fix = RBAC_FIX
        elif exc.status == 404 or "not found" in message:
            fix = f"create namespace {ns} (deploy/namespaces.yaml)"
        return Result(label, FAIL, f"namespace {ns} refuses it: {message}", fix,
                      {"namespace": ns, "status": exc.status})
    if warnings:
        rules = [rule for w in warnings for rule in pod_security_rules(w)[1]]
        return Result(label, WARN, f"namespace {ns} admits it with warnings: "
                      f"{'; '.join(warnings)}",
                      "these become refusals where the level is enforced; change the template",
                      {"namespace": ns, "warnings": warnings, "rules": rules})
    return Result(label, OK, f"namespace {ns} admits it (server-side dry run)",
                  data={"namespace": ns})


# ---- named objects -----------------------------------------------------------------------------
_FIX = {
    "priorityclass": "create it (deploy/priorityclasses.yaml) or drop priorityClassName from "
                     "the queue; Priority admission refuses every pod naming a missing class",
    "secret": "create it in that namespace (deploy/pilot-token-secret.yaml is a template); "
              "pods naming it wait in ContainerCreating and are held",
    "configmap": "create it in that namespace; pods naming it wait in ContainerCreating and are "
                 "held",
    "localqueue": "create the Kueue LocalQueue (deploy/kueue-localqueue.yaml) or drop kueueQueue "
                  "from the queue",
}


def check_object(kube: Kube, kind: str, name: str, namespace: str,
                 kueue_version: Optional[str]) -> Result:
    where = "" if kind == "priorityclass" else f" in {namespace}"
    label = f"{kind} {name}{where}".strip()
    if kind == "priorityclass":
        path, what = f"/apis/scheduling.k8s.io/v1/priorityclasses/{name}", "PriorityClass"
    elif kind == "localqueue":
        if kueue_version is None:
            return Result(label, FAIL, f"Kueue is not installed (no {KUEUE_GROUP} API)",
                          "install Kueue or drop kueueQueue from the queue")
        path = f"/apis/{KUEUE_GROUP}/{kueue_version}/namespaces/{namespace}/localqueues/{name}"
        what = "LocalQueue"
    else:
        plural = "secrets" if kind == "secret" else "configmaps"
        path, what = f"/api/v1/namespaces/{namespace}/{plural}/{name}", kind
    try:
        found = kube.exists(f"reading {what} {name}", path)
    except ApiError as exc:
        if exc.status == 403:
            return Result(label, WARN, f"cannot tell whether it exists: this identity may not "
                          f"read {what}s (kgahp itself does not need to)",
                          "ask the cluster admin to confirm it exists")
        return Result(label, FAIL, str(exc), "see the kubernetes line above")
    if not found:
        return Result(label, FAIL, "named by the templates or queues but does not exist",
                      _FIX[kind])
    return Result(label, OK, "exists")


def check_cluster(settings: Settings, templates: Templates) -> list[Result]:
    kube, results = connect(settings)
    if kube is None:
        return results
    for ns in namespaces_in_use(settings, templates):
        results.append(check_namespace(kube, ns, settings))
        results.append(check_rbac(kube, ns, job_mode=uses_jobs(settings, templates)))
    queue_pods = [render_queue_pod(q, settings, templates)
                  for q in ["", *sorted(templates.queues)]]
    wanted: set[tuple[str, str, str]] = set()
    notes = sorted({q.image_note for q in queue_pods if q.image_note})
    results += [Result("pod image", INFO, n) for n in notes]
    for queue_pod in queue_pods:
        results.append(check_dry_run(kube, queue_pod))
        for kind, names in queue_pod.refs.items():
            for name in names:
                ns = "" if kind == "priorityclass" else queue_pod.namespace
                wanted.add((kind, name, ns))
    kueue_version: Optional[str] = None
    if any(kind == "localqueue" for kind, _, _ in wanted):
        try:
            kueue_version = kube.preferred_version(KUEUE_GROUP)
        except ApiError:
            kueue_version = None
    for kind, name, ns in sorted(wanted):
        results.append(check_object(kube, kind, name, ns, kueue_version))
    return results
