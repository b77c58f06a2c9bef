"""deploy/: every object is what a v1.36 API server accepts (its recorded OpenAPI v2 schema),
the Role grants what kgahp uses, examples/queues.yaml names nothing deploy/ lacks, and applied to
the simulator the objects make `kgahp check` pass for the examples where the simulator can tell."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from kgahp.check_cluster import check_cluster, render_queue_pod
from kgahp.check_local import FAIL
from kgahp.config import settings_from_mapping
from kgahp.kube.api import PERMISSIONS, Kube
from kgahp.kube.connect import api_client
from kgahp.podspec import load_templates

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
EXAMPLES = REPO / "examples"
OPENAPI_V2 = REPO / "tests" / "data" / "k8s-recordings-v1.36" / "26d-openapi-v2.body.json.gz"
KUEUE_KINDS = {"ResourceFlavor", "ClusterQueue", "LocalQueue"}


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


DOCS = _documents()


@pytest.fixture(scope="module")
def definitions() -> dict[str, Any]:
    with gzip.open(OPENAPI_V2) as handle:
        return dict(json.load(handle)["definitions"])


def _definition_for(definitions: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    group, _, version = doc["apiVersion"].rpartition("/")
    for schema in definitions.values():
        for gvk in schema.get("x-kubernetes-group-version-kind") or []:
            if (gvk["group"], gvk["version"], gvk["kind"]) == (group, version, doc["kind"]):
                return dict(schema)
    raise AssertionError(f"no {doc['apiVersion']} {doc['kind']} in the v1.36 API")


_TYPES: dict[str, Any] = {"string": str, "integer": int, "boolean": bool, "object": dict,
                          "array": list, "number": (int, float)}


def schema_errors(value: Any, schema: dict[str, Any], definitions: dict[str, Any],
                  where: str) -> list[str]:
    """What a strict (kubectl --validate=strict) client finds wrong with `value`."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("format") == "int-or-string":
        return [] if isinstance(value, (int, str)) else [f"{where}: not int-or-string"]
    kind = schema.get("type")
    if kind == "string" and schema.get("format") in ("byte", "date-time"):
        return [] if isinstance(value, str) else [f"{where}: not a string"]
    if kind is None and "properties" not in schema:
        return []       # Quantity, RawExtension, ...: anything goes at this level
    expected = _TYPES.get(kind or "object", object)
    if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
        return [f"{where}: expected {kind}, got {type(value).__name__}"]
    errors: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(f"{where}: missing required field {key!r}")
        for key, item in value.items():
            if props is not None and key in props:
                errors += schema_errors(item, props[key], definitions, f"{where}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += schema_errors(item, schema["additionalProperties"], definitions,
                                        f"{where}.{key}")
            elif props is not None:
                errors.append(f"{where}: unknown field {key!r}")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], definitions, f"{where}[{index}]")
    return errors


def test_validator_finds_what_a_strict_client_finds(definitions: dict[str, Any]) -> None:
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
          "metadata": {"name": "x"}, "value": "high", "preemption": "Never"}
    errors = schema_errors(pc, _definition_for(definitions, pc), definitions, "PriorityClass")
    assert errors == ["PriorityClass.value: expected integer, got str",
                      "PriorityClass: unknown field 'preemption'"]
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "x"}}
    assert schema_errors(binding, _definition_for(definitions, binding), definitions,
                         "rb") == ["rb: missing required field 'roleRef'"]


@pytest.mark.parametrize("source,doc", [d for d in DOCS if d[1]["kind"] not in KUEUE_KINDS],
                         ids=lambda d: d if isinstance(d, str) else d["metadata"]["name"])
def test_objects_match_the_v136_schema(source: str, doc: dict[str, Any],
                                       definitions: dict[str, Any]) -> None:
    assert schema_errors(doc, _definition_for(definitions, doc), definitions, doc["kind"]) == []


def test_kueue_objects_have_their_required_fields() -> None:
    kueue = {d["kind"]: d for _, d in DOCS if d["kind"] in KUEUE_KINDS}
    assert set(kueue) == KUEUE_KINDS
    assert all(d["apiVersion"] == "kueue.x-k8s.io/v1beta1" for d in kueue.values())
    local = kueue["LocalQueue"]
    assert local["spec"]["clusterQueue"] == kueue["ClusterQueue"]["metadata"]["name"]
    flavors = {f["name"] for g in kueue["ClusterQueue"]["spec"]["resourceGroups"]
               for f in g["flavors"]}
    assert flavors == {kueue["ResourceFlavor"]["metadata"]["name"]}


def test_role_grants_every_verb_kgahp_uses() -> None:
    roles = [d for _, d in DOCS if d["kind"] == "Role"]
    bound = {(d["metadata"]["namespace"], d["roleRef"]["name"])
             for _, d in DOCS if d["kind"] == "RoleBinding"}
    assert roles
    for role in roles:
        assert (role["metadata"]["namespace"], role["metadata"]["name"]) in bound
        granted = {(verb, resource) for rule in role["rules"] if rule["apiGroups"] == [""]
                   for verb in rule["verbs"] for resource in rule["resources"]}
        for verb, resource, sub in PERMISSIONS:
            assert (verb, f"{resource}/{sub}" if sub else resource) in granted


def _defined() -> set[tuple[str, str, str]]:
    """(kind, namespace, name) of every object deploy/ defines (plus the built-in `default`)."""
    out = {("Namespace", "", "default")}
    for _, doc in DOCS:
        meta = doc["metadata"]
        out.add((doc["kind"], meta.get("namespace", ""), meta["name"]))
    return out


def _example_settings(**knobs: str) -> Any:
    values = {"QUEUE_CONFIG": str(EXAMPLES / "queues.yaml"),
              "POD_TEMPLATE": str(EXAMPLES / "pod-templates" / "payload.yaml"),
              "ALLOWED_NAMESPACES": "osg-pilots", "DEFAULT_IMAGE": "busybox:1.36"}
    values.update(knobs)
    return settings_from_mapping(values, user="alice")


def test_examples_name_only_objects_deploy_defines() -> None:
    settings = _example_settings()
    templates = load_templates(settings.pod)
    defined = _defined()
    kinds = {"priorityclass": "PriorityClass", "secret": "Secret", "configmap": "ConfigMap",
             "localqueue": "LocalQueue"}
    named = set()
    for queue in ["", *templates.queues]:
        queue_pod = render_queue_pod(queue, settings, templates)
        assert queue_pod.pod is not None, queue_pod.error
        named.add(("Namespace", "", queue_pod.namespace))
        for kind, names in queue_pod.refs.items():
            ns = "" if kind == "priorityclass" else queue_pod.namespace
            named |= {(kinds[kind], ns, name) for name in names}
    assert ("PriorityClass", "", "pilots") in named          # the walk found the queue's refs
    assert ("Secret", "osg-pilots", "pilot-token") in named
    assert named - defined == set()


def test_applied_to_the_simulator_the_examples_pass_check(sim: Any, tmp_path: Path) -> None:
    sim.require_sim("creates fixed-name cluster-wide objects")
    settings = _example_settings(KUBECONFIG=sim.write_kubeconfig(str(tmp_path / "kc")),
                                 STATE_DIR=str(tmp_path / "state"))
    kube = Kube(api_client(settings.kube), settings.kube, retry_deadline=5)
    unserved: set[str] = set()
    plural = {"Namespace": "namespaces", "Secret": "secrets", "Role": "roles",
              "RoleBinding": "rolebindings", "PriorityClass": "priorityclasses",
              "ResourceFlavor": "resourceflavors", "ClusterQueue": "clusterqueues",
              "LocalQueue": "localqueues"}
    for _, doc in sorted(DOCS, key=lambda d: d[1]["kind"] != "Namespace"):
        group_version = doc["apiVersion"]
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        ns = doc["metadata"].get("namespace")
        path = f"{prefix}/namespaces/{ns}/{plural[doc['kind']]}" if ns else \
            f"{prefix}/{plural[doc['kind']]}"
        try:
            kube.request("POST", path, body=doc).read()
        except ApiException as exc:
            assert exc.status == 404, f"{doc['kind']} {doc['metadata']['name']}: {exc.body}"
            unserved.add(doc["kind"])
    assert "Namespace" not in unserved and "Secret" not in unserved
    results = check_cluster(settings, load_templates(settings.pod))
    failed = {r.check for r in results if r.status == FAIL}
    # what the simulator does not serve (RBAC objects are not needed: its admin may do anything)
    expected = set()
    if "PriorityClass" in unserved:
        expected |= {"priorityclass batch-gpu", "priorityclass pilots"}
    if "LocalQueue" in unserved:
        expected.add("localqueue pilots-local in osg-pilots")
    assert failed == expected, [r.as_dict() for r in results if r.status == FAIL]
