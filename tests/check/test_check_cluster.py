"""`kgahp check`'s cluster checks against the simulator (or KGAHP_TEST_KUBECONFIG's cluster):
identity, RBAC, namespaces, the dry run of each queue's pod, named objects, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client.rest import ApiException

from kgahp.check_cluster import (
    check_dry_run,
    check_namespace,
    check_object,
    check_rbac,
    connect,
    pod_security_rules,
    references,
    render_queue_pod,
)
from kgahp.check_local import FAIL, INFO, OK, WARN
from kgahp.config import Settings, settings_from_mapping
from kgahp.errors import ApiError
from kgahp.kube.api import PERMISSIONS, Kube, _warning_text
from kgahp.kube.jobs import JOB_PERMISSIONS
from kgahp.podspec import Templates, templates_from_data
from kgahp.podspec.templates import DEFAULT_BASE, parse_queue_config

REPO = Path(__file__).resolve().parents[2]


def _settings(kubeconfig: str, **knobs: str) -> Settings:
    values = {"KUBECONFIG": kubeconfig, "DEFAULT_IMAGE": "busybox:1.36"}
    values.update(knobs)
    return settings_from_mapping(values, user="alice")


def _kube(settings: Settings) -> Kube:
    kube, results = connect(settings)
    assert kube is not None, results
    return kube


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _create(kube: Kube, path: str, body: dict[str, Any]) -> dict:
    return kube._json(kube.request("POST", path, body=body))


def _namespace(kube: Kube, name: str, labels: dict[str, str] | None = None) -> str:
    _create(kube, "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace",
             "metadata": {"name": name, "labels": labels or {}}})
    return name


def test_connect_reports_server_and_identity(sim: Any, tmp_path: Path) -> None:
    kube, [result] = connect(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    assert kube is not None and result.status == OK
    assert result.data["user"] and result.data["version"].startswith("v1.")


def test_connect_with_a_wrong_token_fails(sim: Any, tmp_path: Path) -> None:
    config = yaml.safe_load(Path(sim.write_kubeconfig(str(tmp_path / "kc"))).read_text())
    for user in config["users"]:
        user["user"] = {"token": "not-a-valid-token"}
    path = tmp_path / "wrong-token"          # a copy: on a real cluster `kc` is its kubeconfig
    path.write_text(yaml.safe_dump(config))
    kube, [result] = connect(_settings(str(path)))
    assert kube is None and result.status == FAIL
    assert "401" in result.detail or "Unauthorized" in result.detail
    assert "credentials" in result.fix


def test_connect_without_a_kubeconfig_fails(tmp_path: Path) -> None:
    kube, [result] = connect(_settings(str(tmp_path / "missing")))
    assert kube is None and result.status == FAIL and "does not exist" in result.detail


def test_rbac_granted_and_denied(sim: Any, tmp_path: Path) -> None:
    admin = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    assert check_rbac(admin, "default").status == OK
    restricted = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc2"), restricted=True)))
    result = check_rbac(restricted, "default")
    assert result.status == FAIL
    assert result.data["denied"][0] == "create pods"
    assert "get pods/log" in result.data["denied"]
    assert len(result.data["denied"]) == len(PERMISSIONS)
    assert "RoleBinding" in result.fix
    # job mode (some queue makes batch/v1 Jobs): the Jobs' verbs are asked for too
    assert check_rbac(admin, "default", job_mode=True).detail == \
        f"all {len(PERMISSIONS) + len(JOB_PERMISSIONS)} permissions kgahp uses are granted"
    job_mode = check_rbac(restricted, "default", job_mode=True)
    assert "create jobs" in job_mode.data["denied"] and "watch jobs" in job_mode.data["denied"]
    assert "create jobs" not in result.data["denied"]


def test_namespace_exists_with_its_pod_security_labels(sim: Any, tmp_path: Path) -> None:
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    name = _namespace(kube, _unique("chk"),
                      {"pod-security.kubernetes.io/enforce": "restricted"})
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")), NAMESPACE=name)
    result = check_namespace(kube, name, settings)
    assert result.status == OK and "enforce=restricted" in result.detail
    missing = _unique("absent")
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")), NAMESPACE=missing)
    result = check_namespace(kube, missing, settings)
    assert result.status == FAIL and result.detail == "does not exist"


def test_queue_namespace_outside_the_allowed_list_fails(sim: Any, tmp_path: Path) -> None:
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")))
    result = check_namespace(_kube(settings), "osg-pilots", settings)
    assert result.status == FAIL and "KGAHP_ALLOWED_NAMESPACES" in result.fix


def test_namespace_unreadable_is_not_a_failure(sim: Any, tmp_path: Path) -> None:
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc"), restricted=True))
    assert check_namespace(_kube(settings), "default", settings).status == INFO


def _queues(data: dict[str, Any], tmp_path: Path) -> Templates:
    return templates_from_data(DEFAULT_BASE,
                               parse_queue_config({"queues": data}, str(tmp_path / "q.yaml")))


def test_dry_run_admits_the_default_pod(sim: Any, tmp_path: Path) -> None:
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")))
    queue_pod = render_queue_pod("", settings, _queues({}, tmp_path))
    assert queue_pod.pod is not None, queue_pod.error
    # the pod is the one a submit makes: the stage-in helper and the input Secret are in it
    assert [c["name"] for c in queue_pod.pod["spec"]["initContainers"]] == ["kgahp-stage-in"]
    result = check_dry_run(_kube(settings), queue_pod)
    assert result.status == OK and "default" in result.detail
    pods, _ = _kube(settings).list_pods("default", "")
    assert pods == []     # a dry run creates nothing


def test_dry_run_refusal_is_reported_with_the_servers_message(sim: Any,
                                                              tmp_path: Path) -> None:
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")))
    templates = _queues({"odd": {"template": {"spec": {"volumes": [
        {"name": "Bad_Volume", "emptyDir": {}}]}}}}, tmp_path)
    queue_pod = render_queue_pod("odd", settings, templates)
    assert queue_pod.pod is not None, queue_pod.error
    result = check_dry_run(_kube(settings), queue_pod)
    assert result.status == FAIL
    assert "Bad_Volume" in result.detail and "namespace default refuses it" in result.detail


def test_dry_run_in_a_missing_namespace(sim: Any, tmp_path: Path) -> None:
    missing = _unique("absent")
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")), ALLOWED_NAMESPACES=missing)
    templates = _queues({"q": {"namespace": missing}}, tmp_path)
    result = check_dry_run(_kube(settings), render_queue_pod("q", settings, templates))
    assert result.status == FAIL and "not found" in result.detail
    assert missing in result.fix


def test_unbuildable_queue_pod_fails(sim: Any, tmp_path: Path) -> None:
    # every job that names no memory would be refused: the check says so before any job does
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")),
                         DEFAULT_MEMORY="4096", MAX_MEMORY="1024")
    queue_pod = render_queue_pod("", settings, _queues({}, tmp_path))
    result = check_dry_run(_kube(settings), queue_pod)
    assert queue_pod.pod is None and result.status == FAIL
    assert result.detail == ("kgahp cannot build this queue's pod: RequestMemory is not allowed: "
                             "at most 1024 MiB (asked for 4096)")


def test_dry_run_under_pod_security_restricted(sim: Any, tmp_path: Path) -> None:
    """Whatever the server's Pod Security admission says is what the check reports."""
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    name = _namespace(kube, _unique("psa"), {"pod-security.kubernetes.io/enforce": "restricted"})
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")), NAMESPACE=name)
    templates = _queues({"root": {"template": {"spec": {"hostNetwork": True}}}}, tmp_path)
    queue_pod = render_queue_pod("root", settings, templates)
    assert queue_pod.pod is not None, queue_pod.error
    result = check_dry_run(kube, queue_pod)
    if result.status == OK:
        pytest.skip("this API server runs no Pod Security admission")
    assert result.status == FAIL and "PodSecurity" in result.detail
    assert "host namespaces" in result.detail or "hostNetwork" in result.detail
    assert result.fix.startswith(f"the namespace {name} enforces Pod Security restricted")
    assert "host namespaces" in result.data["rules"]


def test_references_of_a_pod() -> None:
    pod = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "lq"}},
           "spec": {"priorityClassName": "pilots",
                    "imagePullSecrets": [{"name": "pull"}],
                    "volumes": [{"name": "t", "secret": {"secretName": "tok"}},
                                {"name": "o", "secret": {"secretName": "opt", "optional": True}},
                                {"name": "j", "secret": {"secretName": "kgahp-job-credentials"}},
                                {"name": "c", "configMap": {"name": "cm"}},
                                {"name": "p", "projected": {"sources": [
                                    {"configMap": {"name": "cm2"}}]}}],
                    "containers": [{"name": "job", "envFrom": [{"secretRef": {"name": "env"}}],
                                    "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {
                                        "name": "cm3", "key": "a"}}}]}]}}
    assert references(pod) == {"priorityclass": {"pilots"}, "secret": {"pull", "tok", "env"},
                               "configmap": {"cm", "cm2", "cm3"}, "localqueue": {"lq"}}


def test_named_objects_missing_then_present(sim: Any, tmp_path: Path) -> None:
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    secret, config_map = _unique("pilot-token"), _unique("site-config")
    for kind, name in (("secret", secret), ("configmap", config_map)):
        result = check_object(kube, kind, name, "default", None)
        assert result.status == FAIL and "does not exist" in result.detail
    _create(kube, "/api/v1/namespaces/default/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret},
             "stringData": {"token": "s3cr3t"}})
    _create(kube, "/api/v1/namespaces/default/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": config_map}})
    for kind, name in (("secret", secret), ("configmap", config_map)):
        result = check_object(kube, kind, name, "default", None)
        assert result.status == OK
        assert "s3cr3t" not in json.dumps(result.as_dict())


def test_secret_unreadable_by_the_job_owner_is_a_warning(sim: Any, tmp_path: Path) -> None:
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"), restricted=True)))
    result = check_object(kube, "secret", "pilot-token", "default", None)
    assert result.status == WARN and "may not read" in result.detail


def test_priority_class_missing_then_present(sim: Any, tmp_path: Path) -> None:
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    name = _unique("pilots")
    result = check_object(kube, "priorityclass", name, "", None)
    assert result.status == FAIL and "Priority admission" in result.fix
    try:
        _create(kube, "/apis/scheduling.k8s.io/v1/priorityclasses",
                {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                 "metadata": {"name": name}, "value": 1000})
    except ApiException as exc:
        if exc.status != 404:
            raise
        pytest.skip("this API server serves no PriorityClasses")
    assert check_object(kube, "priorityclass", name, "", None).status == OK


def test_local_queue_without_kueue(sim: Any, tmp_path: Path) -> None:
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    version = kube.preferred_version("kueue.x-k8s.io")
    if version is not None:
        pytest.skip("Kueue is installed on this cluster")
    result = check_object(kube, "localqueue", "pilots-local", "osg-pilots", version)
    assert result.status == FAIL and "Kueue is not installed" in result.detail


def test_dry_run_pod_returns_warning_headers(sim: Any, tmp_path: Path) -> None:
    """PodSecurity `warn` answers through Warning headers; the Kube method hands them back."""
    kube = _kube(_settings(sim.write_kubeconfig(str(tmp_path / "kc"))))
    name = _namespace(kube, _unique("warn"), {"pod-security.kubernetes.io/warn": "restricted"})
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "busybox"}]}}
    try:
        warnings = kube.dry_run_pod(name, pod)
    except ApiError as exc:
        pytest.fail(f"warn mode must not refuse: {exc}")
    if not warnings:
        pytest.skip("this API server runs no Pod Security admission")
    assert any("hostNetwork" in w or "host namespaces" in w for w in warnings)


# ---- the command --------------------------------------------------------------------------------
def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_")}
    full.update(env)
    return subprocess.run([sys.executable, "-m", "kgahp", "check", *args], env=full,
                          capture_output=True, text=True, timeout=120, check=False)


def test_cli_all_good_exits_zero(sim: Any, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    env = {"_CONDOR_KGAHP_KUBECONFIG": sim.write_kubeconfig(str(tmp_path / "kc")),
           "_CONDOR_KGAHP_STATE_DIR": str(state),
           "_CONDOR_KGAHP_LOG": str(tmp_path / "KGahpLog"),
           "_CONDOR_KGAHP_DEFAULT_IMAGE": "busybox:1.36"}
    done = _run([], env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].endswith("0 failed, 0 warnings")
    assert any(line.startswith("ok   rbac default:") for line in lines)
    assert any(line.startswith("ok   pod (no queue): namespace default admits it")
               for line in lines)
    assert "       KGAHP_DEFAULT_IMAGE = busybox:1.36  [environment]" in lines
    assert "       KGAHP_QPS = 20  [default]" in lines


def test_cli_json_with_the_examples_names_what_is_missing(sim: Any, tmp_path: Path) -> None:
    env = {"_CONDOR_KGAHP_KUBECONFIG": sim.write_kubeconfig(str(tmp_path / "kc")),
           "_CONDOR_KGAHP_STATE_DIR": str(tmp_path / "state"),
           "_CONDOR_KGAHP_QUEUE_CONFIG": str(REPO / "examples" / "queues.yaml"),
           "_CONDOR_KGAHP_POD_TEMPLATE": str(REPO / "examples" / "pod-templates" / "payload.yaml"),
           "_CONDOR_KGAHP_ALLOWED_NAMESPACES": "osg-pilots"}
    done = _run(["--json"], env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    failed = {c["check"] for c in report["checks"] if c["status"] == FAIL}
    assert "secret pilot-token in osg-pilots" in failed
    assert "pod pilots" in failed            # its namespace does not exist
    assert "localqueue pilots-local in osg-pilots" in failed
    assert all(c.get("fix") for c in report["checks"] if c["status"] == FAIL)


def test_cli_restricted_identity_fails_on_rbac(sim: Any, tmp_path: Path) -> None:
    env = {"_CONDOR_KGAHP_KUBECONFIG": sim.write_kubeconfig(str(tmp_path / "kc"),
                                                            restricted=True),
           "_CONDOR_KGAHP_STATE_DIR": str(tmp_path / "state")}
    done = _run([], env)
    assert done.returncode == 1
    assert any(line.startswith("FAIL rbac default: may not create pods")
               for line in done.stdout.splitlines()), done.stdout


def test_cli_unknown_user_is_a_usage_error() -> None:
    done = _run(["--user", "no-such-user-kgahp"], {})
    assert done.returncode == 2 and "no such user" in done.stderr


# ---- Pod Security messages, as a v1.36 API server words them (recordings 20*) ----------------
REC36 = REPO / "tests" / "data" / "k8s-recordings-v1.36"


def _recorded_response(name: str) -> dict[str, Any]:
    return dict(json.loads((REC36 / f"{name}.json").read_text())["response"])


def test_pod_security_rules_from_recorded_refusals() -> None:
    message = _recorded_response("20b2-restricted-plain-pod-dryrun-403")["body"]["message"]
    assert pod_security_rules(message) == ("restricted:latest", [
        "allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true",
        "seccompProfile"])
    message = _recorded_response("20f3-baseline-hostnetwork-hostpath-cap-403")["body"]["message"]
    assert pod_security_rules(message) == ("baseline:latest", [
        "non-default capabilities", "host namespaces", "hostPath volumes"])
    assert pod_security_rules('pods "x" is forbidden: exceeded quota: q') == ("", [])


def test_warning_header_from_recorded_warn_mode() -> None:
    header = _recorded_response("20e-warn-only-namespace-plain-pod-201-warning")["headers"][
        "Warning"]
    text = _warning_text(header)
    assert text.startswith('would violate PodSecurity "restricted:latest": ')
    assert pod_security_rules(text)[1][-1] == "seccompProfile"


def test_permissions_cover_every_namespaced_call_in_kube_api() -> None:
    """PERMISSIONS is what `kgahp check` asks about and what deploy/rbac.yaml grants: a call
    added to kgahp/kube/api.py without it would be found only by a held job."""
    import inspect
    import re as regex

    from kgahp.kube import api

    source = inspect.getsource(api.Kube)
    call = regex.compile(r'"(GET|POST|PUT|PATCH|DELETE)",\s*'
                         r'f"/api/v1/namespaces/\{_q\(namespace\)\}'
                         r'/(\w+)(/\{_q\(name\)\}(?:/(\w+))?)?"')
    used: set[tuple[str, str, str]] = set()
    for chunk in source.split("\n    def ")[1:]:
        function = chunk.split("(", 1)[0]
        named_path = regex.search(r'\bpath = (f"[^"]+")', chunk)
        if named_path:     # a path built once and sent as `path`
            literal = named_path.group(1).replace("\\", "\\\\")
            chunk = regex.sub(r'("(?:GET|POST|PUT|PATCH|DELETE)"), path\b',
                              rf"\1, {literal}", chunk)
        if function in ("exists", "dry_run_pod"):   # kgahp check's own reads and dry runs
            continue
        for resource in regex.findall(r'self\.list_all\(\s*f"/api/v1/namespaces/'
                                      r'\{_q\(namespace\)\}/(\w+)"', chunk):
            used.add(("list", resource, ""))     # the paged list of that collection
        for resource in regex.findall(r'self\.watch_all\(\s*f"/api/v1/namespaces/'
                                      r'\{_q\(namespace\)\}/(\w+)"', chunk):
            used.add(("watch", resource, ""))
        for method, resource, named, sub in call.findall(chunk):
            if method == "GET":
                verb = "get" if named else ("watch" if function.startswith("watch") else "list")
            elif method == "DELETE":
                verb = "delete" if named else "deletecollection"
            else:
                verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}[method]
            used.add((verb, resource, sub or ""))
    assert ("watch", "pods", "") in used and ("get", "pods", "log") in used   # the scan works
    assert used == set(PERMISSIONS)


@pytest.mark.parametrize("mode,knobs", [
    ("shared", {"TRANSFER_MODE": "shared", "SHARED_VOLUME": "pvc:jobs:/home"}),
    ("none", {"TRANSFER_MODE": "none"})])
def test_queue_pod_in_other_transfer_modes(mode: str, knobs: dict[str, str], sim: Any,
                                           tmp_path: Path) -> None:
    settings = _settings(sim.write_kubeconfig(str(tmp_path / "kc")), **knobs)
    queue_pod = render_queue_pod("", settings, _queues({}, tmp_path))
    assert queue_pod.pod is not None, queue_pod.error
    volumes = [v["name"] for v in queue_pod.pod["spec"].get("volumes") or []]
    assert ("kgahp-shared" in volumes) == (mode == "shared")
    assert check_dry_run(_kube(settings), queue_pod).status == OK
