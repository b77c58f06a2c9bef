"""Every Kubernetes manifest the repository ships (deploy/, examples/, subdirectories too, and the
pod templates embedded in ConfigMaps) is what the API server accepts, checked offline against the
JSON schemas of the Kubernetes API that the `kubernetes-validate` package ships (its newest
version, strict: an unknown field is an error, as with `kubectl --validate=strict`).

Pod templates are partial: a complete one (apiVersion + kind) is validated as it is, an overlay
(only `spec`, merged by kgahp onto the base template) is wrapped into a Pod. Kueue's kinds are
CRDs, absent from those schemas: they get a small structural schema of their own below.
"""

from __future__ import annotations

import copy
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kv

REPO = Path(__file__).resolve().parents[2]
ROOTS = (REPO / "deploy", REPO / "examples")
KUEUE_GROUP = "kueue.x-k8s.io"
# the newest Kubernetes the installed kubernetes-validate has schemas for (strict variant)
K8S_VERSION = kv.latest_version()


def _yaml_files() -> list[Path]:
    return sorted(p for root in ROOTS for p in root.rglob("*.y*ml")
                  if p.suffix in (".yaml", ".yml"))


def _embedded_templates(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Pod templates a ConfigMap carries as files (a key ending in .yaml holding a pod spec)."""
    if doc.get("kind") != "ConfigMap":
        return
    for key, text in (doc.get("data") or {}).items():
        if key.endswith((".yaml", ".yml")):
            inner = yaml.safe_load(text)
            if isinstance(inner, dict) and "spec" in inner:
                yield key, inner


def as_pod(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A pod template as the Pod the API would be sent: complete ones as they are (a name added
    when the template leaves it to kgahp), overlays wrapped."""
    pod = copy.deepcopy(doc)
    pod.setdefault("apiVersion", "v1")
    pod.setdefault("kind", "Pod")
    pod.setdefault("metadata", {}).setdefault("name", name)
    return pod


def _collect() -> list[Any]:
    out = []
    for path in _yaml_files():
        rel = path.relative_to(REPO).as_posix()
        for index, doc in enumerate(d for d in yaml.safe_load_all(path.read_text()) if d):
            if not isinstance(doc, dict):
                continue
            if "kind" in doc and "apiVersion" in doc:
                meta = doc.get("metadata") or {}
                where = "/".join(str(x) for x in (meta.get("namespace"), meta.get("name", index))
                                 if x is not None)
                label = f"{rel}:{doc['kind']}/{where}"
                out.append(pytest.param(doc, id=label))
                for key, inner in _embedded_templates(doc):
                    out.append(pytest.param(as_pod(inner, "template"),
                                            id=f"{label}[{key}]:Pod(template)"))
            elif "spec" in doc and "pod-templates" in rel:
                out.append(pytest.param(as_pod(doc, "overlay"), id=f"{rel}:Pod(overlay)"))
            # anything else (examples/queues.yaml) is kgahp's own configuration, not an object
    return out


MANIFESTS = _collect()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach the network fails the test: the schemas must come from the package."""
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("kubernetes-validate tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_schemas_are_recent() -> None:
    major, minor = (int(x) for x in K8S_VERSION.split(".")[:2])
    assert (major, minor) >= (1, 30), K8S_VERSION


def test_every_kind_of_file_is_covered() -> None:
    ids = [p.id for p in MANIFESTS]
    for expected in ("deploy/rbac.yaml:Role/osg-pilots/kgahp",
                     "deploy/rbac-job-mode.yaml:Role/osg-pilots/kgahp",
                     "deploy/in-cluster-ce/statefulset.yaml:StatefulSet/htcondor-ce/htcondor-ce",
                     "deploy/in-cluster-ce/serviceaccount.yaml:"
                     "ServiceAccount/htcondor-ce/htcondor-ce",
                     "examples/pod-templates/payload.yaml:Pod/0",
                     "examples/pod-templates/pilot.yaml:Pod(overlay)",
                     "deploy/kueue-localqueue.yaml:LocalQueue/osg-pilots/pilots-local"):
        assert expected in ids, ids
    assert any("[pilot.yaml]" in i for i in ids)


@pytest.mark.parametrize("doc", [pytest.param(m.values[0], id=f"{m.id}@k8s-v{K8S_VERSION}")
                                 for m in MANIFESTS
                                 if not m.values[0]["apiVersion"].startswith(KUEUE_GROUP)])
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any], no_network: None) -> None:
    try:
        used = kv.validate(doc, K8S_VERSION, strict=True)
    except kv.ValidationError as err:
        where = "/".join(str(p) for p in err.path)
        pytest.fail(f"{doc['kind']} at {where or '.'}: {err.message} (Kubernetes {err.version})")
    assert used == ".".join(K8S_VERSION.split(".")[:2])


def _refusal(doc: dict[str, Any]) -> str:
    with pytest.raises(kv.ValidationError) as err:
        kv.validate(doc, K8S_VERSION, strict=True)
    return str(err.value.message)


def test_the_validator_refuses_what_the_api_server_refuses(no_network: None) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "x", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"],
                       "resourceName": ["x"]}]}
    assert "'resourceName' was unexpected" in _refusal(role)
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "x"},
           "spec": {"serviceName": "x", "template": {}}}
    assert _refusal(sts) == "'selector' is a required property"
    pod = as_pod({"spec": {"containers": [{"name": "job", "resources": {"requests": 2}}]}}, "p")
    with pytest.raises(kv.ValidationError):
        kv.validate(pod, K8S_VERSION, strict=True)
    with pytest.raises(kv.SchemaNotFoundError):        # why the Kueue kinds need their own check
        kv.validate({"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
                     "metadata": {"name": "x"}}, K8S_VERSION, strict=True)


# ----- Kueue (CRDs): a structural schema written from Kueue's v1beta1 API types ----------------
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_QUANTITY = {"anyOf": [{"type": "integer", "minimum": 0},
                       {"type": "string", "pattern": r"^[0-9.]+([KMGTPE]i?|[mkMGTPE])?$"}]}
_META = {"type": "object", "required": ["name"], "properties": {"name": _NAME}}
KUEUE_SCHEMAS: dict[str, dict[str, Any]] = {
    "ResourceFlavor": {"type": "object", "required": ["metadata"], "properties": {
        "metadata": _META,
        "spec": {"type": "object", "additionalProperties": False, "properties": {
            "nodeLabels": {"type": "object"}, "nodeTaints": {"type": "array"},
            "tolerations": {"type": "array"}, "topologyName": {"type": "string"}}}}},
    "ClusterQueue": {"type": "object", "required": ["metadata", "spec"], "properties": {
        "metadata": _META,
        "spec": {"type": "object", "additionalProperties": False, "properties": {
            "namespaceSelector": {"type": "object"},
            "cohort": {"type": "string"},
            "queueingStrategy": {"enum": ["StrictFIFO", "BestEffortFIFO"]},
            "preemption": {"type": "object"}, "flavorFungibility": {"type": "object"},
            "stopPolicy": {"enum": ["None", "Hold", "HoldAndDrain"]},
            "admissionChecks": {"type": "array"}, "fairSharing": {"type": "object"},
            "resourceGroups": {"type": "array", "maxItems": 16, "items": {
                "type": "object", "required": ["coveredResources", "flavors"],
                "additionalProperties": False, "properties": {
                    "coveredResources": {"type": "array", "minItems": 1,
                                         "items": {"type": "string"}},
                    "flavors": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "required": ["name", "resources"],
                        "additionalProperties": False, "properties": {
                            "name": _NAME,
                            "resources": {"type": "array", "minItems": 1, "items": {
                                "type": "object", "required": ["name", "nominalQuota"],
                                "additionalProperties": False, "properties": {
                                    "name": {"type": "string"}, "nominalQuota": _QUANTITY,
                                    "borrowingLimit": _QUANTITY,
                                    "lendingLimit": _QUANTITY}}}}}}}}}}}}},
    "LocalQueue": {"type": "object", "required": ["metadata", "spec"], "properties": {
        "metadata": {**_META, "required": ["name", "namespace"]},
        "spec": {"type": "object", "required": ["clusterQueue"], "additionalProperties": False,
                 "properties": {"clusterQueue": _NAME, "stopPolicy": {"type": "string"},
                                "fairSharing": {"type": "object"}}}}},
}


def kueue_errors(doc: dict[str, Any]) -> list[str]:
    group, _, version = doc["apiVersion"].partition("/")
    if group != KUEUE_GROUP or version not in ("v1beta1", "v1beta2"):
        return [f"unknown Kueue API version {doc['apiVersion']}"]
    schema = KUEUE_SCHEMAS.get(doc["kind"])
    if schema is None:
        return [f"no structural schema for Kueue kind {doc['kind']}"]
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.path)) or '.'}: {e.message}"
            for e in validator.iter_errors(doc)]


@pytest.mark.parametrize("doc", [pytest.param(m.values[0], id=f"{m.id} (CRD: structural check)")
                                 for m in MANIFESTS
                                 if m.values[0]["apiVersion"].startswith(KUEUE_GROUP)])
def test_kueue_object_is_well_formed(doc: dict[str, Any]) -> None:
    assert kueue_errors(doc) == []


def test_the_kueue_check_finds_mistakes() -> None:
    local = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "LocalQueue",
             "metadata": {"name": "lq", "namespace": "ns"}, "spec": {"clusterqueue": "cq"}}
    assert kueue_errors(local) == [
        "spec: 'clusterQueue' is a required property",
        "spec: Additional properties are not allowed ('clusterqueue' was unexpected)"]
    cq = {"apiVersion": "kueue.x-k8s.io/v1beta1", "kind": "ClusterQueue",
          "metadata": {"name": "cq"}, "spec": {"resourceGroups": [{
              "coveredResources": ["cpu"],
              "flavors": [{"name": "f", "resources": [{"name": "cpu", "nominalQuota": "lots"}]}]}]}}
    assert len(kueue_errors(cq)) == 1
    assert kueue_errors({**local, "apiVersion": "kueue.x-k8s.io/v9"}) != []


def test_kueue_objects_refer_to_each_other() -> None:
    kueue = {m.values[0]["kind"]: m.values[0] for m in MANIFESTS
             if m.values[0]["apiVersion"].startswith(KUEUE_GROUP)}
    assert kueue["LocalQueue"]["spec"]["clusterQueue"] == kueue["ClusterQueue"]["metadata"]["name"]
    flavors = {f["name"] for g in kueue["ClusterQueue"]["spec"]["resourceGroups"]
               for f in g["flavors"]}
    assert flavors == {kueue["ResourceFlavor"]["metadata"]["name"]}


# ----- what kgahp sends: the examples' templates rendered into full pods ---------------------
def _example_queues() -> list[str]:
    doc = yaml.safe_load((REPO / "examples" / "queues.yaml").read_text())
    return ["", *doc["queues"]]


@pytest.mark.parametrize("queue", _example_queues(), ids=lambda q: f"queue:{q or '(none)'}")
def test_the_pod_kgahp_renders_from_the_examples_matches_the_schema(
        queue: str, no_network: None) -> None:
    from kgahp.check_cluster import render_queue_pod
    from kgahp.config import settings_from_mapping
    from kgahp.podspec import load_templates

    examples = REPO / "examples"
    settings = settings_from_mapping({
        "QUEUE_CONFIG": str(examples / "queues.yaml"),
        "POD_TEMPLATE": str(examples / "pod-templates" / "payload.yaml"),
        "ALLOWED_NAMESPACES": "osg-pilots", "DEFAULT_IMAGE": "busybox:1.36",
        "TRANSFER_MODE": "api"}, user="alice")
    rendered = render_queue_pod(queue, settings, load_templates(settings.pod))
    assert rendered.pod is not None, rendered.error
    assert rendered.pod["spec"]["containers"][0]["name"] == "job"
    kv.validate(rendered.pod, K8S_VERSION, strict=True)
