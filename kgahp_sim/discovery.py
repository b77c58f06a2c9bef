"""Discovery documents (/api/v1, /apis, group versions) for the API surface the sim serves."""

from __future__ import annotations

_RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_NS = ["create", "delete", "get", "list", "patch", "update", "watch"]

CORE_V1_RESOURCES = [
    {"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
     "verbs": _RW, "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ="},
    {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
     "verbs": _RW, "shortNames": ["ev"], "storageVersionHash": "r2yiGXH7wu8="},
    {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
     "verbs": _NS, "shortNames": ["ns"], "storageVersionHash": "Q3oi5N2YM8M="},
    {"name": "nodes", "singularName": "node", "namespaced": False, "kind": "Node",
     "verbs": _RW, "shortNames": ["no"], "storageVersionHash": "XwShjMxG9Fs="},
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": _RW,
     "shortNames": ["po"], "categories": ["all"], "storageVersionHash": "xPOwRZ+Yhw8="},
    {"name": "pods/binding", "singularName": "", "namespaced": True, "kind": "Binding",
     "verbs": ["create"]},
    {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
    {"name": "pods/status", "singularName": "", "namespaced": True, "kind": "Pod",
     "verbs": ["get", "patch", "update"]},
    {"name": "secrets", "singularName": "secret", "namespaced": True, "kind": "Secret",
     "verbs": _RW, "storageVersionHash": "S6u1pOWzb84="},
]

_GROUP_RESOURCES = {
    "batch": [
        {"name": "jobs", "singularName": "job", "namespaced": True, "kind": "Job",
         "verbs": _RW, "categories": ["all"], "storageVersionHash": "mudhfqk/qZY="},
        {"name": "jobs/status", "singularName": "", "namespaced": True, "kind": "Job",
         "verbs": ["get", "patch", "update"]}],
    "authorization.k8s.io": [
        {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
         "namespaced": False, "kind": "SelfSubjectAccessReview", "verbs": ["create"]}],
    "scheduling.k8s.io": [
        {"name": "priorityclasses", "singularName": "priorityclass", "namespaced": False,
         "kind": "PriorityClass", "verbs": _RW, "shortNames": ["pc"],
         "storageVersionHash": "1QwjyaZjj3Y="}],
    "authentication.k8s.io": [
        {"name": "selfsubjectreviews", "singularName": "selfsubjectreview", "namespaced": False,
         "kind": "SelfSubjectReview", "verbs": ["create"]}],
}


def core_v1() -> dict:
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": CORE_V1_RESOURCES}


def api_group(name: str) -> dict:
    version = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}


def group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [api_group(g) for g in _GROUP_RESOURCES]}


def group_version(group: str) -> dict | None:
    resources = _GROUP_RESOURCES.get(group)
    if resources is None:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1",
            "resources": resources}
