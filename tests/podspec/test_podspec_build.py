from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any, Callable

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from podspec_support import (
    assert_valid_pod,
    job_container,
    plain_templates,
    quantity_value,
    request,
    settings,
)

from kgahp.errors import ConfigError, JobAdError
from kgahp.podspec import build_pod, job_base_name, templates_from_data
from kgahp.podspec.names import (
    ANN_ATTEMPT,
    ANN_JOB_DIRECTORY,
    ANN_OWNER,
    ANN_PROJECT,
    ANN_RESTARTS,
    ANN_SCHEDD,
    LABEL_ATTEMPT,
    LABEL_CLUSTER_PROC,
    LABEL_INSTANCE,
    LABEL_JOB,
    LABEL_KUEUE_QUEUE,
    LABEL_MANAGED_BY,
    LABEL_OWNER,
    LABEL_PROJECT,
    LABEL_SCHEDD,
)
from kgahp.podspec.templates import DEFAULT_BASE, QueueConfig

Pod = dict[str, Any]
GPU_MODES = ("shared:nvidia.com/gpu.shared:nvidia.com/gpu.sharing-strategy=time-slicing "
             "exclusive_process:nvidia.com/gpu")


def build(req_fields: dict[str, Any] | None = None, *, attempt: int = 1, restarts: int = 0,
          templates: Any = None, **knobs: str) -> Pod:
    pod = build_pod(request(**(req_fields or {})), settings(**knobs),
                    templates or plain_templates(), attempt=attempt, restarts=restarts)
    assert_valid_pod(pod)
    return pod


def requests_of(pod: Pod) -> dict[str, str]:
    return dict(job_container(pod)["resources"]["requests"])


def limits_of(pod: Pod) -> dict[str, str]:
    return dict(job_container(pod)["resources"]["limits"])


# --- one row per job attribute: (attribute, JobRequest fields, knobs, what the pod must show)
ROWS: list[tuple[str, dict[str, Any], dict[str, str], Callable[[Pod], Any], Any]] = [
    ("KubernetesImage", {"image": "python:3.12"}, {},
     lambda p: job_container(p)["image"], "python:3.12"),
    ("no image -> DEFAULT_IMAGE", {}, {"DEFAULT_IMAGE": "alpine:3.20"},
     lambda p: job_container(p)["image"], "alpine:3.20"),
    ("Cmd", {"cmd": "/usr/bin/python3"}, {}, lambda p: job_container(p)["command"],
     ["/usr/bin/python3"]),
    ("Arguments", {"arguments": ("a b", "--x=1", "")}, {}, lambda p: job_container(p)["args"],
     ["a b", "--x=1", ""]),
    ("Environment", {"environment": (("FOO", "bar"), ("EMPTY", ""))}, {},
     lambda p: job_container(p)["env"], [{"name": "FOO", "value": "bar"},
                                         {"name": "EMPTY", "value": ""}]),
    ("RequestCpus", {"cpus": 4, "cpus_explicit": True}, {}, lambda p: requests_of(p)["cpu"], "4"),
    ("RequestCpus fractional", {"cpus": 0.25, "cpus_explicit": True}, {},
     lambda p: requests_of(p)["cpu"], "250m"),
    ("RequestCpus rounded to millicores", {"cpus": 1.23456, "cpus_explicit": True}, {},
     lambda p: requests_of(p)["cpu"], "1235m"),
    ("no CPUs -> DEFAULT_CPUS", {}, {"DEFAULT_CPUS": "2"}, lambda p: requests_of(p)["cpu"], "2"),
    ("RequestMemory", {"memory_mib": 2048}, {}, lambda p: requests_of(p)["memory"], "2048Mi"),
    ("no memory -> DEFAULT_MEMORY", {}, {"DEFAULT_MEMORY": "512"},
     lambda p: requests_of(p)["memory"], "512Mi"),
    ("RequestDisk", {"disk_kib": 1048576}, {},
     lambda p: requests_of(p)["ephemeral-storage"], "1048576Ki"),
    ("GPUNumber", {"gpus": 2}, {}, lambda p: (requests_of(p)["nvidia.com/gpu"],
                                              limits_of(p)["nvidia.com/gpu"]), ("2", "2")),
    ("GPUNumber with GPU_RESOURCE", {"gpus": 1}, {"GPU_RESOURCE": "amd.com/gpu"},
     lambda p: requests_of(p).get("amd.com/gpu"), "1"),
    ("GPUModel", {"gpus": 1, "gpu_model": "NVIDIA A100-SXM4-40GB"}, {},
     lambda p: p["spec"]["nodeSelector"], {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"}),
    ("GPUModel with GPU_MODEL_LABEL", {"gpu_model": "a100"}, {"GPU_MODEL_LABEL": "gpu/model"},
     lambda p: p["spec"]["nodeSelector"], {"gpu/model": "a100"}),
    ("GPUMode -> the mode's resource", {"gpus": 2, "gpu_mode": "shared"},
     {"GPU_MODES": GPU_MODES}, lambda p: (requests_of(p).get("nvidia.com/gpu.shared"),
                                          limits_of(p).get("nvidia.com/gpu.shared"),
                                          "nvidia.com/gpu" in requests_of(p)), ("2", "2", False)),
    ("GPUMode -> the mode's node selector", {"gpus": 1, "gpu_mode": "shared"},
     {"GPU_MODES": GPU_MODES}, lambda p: p["spec"]["nodeSelector"],
     {"nvidia.com/gpu.sharing-strategy": "time-slicing"}),
    ("GPUMode matches case-insensitively", {"gpus": 1, "gpu_mode": "Exclusive_Process"},
     {"GPU_MODES": GPU_MODES}, lambda p: (requests_of(p).get("nvidia.com/gpu"),
                                          "nodeSelector" in p["spec"]), ("1", False)),
    ("GPUMode with no resource -> GPU_RESOURCE", {"gpus": 1, "gpu_mode": "mig"},
     {"GPU_MODES": "mig::gpu.example.org/mig=on", "GPU_RESOURCE": "amd.com/gpu"},
     lambda p: (requests_of(p).get("amd.com/gpu"), p["spec"]["nodeSelector"]),
     ("1", {"gpu.example.org/mig": "on"})),
    ("GPUMode and GPUModel both select", {"gpus": 1, "gpu_mode": "shared", "gpu_model": "A100"},
     {"GPU_MODES": GPU_MODES}, lambda p: p["spec"]["nodeSelector"],
     {"nvidia.com/gpu.product": "A100", "nvidia.com/gpu.sharing-strategy": "time-slicing"}),
    ("GPUMode without GPUNumber is ignored (as blahp)", {"gpu_mode": "shared"},
     {"GPU_MODES": GPU_MODES}, lambda p: (sorted(requests_of(p)), "nodeSelector" in p["spec"]),
     (["cpu", "memory"], False)),
    ("unmapped GPUMode without GPUNumber is ignored", {"gpu_mode": "turbo"}, {},
     lambda p: sorted(requests_of(p)), ["cpu", "memory"]),
    ("MICNumber", {"mics": 2}, {"MIC_RESOURCE": "intel.com/mic"},
     lambda p: (requests_of(p).get("intel.com/mic"), limits_of(p).get("intel.com/mic")),
     ("2", "2")),
    ("MICNumber with LIMIT_POLICY factor: limit = request", {"mics": 3},
     {"MIC_RESOURCE": "intel.com/mic", "LIMIT_POLICY": "factor", "LIMIT_FACTOR": "2"},
     lambda p: (requests_of(p).get("intel.com/mic"), limits_of(p).get("intel.com/mic")),
     ("3", "3")),
    ("MICNumber beside GPUs", {"mics": 1, "gpus": 1}, {"MIC_RESOURCE": "intel.com/mic"},
     lambda p: (requests_of(p).get("intel.com/mic"), requests_of(p).get("nvidia.com/gpu")),
     ("1", "1")),
    ("MICNumber 0 needs no MIC_RESOURCE", {"mics": 0}, {},
     lambda p: sorted(requests_of(p)), ["cpu", "memory"]),
    ("BatchRuntime", {"runtime_seconds": 600}, {},
     lambda p: p["spec"]["activeDeadlineSeconds"], 600),
    ("no BatchRuntime -> DEFAULT_RUNTIME", {}, {"DEFAULT_RUNTIME": "7200"},
     lambda p: p["spec"]["activeDeadlineSeconds"], 7200),
    ("no BatchRuntime and no default -> MAX_RUNTIME", {}, {"MAX_RUNTIME": "86400"},
     lambda p: p["spec"]["activeDeadlineSeconds"], 86400),
    ("no BatchRuntime at all -> unlimited", {}, {},
     lambda p: "activeDeadlineSeconds" in p["spec"], False),
    ("BatchProject", {"project": "physics lab"}, {},
     lambda p: (p["metadata"]["labels"][LABEL_PROJECT][:12],
                p["metadata"]["annotations"][ANN_PROJECT]), ("physics-lab-", "physics lab")),
    ("WholeNodes", {"whole_node": True, "cpus": 2, "cpus_explicit": True},
     {"WHOLE_NODE_CPUS": "32", "WHOLE_NODE_MEMORY": "128000"},
     lambda p: (requests_of(p)["cpu"], requests_of(p)["memory"]), ("32", "128000Mi")),
    ("KubernetesNamespace", {"namespace": "team-a"}, {"ALLOWED_NAMESPACES": "team-a"},
     lambda p: p["metadata"]["namespace"], "team-a"),
    ("no namespace -> NAMESPACE", {}, {"NAMESPACE": "batch"},
     lambda p: p["metadata"]["namespace"], "batch"),
    ("restartPolicy", {}, {}, lambda p: p["spec"]["restartPolicy"], "Never"),
    ("StageCmd=false keeps the image path", {"cmd": "/opt/app/run", "stage_cmd": False}, {},
     lambda p: job_container(p)["command"], ["/opt/app/run"]),
]


@pytest.mark.parametrize(("fields", "knobs", "extract", "expected"),
                         [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_attribute_reaches_the_pod(fields: dict[str, Any], knobs: dict[str, str],
                                   extract: Callable[[Pod], Any], expected: Any) -> None:
    assert extract(build(fields, **knobs)) == expected


def test_admin_environment_wins_over_the_job_and_the_template() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["containers"][0]["env"] = [
        {"name": "FROM_TEMPLATE", "value": "t"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "CONDOR_HOST", "value": "template"}]
    pod = build({"environment": (("SECRET", "job"), ("CONDOR_HOST", "job"), ("MINE", "1"))},
                templates=templates_from_data(base, {}),
                ENVIRONMENT="CONDOR_HOST=cm.example.org:9618")
    assert job_container(pod)["env"] == [
        {"name": "FROM_TEMPLATE", "value": "t"},
        {"name": "SECRET", "value": "job"},     # whole entry replaced: no value beside valueFrom
        {"name": "MINE", "value": "1"},
        {"name": "CONDOR_HOST", "value": "cm.example.org:9618"}]


@pytest.mark.parametrize(("policy", "factor", "requests", "limits"), [
    ("equal", "1.0", {"cpu": "1500m", "memory": "1000Mi"}, {"cpu": "1500m", "memory": "1000Mi"}),
    ("factor", "2.0", {"cpu": "1500m", "memory": "1000Mi"}, {"cpu": "3", "memory": "2000Mi"}),
    ("factor", "1.5", {"cpu": "1500m", "memory": "1000Mi"}, {"cpu": "2250m", "memory": "1500Mi"}),
    ("no-cpu-limit", "1.0", {"cpu": "1500m", "memory": "1000Mi"}, {"memory": "1000Mi"}),
])
def test_limit_policies(policy: str, factor: str, requests: dict[str, str],
                        limits: dict[str, str]) -> None:
    pod = build({"cpus": 1.5, "cpus_explicit": True, "memory_mib": 1000},
                LIMIT_POLICY=policy, LIMIT_FACTOR=factor)
    assert requests_of(pod) == requests
    assert limits_of(pod) == limits


def test_no_cpu_limit_removes_a_template_cpu_limit() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["containers"][0]["resources"] = {
        "limits": {"cpu": "100m", "hugepages-2Mi": "64Mi"}}
    pod = build({"cpus": 2, "cpus_explicit": True}, templates=templates_from_data(base, {}),
                LIMIT_POLICY="no-cpu-limit")
    assert "cpu" not in limits_of(pod)
    assert limits_of(pod)["hugepages-2Mi"] == "64Mi"


def test_a_bad_admin_environment_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="KGAHP_ENVIRONMENT"):
        build(ENVIRONMENT="..BAD=x")


def test_a_limit_factor_below_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="LIMIT_FACTOR"):
        build(LIMIT_POLICY="factor", LIMIT_FACTOR="0.5")


def test_labels_and_annotations() -> None:
    pod = build({"job_directory": "home_bl_ce.example.org_9619_ce@x_1234.0_1767225600"},
                attempt=3, restarts=2, INSTANCE="ce one")
    meta = pod["metadata"]
    base = job_base_name("home_bl_ce.example.org_9619_ce@x_1234.0_1767225600", "kg")
    assert meta["name"] == f"{base}-3"
    labels, annotations = meta["labels"], meta["annotations"]
    assert labels[LABEL_MANAGED_BY] == "kgahp"
    assert labels[LABEL_JOB] == base
    assert labels[LABEL_ATTEMPT] == "3"
    assert labels[LABEL_INSTANCE].startswith("ce-one-")
    assert labels[LABEL_CLUSTER_PROC] == "1234.0"
    assert labels[LABEL_OWNER] == "alice"
    assert labels[LABEL_SCHEDD].startswith("ce-x-")       # '@' is not allowed in a label value
    assert annotations[ANN_SCHEDD] == "ce@x"
    assert annotations[ANN_JOB_DIRECTORY] == "home_bl_ce.example.org_9619_ce@x_1234.0_1767225600"
    assert annotations[ANN_ATTEMPT] == "3"
    assert annotations[ANN_RESTARTS] == "2"
    assert annotations[ANN_OWNER] == "alice"


def test_template_metadata_is_kept_but_name_and_namespace_are_kgahps() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["metadata"] = {"name": "fixed", "namespace": "elsewhere", "labels": {"site": "x"},
                        "annotations": {"note": "kept"}}
    pod = build(templates=templates_from_data(base, {}))
    assert pod["metadata"]["namespace"] == "default"
    assert pod["metadata"]["name"].startswith("kg-ce-1234-0-")
    assert pod["metadata"]["labels"]["site"] == "x"
    assert pod["metadata"]["annotations"]["note"] == "kept"


def queue_templates() -> Any:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["containers"] = [
        {"name": "job", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]},
        {"name": "sidecar", "image": "busybox:1.36"}]
    base["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    base["spec"]["tolerations"] = [{"key": "base", "operator": "Exists"}]
    overlay = {"spec": {
        "containers": [{"name": "job", "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]},
                       {"name": "sidecar", "image": "busybox:1.37"}],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
        "tolerations": [{"key": "gpu", "operator": "Exists"}]}}
    queues = {"gpu": QueueConfig(template=overlay, namespace="gpu-jobs",
                                 priority_class="high", kueue_queue="gpu-local",
                                 kueue_priority_class="batch-urgent")}
    return templates_from_data(base, queues)


def test_queue_overlay_merges_by_container_name() -> None:
    pod = build({"queue": "gpu"}, templates=queue_templates(), ALLOWED_NAMESPACES="gpu-jobs")
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["job", "sidecar"]
    assert job_container(pod)["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"},
                                                  {"name": "dshm", "mountPath": "/dev/shm"}]
    assert spec["containers"][1]["image"] == "busybox:1.37"
    assert [v["name"] for v in spec["volumes"]] == ["scratch", "dshm"]
    assert [t["key"] for t in spec["tolerations"]] == ["base", "gpu"]
    assert spec["priorityClassName"] == "high"
    assert pod["metadata"]["namespace"] == "gpu-jobs"
    assert pod["metadata"]["labels"][LABEL_KUEUE_QUEUE] == "gpu-local"
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "batch-urgent"


def test_other_queues_do_not_get_the_overlay() -> None:
    pod = build(templates=queue_templates())
    assert "kueue.x-k8s.io/queue-name" not in pod["metadata"]["labels"]
    assert "kueue.x-k8s.io/priority-class" not in pod["metadata"]["labels"]
    assert [t["key"] for t in pod["spec"]["tolerations"]] == ["base"]
    assert "priorityClassName" not in pod["spec"]
    assert LABEL_KUEUE_QUEUE not in pod["metadata"]["labels"]


def test_the_jobs_namespace_wins_over_the_queues() -> None:
    pod = build({"queue": "gpu", "namespace": "team-a"}, templates=queue_templates(),
                ALLOWED_NAMESPACES="gpu-jobs,team-a")
    assert pod["metadata"]["namespace"] == "team-a"


def test_template_image_is_used_before_default_image() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["containers"][0]["image"] = "registry.example.org/pilot:1"
    assert job_container(build(templates=templates_from_data(base, {})))["image"] == \
        "registry.example.org/pilot:1"
    pod = build({"image": "python:3.12"}, templates=templates_from_data(base, {}))
    assert job_container(pod)["image"] == "python:3.12"


def test_no_image_anywhere_is_a_job_ad_error() -> None:
    with pytest.raises(JobAdError, match="image"):
        build(DEFAULT_IMAGE="")


def test_security_defaults() -> None:
    pod = build()
    spec = pod["spec"]
    assert job_container(pod)["securityContext"] == {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert spec["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 65532, "runAsGroup": 65532,
        "fsGroup": 65532, "runAsNonRoot": True}
    assert spec["automountServiceAccountToken"] is False


def test_run_as_knobs_choose_the_user_and_empty_leaves_it_to_the_image() -> None:
    spec = build(RUN_AS_USER="1234", RUN_AS_GROUP="4321")["spec"]
    assert spec["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"}, "runAsUser": 1234, "runAsGroup": 4321,
        "fsGroup": 4321, "runAsNonRoot": True}
    spec = build(RUN_AS_USER="image", RUN_AS_GROUP="Image")["spec"]
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_owner_is_the_gahps_own_ids_and_the_default_in_shared_mode(monkeypatch) -> None:
    from kgahp.config import settings_from_mapping

    monkeypatch.setattr("os.getuid", lambda: 1234)
    monkeypatch.setattr("os.getgid", lambda: 567)
    pod = settings_from_mapping({"RUN_AS_USER": "owner", "RUN_AS_GROUP": "owner"}).pod
    assert (pod.run_as_user, pod.run_as_group) == (1234, 567)
    shared = {"TRANSFER_MODE": "shared", "SHARED_VOLUME": "pvc:home"}
    pod = settings_from_mapping(shared).pod
    assert (pod.run_as_user, pod.run_as_group) == (1234, 567)
    pod = settings_from_mapping({**shared, "RUN_AS_USER": "4000"}).pod
    assert (pod.run_as_user, pod.run_as_group) == (4000, 65532)
    assert settings_from_mapping({}).pod.run_as_user == 65532     # api mode keeps the default
    monkeypatch.setattr("os.getuid", lambda: 0)
    with pytest.raises(ConfigError, match="runs as root"):
        settings_from_mapping({"RUN_AS_USER": "owner"})
    assert settings_from_mapping(shared).pod.run_as_user == 65532


@pytest.mark.parametrize("value", ["0", "-1", "root", "2147483648"])
def test_run_as_user_must_be_a_non_root_number(value: str) -> None:
    with pytest.raises(ConfigError, match="KGAHP_RUN_AS_USER"):
        build(RUN_AS_USER=value)


def test_a_template_pod_level_user_wins_over_the_knob() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 100}
    spec = build(templates=templates_from_data(base, {}))["spec"]
    assert spec["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 100, "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": 100, "runAsNonRoot": True}


def test_a_root_template_gets_no_run_as_non_root() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["securityContext"] = {"runAsUser": 0}
    spec = build(templates=templates_from_data(base, {}))["spec"]
    assert spec["securityContext"]["runAsUser"] == 0
    assert "runAsNonRoot" not in spec["securityContext"]


def test_template_security_choices_are_kept_and_non_root_follows_run_as_user() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["automountServiceAccountToken"] = True
    base["spec"]["containers"][0]["securityContext"] = {
        "runAsUser": 1000, "capabilities": {"drop": ["NET_RAW"]}}
    pod = build(templates=templates_from_data(base, {}))
    assert job_container(pod)["securityContext"] == {
        "runAsUser": 1000, "capabilities": {"drop": ["NET_RAW"]},
        "allowPrivilegeEscalation": False}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert pod["spec"]["automountServiceAccountToken"] is True


def test_a_privileged_template_container_gets_no_contradicting_default() -> None:
    base = copy.deepcopy(DEFAULT_BASE)
    base["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    pod = build(templates=templates_from_data(base, {}))
    assert job_container(pod)["securityContext"] == {"privileged": True}


def test_same_input_gives_the_same_pod() -> None:
    fields = {"image": "python:3.12", "arguments": ("x",), "environment": (("A", "1"),),
              "gpus": 1, "queue": "gpu", "project": "p"}
    first = build(fields, templates=queue_templates(), ALLOWED_NAMESPACES="gpu-jobs")
    second = build(fields, templates=queue_templates(), ALLOWED_NAMESPACES="gpu-jobs")
    assert json.dumps(first) == json.dumps(second)


def test_building_does_not_touch_the_templates() -> None:
    templates = queue_templates()
    before = copy.deepcopy(templates)
    build({"queue": "gpu"}, templates=templates, ALLOWED_NAMESPACES="gpu-jobs")
    assert templates == before


def test_attempt_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        build(attempt=1_000_000)


@pytest.mark.parametrize(("cpus", "expected"), [(1, "1"), (0.5, "500m"), (0.0001, "1m"),
                                                (64, "64"), (1e-9, "1m"), (2.0005, "2001m")])
def test_cpu_quantities_have_no_exponent(cpus: float, expected: str) -> None:
    assert requests_of(build({"cpus": cpus, "cpus_explicit": True}))["cpu"] == expected


@hsettings(max_examples=60, deadline=None)
@given(cpus=st.floats(min_value=0.001, max_value=64), memory=st.integers(1, 262144),
       disk=st.none() | st.integers(1, 10**12), gpus=st.integers(0, 8),
       policy=st.sampled_from(["equal", "factor", "no-cpu-limit"]))
def test_any_resource_request_within_limits_gives_a_valid_pod(
        cpus: float, memory: int, disk: int | None, gpus: int, policy: str) -> None:
    pod = build({"cpus": cpus, "cpus_explicit": True, "memory_mib": memory, "disk_kib": disk,
                 "gpus": gpus}, LIMIT_POLICY=policy, LIMIT_FACTOR="1.7")
    assert quantity_value(requests_of(pod)["memory"]) == memory * 2**20
    assert abs(quantity_value(requests_of(pod)["cpu"]) - Decimal(cpus)) <= Decimal("0.0005")
