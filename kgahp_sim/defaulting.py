"""Server-side defaulting and admission of new objects, as kube-apiserver v1.36 does it.

Also puts keys in Go struct-field order so JSON bodies look like the real thing.
"""

from __future__ import annotations

from typing import Any

from kgahp_sim.quantity import QuantityError, parse_quantity

META_ORDER = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
)
POD_SPEC_ORDER = (
    "volumes", "initContainers", "containers", "ephemeralContainers", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "nodeSelector",
    "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
    "hostNetwork", "hostPID", "hostIPC", "shareProcessNamespace", "securityContext",
    "imagePullSecrets", "hostname", "subdomain", "affinity", "schedulerName", "tolerations",
    "hostAliases", "priorityClassName", "priority", "dnsConfig", "readinessGates",
    "runtimeClassName", "enableServiceLinks", "preemptionPolicy", "overhead",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers", "schedulingGates",
    "resourceClaims",
)
CONTAINER_ORDER = (
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resources",
    "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe",
    "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
)
POD_STATUS_ORDER = (
    "phase", "conditions", "message", "reason", "nominatedNodeName", "hostIP", "hostIPs",
    "podIP", "podIPs", "startTime", "initContainerStatuses", "containerStatuses", "qosClass",
    "ephemeralContainerStatuses", "resize",
)
TOP_ORDER = ("kind", "apiVersion", "metadata", "spec", "immutable", "data", "stringData", "type",
             "status", "value", "globalDefault", "description", "preemptionPolicy")

KIND_OF = {
    "pods": "Pod", "secrets": "Secret", "configmaps": "ConfigMap", "events": "Event",
    "namespaces": "Namespace", "nodes": "Node", "priorityclasses": "PriorityClass",
    "jobs": "Job",
}
# resources outside the core group, and their group (all served at version v1)
GROUP_OF = {"priorityclasses": "scheduling.k8s.io", "jobs": "batch"}
# v1.36 keeps metadata.generation on these (pods: bumped by spec changes and by DELETE)
GENERATION_RESOURCES = frozenset({"pods", "priorityclasses", "jobs"})


def api_version(resource: str) -> str:
    group = GROUP_OF.get(resource)
    return f"{group}/v1" if group else "v1"


def qualified(resource: str) -> str:
    """`pods`, or `priorityclasses.scheduling.k8s.io` for a resource in a named group."""
    group = GROUP_OF.get(resource)
    return f"{resource}.{group}" if group else resource


# The classes a kube-apiserver creates at start-up (21f, 21g).
BUILTIN_PRIORITY_CLASSES = (
    ("system-node-critical", 2000001000,
     "Used for system critical pods that must not be moved from their current node."),
    ("system-cluster-critical", 2000000000,
     "Used for system critical pods that must run in the cluster, but can be moved to another "
     "node if necessary."),
)

DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
     "tolerationSeconds": 300},
]


def ordered(d: dict, order: tuple[str, ...]) -> dict:
    """The same mapping with known keys in Go order first, unknown keys after."""
    out = {k: d[k] for k in order if k in d}
    if len(out) != len(d):
        out.update((k, v) for k, v in d.items() if k not in out)
    return out


def sorted_map(d: Any) -> Any:
    return {k: d[k] for k in sorted(d)} if isinstance(d, dict) else d


def order_metadata(meta: dict) -> dict:
    meta = ordered(meta, META_ORDER)
    for key in ("labels", "annotations"):
        if key in meta:
            meta[key] = sorted_map(meta[key])
    return meta


def order_object(obj: dict) -> dict:
    """Go field order for a stored object (cheap: top levels only)."""
    obj = ordered(obj, TOP_ORDER)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"] = order_metadata(obj["metadata"])
    if obj.get("kind") == "Pod":
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec = ordered(spec, POD_SPEC_ORDER)
            for key in ("initContainers", "containers"):
                if isinstance(spec.get(key), list):
                    spec[key] = [ordered(c, CONTAINER_ORDER) if isinstance(c, dict) else c
                                 for c in spec[key]]
            obj["spec"] = spec
        if isinstance(obj.get("status"), dict):
            status = ordered(obj["status"], POD_STATUS_ORDER)
            if isinstance(status.get("conditions"), list):
                status["conditions"] = [_condition(c) for c in status["conditions"]]
            obj["status"] = status
    elif "data" in obj and isinstance(obj["data"], dict):
        obj["data"] = sorted_map(obj["data"])
    return obj


CONDITION_ORDER = ("type", "status", "lastProbeTime", "lastTransitionTime", "reason", "message")


def _condition(c: Any) -> Any:
    """PodCondition as Go serialises it: lastProbeTime is a struct, so always present."""
    if not isinstance(c, dict):
        return c
    if "lastProbeTime" not in c:
        c = {**c, "lastProbeTime": None}
    return ordered(c, CONDITION_ORDER)


def _image_pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _default_container(c: dict) -> None:
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for env in c.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef")
        if isinstance(ref, dict):
            env["valueFrom"]["fieldRef"] = {"apiVersion": ref.get("apiVersion", "v1"), **ref}
    res = c.get("resources")
    if isinstance(res, dict) and res.get("limits"):
        requests = res.setdefault("requests", {})
        for name, value in res["limits"].items():
            requests.setdefault(name, value)
        c["resources"] = {"limits": res["limits"], "requests": requests,
                          **{k: v for k, v in res.items() if k not in ("limits", "requests")}}
    c.setdefault("resources", {})  # a Go struct: serialised even when empty (20c, 21c)
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    c.setdefault("imagePullPolicy", _image_pull_policy(str(c.get("image", ""))))


def qos_class(spec: dict) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits:
                guaranteed = False
            elif name in requests:
                try:
                    if parse_quantity(requests[name]) != parse_quantity(limits[name]):
                        guaranteed = False
                except QuantityError:
                    guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def default_pod(pod: dict) -> None:
    """Defaulting plus the ServiceAccount, DefaultTolerationSeconds and Priority admissions."""
    spec = pod.setdefault("spec", {})
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            _default_container(c)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    tolerations = spec.setdefault("tolerations", [])
    for default in DEFAULT_TOLERATIONS:
        if not any(t.get("key") == default["key"] for t in tolerations):
            tolerations.append(dict(default))
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = pod.get("status") or {}
    pod["status"] = {"phase": "Pending", "qosClass": qos_class(spec)} if not status.get(
        "phase") else {**status, "qosClass": qos_class(spec)}
    if spec.get("schedulingGates") and not status.get("phase"):
        # the apiserver itself marks a gated pod at create (24a)
        from kgahp_sim.gates import gated_condition
        from kgahp_sim.store import now_rfc3339

        pod["status"] = {"phase": "Pending", "conditions": [gated_condition(now_rfc3339())],
                         "qosClass": qos_class(spec)}


def keep_qos_class(resource: str, current: dict, updated: dict) -> None:
    """A pod's status.qosClass outlives a status write that leaves it out (v1.36, 17l)."""
    if resource != "pods":
        return
    qos = (current.get("status") or {}).get("qosClass")
    status = updated.get("status")
    if qos and isinstance(status, dict) and "qosClass" not in status:
        updated["status"] = ordered({**status, "qosClass": qos}, POD_STATUS_ORDER)


def default_namespace(ns: dict) -> None:
    name = ns["metadata"]["name"]
    labels = ns["metadata"].setdefault("labels", {})
    labels["kubernetes.io/metadata.name"] = name
    ns["spec"] = {"finalizers": ["kubernetes"], **(ns.get("spec") or {})}
    ns["status"] = {"phase": "Active"}


def default_secret(secret: dict) -> None:
    """stringData is folded into data (base64) and type defaults to Opaque."""
    import base64

    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    secret.setdefault("type", "Opaque")


def default_priority_class(pc: dict) -> None:
    pc.setdefault("preemptionPolicy", "PreemptLowerPriority")


def default_job(job: dict) -> None:
    from kgahp_sim.jobs import default_job as job_defaults  # batch/v1 (kgahp_sim.jobs)

    job_defaults(job)


DEFAULTERS = {"pods": default_pod, "namespaces": default_namespace, "secrets": default_secret,
              "priorityclasses": default_priority_class, "jobs": default_job}


def apply_defaults(resource: str, obj: dict) -> dict:
    fn = DEFAULTERS.get(resource)
    if fn:
        fn(obj)
    return order_object(obj)
