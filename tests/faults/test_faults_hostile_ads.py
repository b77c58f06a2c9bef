"""Hostile job ads: a job ad is user input crossing into the admin's Kubernetes credentials.

Whatever the ad says, the submit path (parse → policy → pod → sandbox → final guard) either
refuses it with a one-sentence KgahpError or produces a pod within policy: in an allowed
namespace, no privileged or escalating container, no added capability, no hostPath, no host
namespaces, no service account, an allowed image, and the job's strings passed as data (never
interpreted by a shell or a YAML parser). Even with an admin who lets BatchExtraSubmitArgs set
volumes, containers and securityContext, only the admin's template can grant privilege.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any, Callable, Optional

import classad2
import pytest
from harness import Gahp, all_pods, fuzz_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kgahp import sandbox
from kgahp.config import Settings, settings_from_mapping
from kgahp.errors import KgahpError, TransferError
from kgahp.jobad import parse_submit_ad
from kgahp.model import JobRequest
from kgahp.podspec import build, load_templates, policy
from kgahp_sim.runtime import expand_env_references

KNOBS = {
    "DEFAULT_IMAGE": "busybox:1.36",
    "ALLOWED_IMAGES": "busybox*,sim.invalid/*,python:3*",
    "ALLOWED_NAMESPACES": "default,jobs",
    # a careless admin: the final guard must still hold
    "EXTRA_ARGS_FIELDS": "nodeSelector,tolerations,volumes,securityContext,containers,"
                         "initContainers,hostNetwork,serviceAccountName",
    "TRANSFER_MODE": "none",
}
SETTINGS = settings_from_mapping(KNOBS)
TEMPLATES = load_templates(SETTINGS.pod)

HOSTILE_PATCHES = [
    '{"hostNetwork": true}', '{"hostPID": true}', '{"hostIPC": true}',
    '{"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}',
    '{"volumes": [{"name": "kgahp-creds", "hostPath": {"path": "/etc"}}]}',
    '{"securityContext": {"runAsUser": 0}}',
    '{"containers": [{"name": "job", "securityContext": {"privileged": true}}]}',
    '{"containers": [{"name": "job", "securityContext": {"allowPrivilegeEscalation": true}}]}',
    '{"containers": [{"name": "job", "securityContext":'
    ' {"capabilities": {"add": ["SYS_ADMIN"]}}}]}',
    '{"containers": [{"name": "evil", "image": "busybox:1.36",'
    ' "securityContext": {"privileged": true}}]}',
    '{"containers": [{"name": "evil", "image": "evil.example/root:1"}]}',
    '{"initContainers": [{"name": "i", "image": "busybox:1.36",'
    ' "securityContext": {"privileged": true}}]}',
    '{"containers": [{"name": "job", "volumeMounts": [{"name": "x", "mountPath": "/host"}]}],'
    ' "volumes": [{"name": "x", "hostPath": {"path": "/"}}]}',
    '{"serviceAccountName": "cluster-admin"}', '{"automountServiceAccountToken": true}',
    '{"metadata": {"namespace": "kube-system"}}', '{"nodeName": "sim-node-1"}',
    "nodeSelector: &a [*a, *a]", "a: &x [1]\nb: *x",
    '!!python/object/apply:os.system ["touch /tmp/kgahp-pwned"]',
    "nodeSelector: !!binary aGVsbG8=", "{nodeSelector: {a: 2001-01-01}}",
    '{"nodeSelector": {"kubernetes.io/hostname": "sim-node-1"}}', "- a\n- b", "null", "",
    '{"tolerations": [{"operator": "Exists"}]}', "{" * 500,
]
METACHARACTERS = [
    "; rm -rf /", "$(id)", "`id`", "$HOME", "${IFS}", "a\nb", "a\rb", "\\", "'", '"', "{{x}}",
    "a: b", "- x", "&a", "*a", "!!python/object:os.system", '{"a": 1}', "</script>", "\u202e",
    "é☃𝄞", "\x7f", "%s%n", "../../etc/passwd", "x" * 5000,
]
NAMESPACES = ["kube-system", "default", "jobs", "Default", "kube-system ", "../default",
              "a" * 64, "", "default\n", "jobs;kube-system"]
ATTRIBUTES = ["KubernetesImage", "K8sImage", "k8s_image", "KubernetesNamespace", "K8sNamespace",
              "k8s_namespace", "BatchExtraSubmitArgs", "Arguments", "Args", "Environment",
              "Env", "EnvDelim", "Cmd", "Iwd", "Out", "Err", "In", "TransferInput",
              "TransferOutput", "TransferOutputRemaps", "x509userproxy", "RequestCpus",
              "RequestMemory", "RequestDisk", "GPUNumber", "GPUModel", "BatchRuntime", "Queue",
              "WholeNodes", "JobDirectory", "CERequirements", "StageCmd",
              # what a user might hope +remote_<X> reaches
              "hostNetwork", "privileged", "serviceAccountName", "Namespace", "HostPath",
              "securityContext", "PodTemplate", "Volumes"]

strings = st.one_of(
    st.sampled_from(HOSTILE_PATCHES + METACHARACTERS + NAMESPACES),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60),
    st.integers(2_000, 14_000).map(lambda n: "ab{}[]:-\n " * n),
)
values = st.one_of(
    strings.map(classad2.quote),
    st.integers(-(2 ** 64), 2 ** 64).map(str),
    st.floats().map(lambda x: f'real("{x}")'),
    st.sampled_from(["true", "false", "undefined", "error", "{ 1, \"a\" }", "[ a = 1 ]",
                     "1 / 0", "RequestCpus * 1000", 'strcat("kube-", "system")',
                     "ifThenElse(true, \"kube-system\", \"default\")"]),
)
BASE = {"JobDirectory": '"hostile.0"', "Cmd": '"/bin/true"', "Iwd": '"/w"',
        "StageCmd": "false", "RequestMemory": "64"}


def ad_text(overrides: dict[str, str]) -> str:
    attrs = {**BASE, **overrides}
    return "[ " + "; ".join(f"{k} = {v}" for k, v in attrs.items()) + " ]"


def submit_pipeline(text: str, cfg: Settings = SETTINGS) -> tuple[JobRequest, dict[str, Any]]:
    """What Service._create_attempt does before its first API call (no I/O)."""
    req = parse_submit_ad(text)
    policy.check(req, cfg, TEMPLATES)
    pod = build.build_pod(req, cfg, TEMPLATES, attempt=0)
    proxy = f"{pod['metadata']['name']}-proxy" if req.x509userproxy else None
    sandbox.decorate_pod(pod, req, cfg.transfer, proxy_secret=proxy)
    policy.verify_pod(pod, TEMPLATES, cfg)
    return req, pod


def assert_within_policy(pod: dict[str, Any], cfg: Settings = SETTINGS,
                         admitted: bool = False) -> None:
    """`admitted`: the pod as the API server holds it (it fills in the namespace's default
    service account, and the scheduler a node)."""
    meta, spec = pod["metadata"], pod["spec"]
    assert meta.get("namespace") in cfg.kube.namespaces, meta.get("namespace")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key), key
    for key in ("serviceAccountName", "serviceAccount"):
        assert spec.get(key) in ((None, "default") if admitted else (None,)), key
    if not admitted:
        assert not spec.get("nodeName")
    assert spec.get("automountServiceAccountToken") in (None, False)
    assert spec.get("hostUsers") in (None, True)
    for volume in spec.get("volumes") or []:
        assert "hostPath" not in volume, volume
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or []:
            context = container.get("securityContext") or {}
            assert not context.get("privileged"), container
            assert not context.get("allowPrivilegeEscalation"), container
            assert not (context.get("capabilities") or {}).get("add"), container
            image = container.get("image", "")
            allowed = (*cfg.pod.allowed_images, cfg.transfer.helper_image)
            assert any(fnmatch.fnmatchcase(image, p) for p in allowed), image
    json.dumps(pod, allow_nan=False)


def assert_refused_or_safe(text: str) -> Optional[dict[str, Any]]:
    try:
        req, pod = submit_pipeline(text)
    except KgahpError as exc:
        message = str(exc)
        # one line the gridmanager can show as a HoldReason (it keeps the first 1023 bytes)
        assert message and "Traceback (most recent" not in message and "\n" not in message
        return None
    assert_within_policy(pod)
    job = build.main_container(pod)
    # data, never re-parsed: what the kubelet hands the process is exactly the job's text
    expanded: dict[str, str] = {}
    for entry in job.get("env") or []:
        expanded[entry["name"]] = expand_env_references(entry.get("value", ""), expanded)
    assert [expand_env_references(a, expanded) for a in job.get("args", [])] == \
        list(req.arguments)
    for name, value in req.environment:
        assert expanded.get(name) == value
    return pod


@settings(max_examples=fuzz_examples(150), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(ATTRIBUTES), values, max_size=6))
def test_fuzzed_ads_are_refused_or_within_policy(overrides: dict[str, str]) -> None:
    assert_refused_or_safe(ad_text(overrides))


@settings(max_examples=fuzz_examples(100), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(ATTRIBUTES), values, max_size=4),
       st.lists(st.tuples(st.integers(0, 400), st.sampled_from(list("[];=\"\\{}\n\x00 ")))))
def test_syntax_broken_ads_are_refused_or_within_policy(overrides: dict[str, str],
                                                        edits: list[tuple[int, str]]) -> None:
    text = ad_text(overrides)
    for position, char in edits:
        text = text[:position] + char + text[position + 1:]
    assert_refused_or_safe(text)


@pytest.mark.parametrize("patch", HOSTILE_PATCHES)
def test_extra_submit_args_cannot_widen_policy(patch: str) -> None:
    pod = assert_refused_or_safe(ad_text({"BatchExtraSubmitArgs": classad2.quote(patch)}))
    assert not os.path.exists("/tmp/kgahp-pwned")
    if pod is not None:   # only harmless fields got through
        assert "evil" not in json.dumps(pod)


@pytest.mark.parametrize("namespace", NAMESPACES)
@pytest.mark.parametrize("attribute", ["KubernetesNamespace", "K8sNamespace", "k8s_namespace"])
def test_no_namespace_outside_the_allowed_ones(attribute: str, namespace: str) -> None:
    pod = assert_refused_or_safe(ad_text({attribute: classad2.quote(namespace)}))
    if pod is not None:
        assert pod["metadata"]["namespace"] in ("default", "jobs")


def test_namespace_through_cerequirements_is_policed() -> None:
    text = ad_text({"CERequirements": 'KubernetesNamespace == "kube-system" && CondorCE == 1'})
    assert assert_refused_or_safe(text) is None


@pytest.mark.parametrize("value", METACHARACTERS)
def test_metacharacters_in_image_env_and_args_stay_data(value: str) -> None:
    for attribute in ("KubernetesImage", "Arguments", "Environment"):
        literal = (f"X={value}" if attribute == "Environment" else
                   "'" + value.replace("'", "''") + "'" if attribute == "Arguments" else value)
        pod = assert_refused_or_safe(ad_text({attribute: classad2.quote(literal)}))
        if pod is not None and attribute == "KubernetesImage":
            assert build.main_container(pod)["image"] == value


# ---- output remaps that try to leave Iwd (the production extraction, real files)

ESCAPES = ["../escaped", "../../escaped", "sub/../../escaped", "/etc/kgahp-escaped",
           "link/escaped", "link", "./../escaped", "..", "/"]


@pytest.mark.parametrize("dest", ESCAPES)
def test_output_remap_cannot_escape_iwd(tmp_path: Path, dest: str) -> None:
    iwd = tmp_path / "iwd"
    outside = tmp_path / "outside"
    (iwd / "sub").mkdir(parents=True)
    outside.mkdir()
    (iwd / "link").symlink_to(outside)
    if dest.startswith("/etc"):
        dest = str(outside / "escaped")          # absolute, outside Iwd, writable
    text = ad_text({"Iwd": classad2.quote(str(iwd)), "TransferOutput": '"result"',
                    "TransferOutputRemaps": classad2.quote(f"result={dest}")})
    req = parse_submit_ad(text)
    frame = sandbox.make_frame({"result": b"payload"})
    transfer = settings_from_mapping({**KNOBS, "TRANSFER_MODE": "api"}).transfer
    with pytest.raises(TransferError) as err:
        sandbox.extract_outputs(frame, req, transfer)
    assert str(err.value)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escaped").exists()


# ---- the same abuse through the real executable: refused or held, nothing out of policy

ABUSE_ADS: list[dict[str, object]] = [
    {"KubernetesNamespace": "kube-system"},
    {"KubernetesNamespace": "default", "BatchExtraSubmitArgs": HOSTILE_PATCHES[3]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[6]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[9]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[13]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[0]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[19]},
    {"BatchExtraSubmitArgs": HOSTILE_PATCHES[18]},
    {"KubernetesImage": "evil.example/miner:latest"},
    {"KubernetesImage": "busybox:1.36; rm -rf /"},
    {"KubernetesImage": "sim.invalid/ok:100ms", "Arguments": "'$(id)' '`id`' '; rm -rf /'",
     "Environment": "A=$(id) B='; echo pwned'"},
    {"KubernetesImage": "sim.invalid/ok:100ms", "hostNetwork": True, "privileged": True,
     "serviceAccountName": "cluster-admin", "Namespace": "kube-system"},
    {"RequestCpus": 10 ** 9}, {"RequestMemory": -5}, {"GPUNumber": 10 ** 7},
    {"KubernetesImage": "x" * 100_000}, {"JobDirectory": "é☃" * 3000},
    {"Environment": "=" * 20}, {"Cmd": 42},
]


@pytest.mark.timeout(120)
def test_abuse_through_the_real_executable(make_gahp: Callable[..., Gahp], fsim: Any) -> None:
    gahp = make_gahp(**{k: v for k, v in KNOBS.items() if k != "ALLOWED_NAMESPACES"})
    outcomes = []
    for i, attrs in enumerate(ABUSE_ADS):
        attrs = {"KubernetesImage": "sim.invalid/sleep", **attrs}
        code, msg, job_id = gahp.driver.submit(gahp.ad(f"abuse_{i}.0", **attrs))
        assert msg and "Internal kgahp error" not in msg, (attrs, msg)
        outcomes.append(code)
        if code != 0:
            assert job_id in ("N/A", "NULL"), job_id
    assert outcomes.count(0) >= 2 and outcomes.count(1) >= 10, outcomes
    for pod in all_pods(fsim):
        if pod["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") != "kgahp":
            continue
        assert_within_policy(pod, _EXECUTABLE_SETTINGS, admitted=True)
    assert not any(p["metadata"]["namespace"] == "kube-system" for p in all_pods(fsim)
                   if "abuse" in json.dumps(p))
    assert gahp.driver.ping() == (0, "No error")


@settings(max_examples=fuzz_examples(25), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(overrides=st.dictionaries(st.sampled_from(ATTRIBUTES), values, max_size=5))
def test_fuzzed_ads_through_the_real_executable(make_gahp: Callable[..., Gahp], fsim: Any,
                                               overrides: dict[str, str]) -> None:
    gahp = _shared_gahp(make_gahp)
    # a fresh JobDirectory each time (unless fuzzed): a live pod would just be adopted
    _EXAMPLES.append(1)
    text = ad_text({"KubernetesImage": '"sim.invalid/sleep"',
                    "JobDirectory": classad2.quote(f"hostile_{len(_EXAMPLES)}.0"), **overrides})
    code, msg, _job_id = gahp.driver.submit(text)
    assert msg and "Internal kgahp error" not in msg
    expected_ok = True
    try:
        submit_pipeline(text, _EXECUTABLE_SETTINGS)
    except KgahpError:
        expected_ok = False
    if code == 0 and "JobDirectory" not in overrides:   # a repeated one is adopted
        assert expected_ok, msg
    for pod in gahp.pods():
        assert_within_policy(pod, _EXECUTABLE_SETTINGS, admitted=True)


_EXECUTABLE_SETTINGS = settings_from_mapping(
    {k: v for k, v in KNOBS.items() if k != "ALLOWED_NAMESPACES"})
_GAHPS: dict[int, Gahp] = {}
_EXAMPLES: list[int] = []


def _shared_gahp(make_gahp: Callable[..., Gahp]) -> Gahp:
    """One GAHP for all hypothesis examples of a test (starting one per example is slow)."""
    key = id(make_gahp)
    if key not in _GAHPS:
        _GAHPS.clear()
        _GAHPS[key] = make_gahp(**{k: v for k, v in KNOBS.items()
                                   if k != "ALLOWED_NAMESPACES"})
    return _GAHPS[key]


# ---- what the container really receives: Kubernetes expands $(VAR) in command, args and env

def test_dollar_references_in_arguments_and_environment_stay_literal() -> None:
    from kgahp_sim.runtime import expand_env_references

    text = ad_text({"Arguments": classad2.quote("'$(HOME)' 'cost $$5' '$(X)'"),
                    "Environment": classad2.quote("X=$(HOME) HOME=/home/job")})
    req, pod = submit_pipeline(text)
    job = build.main_container(pod)
    env = {e["name"]: e["value"] for e in job["env"]}
    # the kubelet expands env values in order, then args against the result
    expanded_env: dict[str, str] = {}
    for name, value in env.items():
        expanded_env[name] = expand_env_references(value, expanded_env)
    received = [expand_env_references(a, expanded_env) for a in job["args"]]
    assert received == list(req.arguments)
    assert expanded_env["X"] == "$(HOME)"
