from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from podspec_support import assert_valid_pod, job_container, plain_templates, request, settings

from kgahp.errors import JobAdError, PolicyError
from kgahp.podspec import build_pod, check, templates_from_data, verify_pod
from kgahp.podspec.names import ANN_QUEUE
from kgahp.podspec.templates import DEFAULT_BASE, QueueConfig

EXTRA = "nodeSelector,tolerations,volumes,containers,hostNetwork,serviceAccountName,affinity"
GPU_MODES = "shared:nvidia.com/gpu.shared exclusive_process:nvidia.com/gpu"
MIC = "intel.com/mic"


def build(fields: dict[str, Any] | None = None, templates: Any = None, **knobs: str) -> Any:
    pod = build_pod(request(**(fields or {})), settings(**knobs),
                    templates or plain_templates(), attempt=1)
    assert_valid_pod(pod)
    return pod


# --- check(): every rule, each naming the attribute and the rule
RULES: list[tuple[str, dict[str, Any], dict[str, str], str, str]] = [
    ("image not allowed", {"image": "evil.example.com/miner:1"},
     {"ALLOWED_IMAGES": "registry.example.org/*, python:*"}, "KubernetesImage",
     "KGAHP_ALLOWED_IMAGES"),
    ("namespace not allowed", {"namespace": "kube-system"}, {"ALLOWED_NAMESPACES": "team-a"},
     "KubernetesNamespace", "namespace must be one"),
    ("cpus above MAX_CPUS", {"cpus": 65, "cpus_explicit": True}, {}, "RequestCpus", "at most 64"),
    ("default cpus above MAX_CPUS", {}, {"DEFAULT_CPUS": "8", "MAX_CPUS": "4"}, "RequestCpus",
     "at most 4"),
    ("memory above MAX_MEMORY", {"memory_mib": 262145}, {}, "RequestMemory", "at most 262144"),
    ("gpus above MAX_GPUS", {"gpus": 9}, {}, "GPUNumber", "at most 8"),
    ("gpus when MAX_GPUS is 0", {"gpus": 1}, {"MAX_GPUS": "0"}, "GPUNumber", "at most 0"),
    ("GPUMode when the site maps none", {"gpus": 1, "gpu_mode": "shared"}, {}, "GPUMode",
     "this site offers no GPU modes (KGAHP_GPU_MODES is empty) (asked for 'shared'; "
     "leave GPUMode unset)"),
    ("GPUMode not mapped", {"gpus": 1, "gpu_mode": "turbo"}, {"GPU_MODES": GPU_MODES},
     "GPUMode", "'turbo' is not a GPU mode this site maps in KGAHP_GPU_MODES (choose one of "
     "exclusive_process, shared, or leave GPUMode unset)"),
    ("GPUMode cannot lift MAX_GPUS", {"gpus": 9, "gpu_mode": "shared"},
     {"GPU_MODES": GPU_MODES}, "GPUNumber", "at most 8"),
    ("MICNumber when the site has no MIC resource", {"mics": 1}, {}, "MICNumber",
     "this site offers no MIC (Xeon Phi) resource (KGAHP_MIC_RESOURCE is empty) "
     "(asked for 1)"),
    ("MICNumber above MAX_MICS", {"mics": 9}, {"MIC_RESOURCE": MIC}, "MICNumber",
     "at most 8 MIC cards (KGAHP_MAX_MICS)"),
    ("MICNumber when MAX_MICS is 0", {"mics": 1}, {"MIC_RESOURCE": MIC, "MAX_MICS": "0"},
     "MICNumber", "at most 0"),
    ("disk above MAX_DISK", {"disk_kib": 2048}, {"MAX_DISK": "1024"}, "RequestDisk",
     "at most 1024"),
    ("runtime above MAX_RUNTIME", {"runtime_seconds": 7201}, {"MAX_RUNTIME": "7200"},
     "BatchRuntime", "at most 7200"),
    ("whole node refused", {"whole_node": True}, {}, "WholeNodes", "whole-node"),
    ("extra args field not listed", {"extra_submit_args": '{"nodeName": "n1"}'},
     {"EXTRA_ARGS_FIELDS": "nodeSelector"}, "BatchExtraSubmitArgs", "nodeSelector"),
]


def kubelet_view(container: dict) -> tuple[list[str], list[str], dict[str, str]]:
    """(command, args, env) as the kubelet hands them to the process: Kubernetes expands
    $(VAR) and folds $$ in env values (in order), command and args."""
    from kgahp_sim.runtime import expand_env_references

    env: dict[str, str] = {}
    for entry in container.get("env") or []:
        env[entry["name"]] = expand_env_references(entry.get("value", ""), env)
    command = [expand_env_references(c, env) for c in container.get("command") or []]
    args = [expand_env_references(a, env) for a in container.get("args") or []]
    return command, args, env


@pytest.mark.parametrize(("fields", "knobs", "attribute", "rule"), [r[1:] for r in RULES],
                         ids=[r[0] for r in RULES])
def test_policy_rule(fields: dict[str, Any], knobs: dict[str, str], attribute: str,
                     rule: str) -> None:
    with pytest.raises(PolicyError) as caught:
        check(request(**fields), settings(**knobs), plain_templates())
    assert caught.value.attribute == attribute
    assert rule in str(caught.value)
    assert str(caught.value).startswith(f"{attribute} is not allowed: ")
    with pytest.raises(PolicyError):   # build_pod refuses the same request
        build(fields, **knobs)


@pytest.mark.parametrize(("fields", "knobs"), [
    ({"image": "registry.example.org/osg/pilot:1"}, {"ALLOWED_IMAGES": "registry.example.org/*"}),
    ({"cpus": 64, "cpus_explicit": True, "memory_mib": 262144, "gpus": 8}, {}),
    ({"gpus": 8, "gpu_mode": "shared", "mics": 8}, {"GPU_MODES": GPU_MODES, "MIC_RESOURCE": MIC}),
    ({"disk_kib": 10**9, "runtime_seconds": 10**7}, {}),   # MAX_DISK/MAX_RUNTIME 0 = no limit
    ({"cpus": 1000, "cpus_explicit": True}, {"MAX_CPUS": "0"}),
    ({"runtime_seconds": 7200}, {"MAX_RUNTIME": "7200"}),
    ({"whole_node": True}, {"WHOLE_NODE_CPUS": "128", "WHOLE_NODE_MEMORY": "500000"}),
    ({"namespace": "team-a"}, {"ALLOWED_NAMESPACES": "team-a,team-b"}),
])
def test_requests_at_the_limit_pass(fields: dict[str, Any], knobs: dict[str, str]) -> None:
    check(request(**fields), settings(**knobs), plain_templates())
    build(fields, **knobs)


def test_unknown_queue_is_refused_once_queues_are_configured() -> None:
    templates = templates_from_data(DEFAULT_BASE, {"gpu": QueueConfig()})
    with pytest.raises(PolicyError) as caught:
        check(request(queue="cpu"), settings(), templates)
    assert caught.value.attribute == "Queue"
    assert "gpu" in str(caught.value)
    check(request(queue="anything"), settings(), plain_templates())   # no queue config: a label


def test_a_queue_namespace_outside_the_allowed_list_is_refused() -> None:
    templates = templates_from_data(DEFAULT_BASE, {"q": QueueConfig(namespace="other")})
    with pytest.raises(PolicyError) as caught:
        check(request(queue="q"), settings(), templates)
    assert caught.value.attribute == "Queue"


# --- hostile values: data stays data, or is refused

HOSTILE_TEXT = [
    "$(rm -rf /)", "`id`", "a; reboot", "x\ny: 1", "key: value", "- item", "{\"a\": 1}",
    "'quoted' \"double\"", "#comment", "*glob*", "&anchor", "!!python/object:os.system",
    "line1\r\nline2", "tab\there", "ünïcödé ✓", "\\backslash\\", "",
]


@pytest.mark.parametrize("text", HOSTILE_TEXT)
def test_hostile_arguments_and_env_reach_the_manifest_verbatim(text: str) -> None:
    pod = build({"arguments": (text, "next"), "environment": (("VALUE", text),),
                 "cmd": text or "/x"})
    command, args, env = kubelet_view(job_container(pod))
    assert args == [text, "next"]
    assert env == {"VALUE": text}
    assert command == [text or "/x"]
    # and survive serialisation both ways the pod can travel
    assert yaml.safe_load(yaml.safe_dump(pod)) == pod
    assert json.loads(json.dumps(pod)) == pod


@hsettings(max_examples=80, deadline=None)
@given(args=st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00")), max_size=5),
       value=st.text(alphabet=st.characters(blacklist_characters="\x00")))
def test_any_argument_text_is_carried_verbatim(args: list[str], value: str) -> None:
    container = job_container(build({"arguments": tuple(args), "environment": (("V", value),)}))
    _, received_args, env = kubelet_view(container)
    assert received_args == args
    assert env == {"V": value}


@pytest.mark.parametrize(("fields", "message"), [
    ({"arguments": ("a\x00b",)}, "NUL"),
    ({"environment": (("V", "a\x00"),)}, "NUL"),
    ({"environment": (("BAD\tNAME", "x"),)}, "Environment variable name"),
    ({"environment": (("A=B", "x"),)}, "printable ASCII characters other than '='"),
    ({"environment": (("..", "x"),)}, "must not be '..'"),
    ({"environment": (("NAÏVE", "x"),)}, "Environment variable name"),
    ({"image": "Python:3.12"}, "not a valid image reference"),
    ({"image": "python:3.12 --privileged"}, "not a valid image reference"),
    ({"image": "python:3.12\n"}, "not a valid image reference"),
    ({"image": "python:3.12\x1b[0m"}, "not a valid image reference"),
    ({"image": "python:3.12;id"}, "not a valid image reference"),
    ({"image": "{\"a\": 1}"}, "not a valid image reference"),
    ({"gpu_model": "A100; rm -rf"}, "GPUModel"),
    ({"runtime_seconds": 2**31}, "BatchRuntime"),
    ({"cpus": float("nan"), "cpus_explicit": True}, "Resource request"),
])
def test_hostile_values_are_refused_with_a_sentence(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(JobAdError, match=message.replace("(", r"\(")):
        build(fields)


def test_a_gpu_model_against_the_modes_own_selector_is_refused_not_dropped() -> None:
    modes = "mig:nvidia.com/mig-1g.5gb:nvidia.com/gpu.product=A100"
    fields = {"gpus": 1, "gpu_mode": "mig", "gpu_model": "H100"}
    with pytest.raises(JobAdError) as caught:
        build(fields, GPU_MODES=modes)
    assert str(caught.value) == ("GPUModel 'H100' conflicts with GPUMode 'mig', which this "
                                 "site ties to nvidia.com/gpu.product=A100")
    pod = build({**fields, "gpu_model": "A100"}, GPU_MODES=modes)
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "A100"}


def test_the_gpu_modes_selector_wins_over_an_extra_args_patch() -> None:
    patch = '{"nodeSelector": {"nvidia.com/gpu.sharing-strategy": "none"}}'
    pod = build({"gpus": 1, "gpu_mode": "shared", "extra_submit_args": patch},
                GPU_MODES="shared:nvidia.com/gpu.shared:nvidia.com/gpu.sharing-strategy=mps",
                EXTRA_ARGS_FIELDS="nodeSelector")
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.sharing-strategy": "mps"}


@pytest.mark.parametrize("image", [
    "python:3.12", "busybox", "registry.example.org:5000/osg/pilot:v1.2-rc3",
    "ghcr.io/org/app@sha256:" + "a" * 64, "localhost/x/y_z__w", "[::1]:5000/a/b:c",
    "Registry.Example.ORG/lower/path:TAG_ok",
])
def test_valid_image_references_pass(image: str) -> None:
    assert job_container(build({"image": image}))["image"] == image


# --- BatchExtraSubmitArgs

def test_extra_args_are_ignored_when_the_knob_is_empty() -> None:
    pod = build({"extra_submit_args": '{"hostNetwork": true, "nodeName": "x"}'})
    assert "hostNetwork" not in pod["spec"] and "nodeName" not in pod["spec"]
    build({"extra_submit_args": "--foo=bar"})   # blahp-style text, as in the transcript


@pytest.mark.parametrize("text", [
    '{"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k", "operator": "Exists"}]}',
    "nodeSelector:\n  disk: ssd\ntolerations:\n- key: k\n  operator: Exists\n",
])
def test_extra_args_patch_the_listed_spec_fields(text: str) -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["tolerations"] = [{"key": "site", "operator": "Exists"}]
    pod = build({"extra_submit_args": text}, templates=templates_from_data(base, {}),
                EXTRA_ARGS_FIELDS="nodeSelector,tolerations")
    assert pod["spec"]["nodeSelector"] == {"disk": "ssd"}
    assert [t["key"] for t in pod["spec"]["tolerations"]] == ["site", "k"]


@pytest.mark.parametrize(("text", "message"), [
    ("--foo=bar", "mapping"),
    ("[1, 2]", "mapping"),
    ("{unclosed", "does not parse"),
    ("a: &x [1]\nb: *x\n", "aliases"),
    ("nodeSelector: {when: 2024-01-01}", "non-JSON"),
    ("nodeSelector: {1: x}", "key must be a string"),
    ("!!python/object/apply:os.system ['id']", "does not parse"),
])
def test_malformed_extra_args_are_refused(text: str, message: str) -> None:
    with pytest.raises(JobAdError, match=message):
        build({"extra_submit_args": text}, EXTRA_ARGS_FIELDS="nodeSelector")


def test_job_values_win_over_an_extra_args_patch() -> None:
    patch = {"containers": [{"name": "job", "image": "evil:1",
                             "resources": {"limits": {"cpu": "999"}}}],
             "restartPolicy": "Always"}
    pod = build({"extra_submit_args": json.dumps(patch)},
                EXTRA_ARGS_FIELDS="containers,restartPolicy")
    assert job_container(pod)["image"] == "busybox:1.36"
    assert job_container(pod)["resources"]["limits"]["cpu"] == "1"
    assert pod["spec"]["restartPolicy"] == "Never"


# attempts to widen policy through BatchExtraSubmitArgs, even with the field listed
ESCALATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("privileged", {"containers": [{"name": "job", "securityContext": {"privileged": True}}]},
     "privileged"),
    ("privileged sidecar", {"containers": [{"name": "x", "image": "busybox:1.36",
                                            "securityContext": {"privileged": True}}]},
     "privileged"),
    ("escalation", {"containers": [{"name": "job", "securityContext": {
        "allowPrivilegeEscalation": True}}]}, "allowPrivilegeEscalation"),
    ("capabilities", {"containers": [{"name": "job", "securityContext": {
        "capabilities": {"add": ["SYS_ADMIN"]}}}]}, "capabilities"),
    ("hostPath", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "hostPath"),
    ("hostNetwork", {"hostNetwork": True}, "hostNetwork"),
    ("serviceAccount", {"serviceAccountName": "cluster-admin"}, "serviceAccountName"),
]


@pytest.mark.parametrize(("patch", "field"), [e[1:] for e in ESCALATIONS],
                         ids=[e[0] for e in ESCALATIONS])
def test_extra_args_cannot_widen_policy(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        build({"extra_submit_args": json.dumps(patch)}, EXTRA_ARGS_FIELDS=EXTRA)
    assert field in caught.value.attribute


def test_extra_args_cannot_reach_metadata_or_namespace() -> None:
    with pytest.raises(PolicyError) as caught:
        build({"extra_submit_args": '{"metadata": {"namespace": "kube-system"}}'},
              EXTRA_ARGS_FIELDS=EXTRA)
    assert caught.value.attribute == "BatchExtraSubmitArgs"


@pytest.mark.parametrize("attribute", ["KubernetesServiceAccount", "privileged", "hostNetwork",
                                       "HostPath", "serviceAccountName"])
def test_unknown_job_attributes_change_nothing(attribute: str) -> None:
    plain = build()
    sneaky = build({"attributes": {attribute.lower(): "true"},
                    "ce_attributes": {attribute: "true"}})
    assert sneaky == plain


# --- verify_pod on pods changed after building (what another layer might do)

def admin_templates() -> Any:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["volumes"] = [{"name": "cvmfs", "hostPath": {"path": "/cvmfs"}}]
    overlay = {"spec": {"hostNetwork": True, "serviceAccountName": "pilot",
                        "containers": [{"name": "job", "securityContext": {
                            "privileged": True, "capabilities": {"add": ["SYS_PTRACE"]}}}]}}
    return templates_from_data(base, {"pilots": QueueConfig(template=overlay)})


def test_what_the_admin_template_has_is_allowed() -> None:
    pod = build({"queue": "pilots"}, templates=admin_templates())
    assert pod["spec"]["hostNetwork"] is True
    assert pod["spec"]["serviceAccountName"] == "pilot"
    assert job_container(pod)["securityContext"]["privileged"] is True
    assert pod["spec"]["volumes"] == [{"name": "cvmfs", "hostPath": {"path": "/cvmfs"}}]


def test_the_admin_overlay_of_one_queue_does_not_widen_another() -> None:
    templates = admin_templates()
    pod = build({"queue": "pilots"}, templates=templates)
    pod["metadata"]["annotations"][ANN_QUEUE] = "other"
    with pytest.raises(PolicyError):
        verify_pod(pod, templates, settings())


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p["spec"].update(hostPID=True), "hostPID"),
    (lambda p: p["spec"].update(hostIPC=True), "hostIPC"),
    (lambda p: p["spec"].update(hostUsers=False), "hostUsers"),
    (lambda p: p["spec"].update(automountServiceAccountToken=True), "automount"),
    (lambda p: p["spec"].update(serviceAccount="default"), "serviceAccount"),
    (lambda p: p["spec"]["volumes"].append({"name": "cvmfs2", "hostPath": {"path": "/cvmfs"}}),
     "hostPath"),
    (lambda p: p["spec"]["volumes"][0]["hostPath"].update(path="/etc"), "hostPath"),
    (lambda p: p["spec"].setdefault("initContainers", []).append(
        {"name": "init", "image": "x", "securityContext": {"privileged": True}}), "privileged"),
    (lambda p: p["metadata"].update(namespace="kube-system"), "namespace"),
    (lambda p: p["spec"]["securityContext"].update(runAsUser=0), "runAsUser"),
    (lambda p: p["spec"]["securityContext"].update(runAsGroup=0), "runAsGroup"),
    (lambda p: p["spec"]["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
    (lambda p: p["spec"]["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "seccompProfile"),
    (lambda p: p["spec"]["containers"][0]["securityContext"].update(runAsUser=0),
     "containers[job].securityContext.runAsUser"),
])
def test_verify_pod_refuses_what_the_admin_did_not_grant(change: Any, field: str) -> None:
    templates = admin_templates()
    pod = build(templates=templates)
    verify_pod(pod, templates, settings())
    change(pod)
    with pytest.raises(PolicyError) as caught:
        verify_pod(pod, templates, settings())
    assert field in caught.value.attribute


def test_verify_pod_allows_the_shared_transfer_volume() -> None:
    pod = build()
    pod["spec"]["volumes"] = [{"name": "shared", "hostPath": {"path": "/data/condor"}}]
    with pytest.raises(PolicyError):
        verify_pod(pod, plain_templates(), settings())
    verify_pod(pod, plain_templates(),
               settings(TRANSFER_MODE="shared", SHARED_VOLUME="hostPath:/data/condor"))
    verify_pod(pod, plain_templates(),
               settings(TRANSFER_MODE="shared", SHARED_VOLUME="hostpath:/data/condor"))
    with pytest.raises(PolicyError):   # the knob names another directory
        verify_pod(pod, plain_templates(),
                   settings(TRANSFER_MODE="shared", SHARED_VOLUME="hostPath:/data"))


def test_a_container_added_by_extra_args_obeys_allowed_images() -> None:
    patch = {"containers": [{"name": "miner", "image": "evil.example.com/miner:1"}]}
    with pytest.raises(PolicyError) as caught:
        build({"extra_submit_args": json.dumps(patch)}, EXTRA_ARGS_FIELDS="containers",
              ALLOWED_IMAGES="busybox:*")
    assert caught.value.attribute == "BatchExtraSubmitArgs"
    patch = {"containers": [{"name": "helper", "image": "busybox:1.37"}]}
    pod = build({"extra_submit_args": json.dumps(patch)}, EXTRA_ARGS_FIELDS="containers",
                ALLOWED_IMAGES="busybox:*")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["job", "helper"]
