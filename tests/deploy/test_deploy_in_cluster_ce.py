"""deploy/ hangs together: the Job-mode Role is the pod-mode Role plus `jobs` and nothing else,
every binding names a Role and a subject that deploy/ defines, and the in-cluster CE example
(deploy/in-cluster-ce/) is a CE configuration HTCondor parses, whose knobs kgahp knows, whose
kgahp runs on the pod's ServiceAccount with a disruption policy fit for a default CE, and whose
queues render to pods the API server accepts in namespaces the ServiceAccount may use."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv

from kgahp.check_cluster import render_queue_pod
from kgahp.config import KNOBS, PREFIX, settings_from_mapping
from kgahp.kube.api import PERMISSIONS
from kgahp.podspec import load_templates

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CE = DEPLOY / "in-cluster-ce"
JOBS_RULE = {"apiGroups": ["batch"], "resources": ["jobs"],
             "verbs": ["create", "get", "list", "watch", "delete", "patch"]}
# knobs the CE example names that another change is adding to kgahp.config; once declared there,
# they are checked like every other knob (and this set should be emptied)
PENDING_KNOBS: set[str] = set()


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


ALL = [(p, d) for p in sorted(DEPLOY.rglob("*.yaml")) for d in _load(p)]


def _objects(kind: str, path: Path | None = None) -> list[dict[str, Any]]:
    return [d for p, d in ALL if d["kind"] == kind and (path is None or p == path)]


def _key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


DEFINED = {_key(d) for _, d in ALL}


# ----- RBAC ------------------------------------------------------------------------------------
def test_pod_mode_role_grants_exactly_the_core_rights_kgahp_uses() -> None:
    for role in _objects("Role", DEPLOY / "rbac.yaml"):
        granted = {(v, r) for rule in role["rules"] for v in rule["verbs"]
                   for r in rule["resources"]}
        wanted = {(verb, f"{res}/{sub}" if sub else res) for verb, res, sub in PERMISSIONS}
        assert wanted <= granted
        assert all(rule["apiGroups"] == [""] for rule in role["rules"])     # no jobs in pod mode


def test_job_mode_role_is_the_pod_mode_role_plus_jobs() -> None:
    pod_mode = {_key(r): r for r in _objects("Role", DEPLOY / "rbac.yaml")}
    job_mode = {_key(r): r for r in _objects("Role", DEPLOY / "rbac-job-mode.yaml")}
    assert set(job_mode) == set(pod_mode) and pod_mode
    for key, role in job_mode.items():
        assert role["rules"] == [*pod_mode[key]["rules"], JOBS_RULE], key
    bindings = {_key(b): b for b in _objects("RoleBinding", DEPLOY / "rbac.yaml")}
    assert {_key(b): b for b in _objects("RoleBinding", DEPLOY / "rbac-job-mode.yaml")} == bindings


def test_every_binding_names_a_role_and_subjects_deploy_defines() -> None:
    bindings = _objects("RoleBinding")
    assert len(bindings) >= 5
    for binding in bindings:
        ns = binding["metadata"]["namespace"]
        assert binding["roleRef"]["kind"] == "Role"
        assert ("Role", ns, binding["roleRef"]["name"]) in DEFINED, binding["metadata"]
        assert ("Namespace", "", ns) in DEFINED or ns == "default"
        for subject in binding["subjects"]:
            if subject["kind"] == "ServiceAccount":
                assert ("ServiceAccount", subject["namespace"], subject["name"]) in DEFINED


# ----- the in-cluster CE: objects -------------------------------------------------------------
def _statefulset() -> dict[str, Any]:
    (sts,) = _objects("StatefulSet", CE / "statefulset.yaml")
    return sts


def test_statefulset_uses_objects_the_example_defines() -> None:
    sts = _statefulset()
    ns = sts["metadata"]["namespace"]
    pod = sts["spec"]["template"]
    assert ("ServiceAccount", ns, pod["spec"]["serviceAccountName"]) in DEFINED
    assert pod["spec"].get("automountServiceAccountToken") is not False
    for volume in pod["spec"]["volumes"]:
        if "configMap" in volume:
            assert ("ConfigMap", ns, volume["configMap"]["name"]) in DEFINED
    labels = pod["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = {s["metadata"]["name"]: s for s in _objects("Service", CE / "statefulset.yaml")}
    assert services[sts["spec"]["serviceName"]]["spec"]["clusterIP"] == "None"
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["replicas"] == 1
    assert ("Namespace", "", ns) in DEFINED


def _mounts(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """mountPath -> (volume, subPath)."""
    return {m["mountPath"]: (m["name"], m.get("subPath", "")) for m in container["volumeMounts"]}


# ----- the in-cluster CE: its configuration, read by HTCondor itself -------------------------
def _configmap(name: str) -> dict[str, str]:
    (cm,) = [d for d in _objects("ConfigMap", CE / "config.yaml") if d["metadata"]["name"] == name]
    return dict(cm["data"])


_DUMP = """
import json, htcondor2
p = htcondor2.param
print(json.dumps({k: p[k] for k in p.keys()
                  if k.startswith("KGAHP_") or k in ("KUBERNETES_GAHP", "ENABLE_JOB_RETRIES",
                                                     "JOB_ROUTER_ROUTE_NAMES")
                  or k.startswith("JOB_ROUTER_ROUTE_")}))
"""


@pytest.fixture(scope="module")
def ce_config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The CE's config.d file as HTCondor's own parser reads it (a separate process, so this
    process's HTCondor configuration is untouched)."""
    (key, text), = _configmap("htcondor-ce-kgahp").items()
    assert key.endswith(".conf")
    conf = tmp_path_factory.mktemp("ce") / key
    conf.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    env["CONDOR_CONFIG"] = str(conf)
    out = subprocess.run([sys.executable, "-c", _DUMP], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_route_sends_jobs_to_kgahp_as_the_example_route_does(ce_config: dict[str, str]) -> None:
    assert ce_config["JOB_ROUTER_ROUTE_NAMES"] == "Kubernetes"
    route = [line.split("#")[0].strip() for line in
             ce_config["JOB_ROUTER_ROUTE_Kubernetes"].splitlines()]
    assert 'GridResource = "batch kubernetes"' in route and "TargetUniverse = 9" in route
    example = (REPO / "examples" / "ce" / "50-kubernetes-route.conf").read_text()
    body = example.split("@=jrt", 1)[1].split("@jrt", 1)[0]
    assert [x for x in route if x] == [line.split("#")[0].strip() for line in body.splitlines()
                                       if line.split("#")[0].strip()]


def test_kgahp_is_where_the_init_container_installs_it(ce_config: dict[str, str]) -> None:
    sts = _statefulset()
    (init,) = sts["spec"]["template"]["spec"]["initContainers"]
    (ce,) = sts["spec"]["template"]["spec"]["containers"]
    gahp = ce_config["KUBERNETES_GAHP"]
    venv = os.path.dirname(os.path.dirname(gahp))
    assert gahp == f"{venv}/bin/kgahp"
    assert f"python3 -m venv {venv}" in init["command"][-1]
    assert _mounts(init)[venv] == _mounts(ce)[venv] == ("kgahp", "")
    assert init["image"] == ce["image"]           # the venv is built with the CE's own Python


def test_kgahp_uses_the_serviceaccount_and_a_policy_fit_for_a_default_ce(
        ce_config: dict[str, str]) -> None:
    assert ce_config["KGAHP_KUBECONFIG"] == "in-cluster"
    # HTCondor-CE's default: an incoming job whose routed job returns to Idle is removed, so a
    # transparent re-creation would only make a pod the CE deletes again
    assert ce_config["ENABLE_JOB_RETRIES"].lower() == "false"
    assert ce_config["KGAHP_DISRUPTION_POLICY"] in ("hold", "remove")


def test_every_knob_the_ce_sets_is_one_kgahp_declares(ce_config: dict[str, str]) -> None:
    declared = {k.name for k in KNOBS}
    used = {k[len(PREFIX):] for k in ce_config if k.startswith(PREFIX)}
    assert len(used) >= 10
    assert used - declared <= PENDING_KNOBS, used - declared
    for knob in PENDING_KNOBS & declared:        # landed: its value must be one it accepts
        spec = next(k for k in KNOBS if k.name == knob)
        assert not spec.choices or ce_config[PREFIX + knob] in spec.choices


def test_each_account_keeps_its_job_store_on_the_pods_volume(ce_config: dict[str, str]) -> None:
    state = ce_config["KGAHP_STATE_DIR"]
    assert state.endswith("/" + getpass.getuser())    # $(USERNAME): one directory per account
    (ce,) = _statefulset()["spec"]["template"]["spec"]["containers"]
    parent = os.path.dirname(state)
    volume, _ = _mounts(ce)[parent]
    claims = {c["metadata"]["name"] for c in _statefulset()["spec"]["volumeClaimTemplates"]}
    assert volume in claims


def _settings(ce_config: dict[str, str], tmp: Path) -> Any:
    """kgahp's settings from the CE's knobs, the ConfigMap's files placed where they point."""
    mount = "/etc/kgahp"
    for name, text in _configmap("kgahp-templates").items():
        (tmp / name).write_text(text)
    values = {k[len(PREFIX):]: v.replace(mount, str(tmp))
              for k, v in ce_config.items()
              if k.startswith(PREFIX) and k[len(PREFIX):] not in PENDING_KNOBS}
    values["STATE_DIR"] = str(tmp / "state")
    return settings_from_mapping(values, user="osg01")


def test_templates_are_mounted_where_the_knobs_point(ce_config: dict[str, str]) -> None:
    (ce,) = _statefulset()["spec"]["template"]["spec"]["containers"]
    for knob in ("KGAHP_POD_TEMPLATE", "KGAHP_QUEUE_CONFIG"):
        directory, name = os.path.split(ce_config[knob])
        volume, _ = _mounts(ce)[directory]
        (cm,) = [v["configMap"]["name"] for v in _statefulset()["spec"]["template"]["spec"][
            "volumes"] if v["name"] == volume]
        assert name in _configmap(cm), knob


def test_the_templates_are_the_examples() -> None:
    files = _configmap("kgahp-templates")
    examples = REPO / "examples" / "pod-templates"
    for name in ("payload.yaml", "pilot.yaml"):
        assert yaml.safe_load(files[name]) == yaml.safe_load((examples / name).read_text()), name


def test_queues_render_to_pods_the_api_accepts_where_the_ce_may_create_them(
        ce_config: dict[str, str], tmp_path: Path) -> None:
    settings = _settings(ce_config, tmp_path)
    templates = load_templates(settings.pod)
    assert set(templates.queues) == {"pilots"}
    (sa,) = _objects("ServiceAccount", CE / "serviceaccount.yaml")
    bound = {b["metadata"]["namespace"] for b in _objects("RoleBinding")
             if any(s["kind"] == "ServiceAccount" and s["name"] == sa["metadata"]["name"]
                    and s["namespace"] == sa["metadata"]["namespace"] for s in b["subjects"])}
    assert set(settings.kube.namespaces) <= bound
    kinds = {"priorityclass": "PriorityClass", "secret": "Secret", "configmap": "ConfigMap",
             "localqueue": "LocalQueue"}
    for queue in ["", *templates.queues]:
        rendered = render_queue_pod(queue, settings, templates)
        assert rendered.pod is not None, rendered.error
        assert rendered.namespace in bound
        kv.validate(rendered.pod, kv.latest_version(), strict=True)
        for kind, names in rendered.refs.items():
            ns = "" if kind == "priorityclass" else rendered.namespace
            for name in names:
                if not name.endswith("-input"):         # the per-job Secret kgahp creates
                    assert (kinds[kind], ns, name) in DEFINED, (kind, name)
