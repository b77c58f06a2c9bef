"""deploy/ beyond its schemas (tests/deploy validates those): the Role grants what kgahp uses,
examples/queues.yaml names nothing deploy/ lacks, and applied to the simulator the objects make
`kgahp check` pass for the examples where the simulator can tell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def _documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.name, doc))
    return out


DOCS = _documents()


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
