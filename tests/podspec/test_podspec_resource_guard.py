"""verify_pod holds every resource quantity of the built pod to what the admin's templates and
kgahp's own translation of the job (RequestCpus/Memory/Disk, GPUNumber, GPUMode, MICNumber) give
it: a BatchExtraSubmitArgs patch (KGAHP_EXTRA_ARGS_FIELDS) can never widen it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from podspec_support import EXAMPLES, plain_templates, request, settings

from kgahp.config import PodSettings, Settings
from kgahp.errors import PolicyError
from kgahp.podspec import Templates, build_pod, load_templates, templates_from_data, verify_pod
from kgahp.podspec.templates import DEFAULT_BASE
from kgahp.sandbox import decorate_pod

KNOBS = {
    "EXTRA_ARGS_FIELDS": "containers,initContainers,resourceClaims,resources",
    "GPU_MODES": "shared:nvidia.com/gpu.shared:nvidia.com/gpu.sharing-strategy=time-slicing",
}
MIC_KNOBS = {**KNOBS, "MIC_RESOURCE": "intel.com/mic"}


def job(resources: dict[str, Any]) -> dict[str, Any]:
    return {"containers": [{"name": "job", "resources": resources}]}


def sidecar(resources: dict[str, Any], kind: str = "containers") -> dict[str, Any]:
    return {kind: [{"name": "helper", "image": "busybox:1.36", "resources": resources}]}


def both(amounts: dict[str, Any]) -> dict[str, Any]:
    return {"requests": dict(amounts), "limits": dict(amounts)}


# (id, job request fields, knobs, BatchExtraSubmitArgs patch, words the PolicyError must hold)
ESCAPES: list[tuple[str, dict[str, Any], dict[str, str], dict[str, Any], str]] = [
    ("gpu-without-gpunumber", {}, KNOBS, job(both({"nvidia.com/gpu": 64})),
     "spec.containers[job].resources[nvidia.com/gpu] is not allowed: GPUs come only from the "
     "job's GPUNumber"),
    ("gpu-limit-only", {}, KNOBS, job({"limits": {"nvidia.com/gpu": "64"}}),
     "KGAHP_MAX_GPUS (64 asked, 0 granted; ask with GPUNumber"),
    ("gpu-in-a-sidecar", {"gpus": 1}, KNOBS, sidecar(both({"nvidia.com/gpu": 7})),
     "spec.containers[helper].resources[nvidia.com/gpu]"),
    ("gpu-in-an-init-container", {"gpus": 1}, KNOBS,
     sidecar(both({"nvidia.com/gpu": 8}), "initContainers"),
     "spec.initContainers[helper].resources[nvidia.com/gpu]"),
    ("gpu-under-a-mode-name", {"gpus": 1}, KNOBS, job(both({"nvidia.com/gpu.shared": 4})),
     "resources[nvidia.com/gpu.shared] is not allowed: GPUs come only"),
    ("gpu-mode-job-adds-the-plain-gpu", {"gpus": 1, "gpu_mode": "shared"}, KNOBS,
     job(both({"nvidia.com/gpu": 1})), "resources[nvidia.com/gpu] is not allowed"),
    ("mic-without-mic-resource", {}, KNOBS, job(both({"intel.com/mic": 9})),
     "resources[intel.com/mic] is not allowed: only the admin's pod template (KGAHP_POD_TEMPLATE,"
     " KGAHP_QUEUE_CONFIG) may request this resource"),
    ("mic-without-micnumber", {}, MIC_KNOBS, job(both({"intel.com/mic": 9})),
     "MIC cards come only from the job's MICNumber, requested as KGAHP_MIC_RESOURCE"),
    ("mic-beside-micnumber", {"mics": 1}, MIC_KNOBS, sidecar(both({"intel.com/mic": 1})),
     "spec.containers[helper].resources[intel.com/mic]"),
    ("made-up-extended-resource", {}, KNOBS, job(both({"example.com/fpga": "1"})),
     "resources[example.com/fpga] is not allowed: only the admin's pod template"),
    ("hugepages", {}, KNOBS, job(both({"hugepages-2Mi": "1Gi"})), "resources[hugepages-2Mi]"),
    ("cpu-in-a-sidecar", {"cpus": 1.0, "cpus_explicit": True}, KNOBS,
     sidecar(both({"cpu": "1000"})),
     "cpu requests may not exceed what the job's RequestCpus and the admin's template give it "
     "(1001 CPUs asked, 1 granted; raise RequestCpus instead (at most KGAHP_MAX_CPUS))"),
    ("cpu-in-an-init-container", {}, KNOBS, sidecar(both({"cpu": "64"}), "initContainers"),
     "(64 CPUs asked, 1 granted"),
    ("cpu-limit-above-the-job", {}, KNOBS, sidecar({"limits": {"cpu": "100m"}}),
     "cpu requests may not exceed"),
    ("memory-in-a-sidecar", {"memory_mib": 512}, KNOBS, sidecar({"limits": {"memory": "1Ti"}}),
     "memory requests may not exceed what the job's RequestMemory"),
    ("memory-in-an-init-container", {"memory_mib": 512}, KNOBS,
     sidecar({"requests": {"memory": "4Gi"}}, "initContainers"), "(4096 MiB asked, 512 granted"),
    ("disk-without-requestdisk", {}, KNOBS, job(both({"ephemeral-storage": "1Ti"})),
     "the job sets no RequestDisk: set it instead (at most KGAHP_MAX_DISK)"),
    ("disk-above-requestdisk", {"disk_kib": 1024}, KNOBS,
     sidecar({"requests": {"ephemeral-storage": "2Mi"}}), "(3072 KiB asked, 1024 granted"),
    ("not-a-quantity", {}, KNOBS, job({"requests": {"example.com/x": "lots"}}),
     "must be a non-negative Kubernetes quantity"),
    ("negative-quantity", {}, KNOBS, sidecar({"requests": {"cpu": "-1"}}),
     "must be a non-negative Kubernetes quantity"),
    ("huge-exponent", {}, KNOBS, job(both({"nvidia.com/gpu": "1e99999"})),
     "must be a non-negative Kubernetes quantity"),
    ("dra-claim", {}, KNOBS, {"resourceClaims": [{"name": "g", "resourceClaimName": "gpus"}]},
     "spec.resourceClaims is not allowed: only the admin's pod template may claim devices"),
    ("dra-claim-in-a-container", {}, KNOBS, job({"claims": [{"name": "g"}]}),
     "spec.containers[job].resources.claims is not allowed"),
    ("pod-level-resources", {}, KNOBS, {"resources": {"limits": {"nvidia.com/gpu": "8"}}},
     "spec.resources is not allowed"),
]


@pytest.mark.parametrize(("fields", "knobs", "patch", "message"), [r[1:] for r in ESCAPES],
                         ids=[r[0] for r in ESCAPES])
def test_a_patch_cannot_widen_resources(fields: dict[str, Any], knobs: dict[str, str],
                                        patch: dict[str, Any], message: str) -> None:
    req = request(extra_submit_args=json.dumps(patch), **fields)
    with pytest.raises(PolicyError) as caught:
        build_pod(req, settings(**knobs), plain_templates(), attempt=0)
    assert message in str(caught.value)


LONG = "example.com/" + "x" * 1000   # YAML keys stop at 1024 characters


# (id, patch): hostile names and values never reach the message unbounded
LONG_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("long-resource-name", job(both({LONG: 1}))),
    ("long-quantity", job({"requests": {"nvidia.com/gpu": "9" * 5000}})),
    ("long-container-name", {"containers": [{"name": "c" * 5000, "image": "busybox:1.36",
                                             "resources": both({"nvidia.com/gpu": 1})}]}),
]


@pytest.mark.parametrize("patch", [r[1] for r in LONG_VALUES], ids=[r[0] for r in LONG_VALUES])
def test_refusals_never_echo_long_values(patch: dict[str, Any]) -> None:
    req = request(extra_submit_args=json.dumps(patch))
    with pytest.raises(PolicyError) as caught:
        build_pod(req, settings(**KNOBS), plain_templates(), attempt=0)
    assert len(str(caught.value)) < 600


def example_templates() -> Templates:
    return load_templates(PodSettings(pod_template=str(EXAMPLES / "pod-templates" / "payload.yaml"),
                                      queue_config=str(EXAMPLES / "queues.yaml")))


ADMIN_SIDECAR = templates_from_data(
    {**DEFAULT_BASE, "spec": {"containers": [
        {"name": "job", "resources": both({"example.com/fpga": "1"})},
        {"name": "monitor", "image": "busybox:1.36",
         "resources": both({"cpu": "100m", "memory": "64Mi", "nvidia.com/gpu": "1"})}]}}, {})


# (id, job request fields, knobs, templates, patch or None): built and verified without error
LEGITIMATE: list[tuple[str, dict[str, Any], dict[str, str], Templates, Any]] = [
    ("plain", {}, KNOBS, plain_templates(), None),
    ("gpu", {"gpus": 2}, KNOBS, plain_templates(), None),
    ("gpu-at-the-cap", {"gpus": 8}, KNOBS, plain_templates(), None),
    ("gpu-mode", {"gpus": 2, "gpu_mode": "shared"}, KNOBS, plain_templates(), None),
    ("mic", {"mics": 2}, MIC_KNOBS, plain_templates(), None),
    ("gpu-mode-and-mic", {"gpus": 1, "gpu_mode": "Shared", "mics": 1}, MIC_KNOBS,
     plain_templates(), None),
    ("disk", {"disk_kib": 1048576}, KNOBS, plain_templates(), None),
    ("whole-node", {"whole_node": True}, {**KNOBS, "WHOLE_NODE_CPUS": "128",
                                          "WHOLE_NODE_MEMORY": "1048576"}, plain_templates(), None),
    ("limit-factor", {"cpus": 2.0, "cpus_explicit": True},
     {**KNOBS, "LIMIT_POLICY": "factor", "LIMIT_FACTOR": "1.5"}, plain_templates(), None),
    ("no-cpu-limit", {}, {**KNOBS, "LIMIT_POLICY": "no-cpu-limit"}, plain_templates(), None),
    ("example-payload", {}, KNOBS, example_templates(), None),
    ("example-gpu-queue", {"gpus": 4, "queue": "gpu", "gpu_model": "A100"}, KNOBS,
     example_templates(), None),
    ("example-pilot-queue", {"queue": "pilots", "namespace": None}, KNOBS, example_templates(),
     None),
    ("admin-sidecar-with-resources", {"gpus": 1}, KNOBS, ADMIN_SIDECAR, None),
    ("patch-within-the-job", {"gpus": 2, "disk_kib": 2048}, KNOBS, plain_templates(),
     job(both({"nvidia.com/gpu": 2, "ephemeral-storage": "1Mi"}))),
    ("patch-adds-a-sidecar-without-resources", {}, KNOBS, plain_templates(),
     {"containers": [{"name": "helper", "image": "busybox:1.36"}]}),
    ("patch-adds-a-small-init-container", {}, KNOBS, plain_templates(),
     sidecar({"requests": {"cpu": "500m", "memory": "1Gi"}}, "initContainers")),
    ("patch-lowers-the-admin-sidecar", {}, KNOBS, ADMIN_SIDECAR,
     {"containers": [{"name": "monitor", "resources": both({"cpu": "50m"})}]}),
]


@pytest.mark.parametrize(("fields", "knobs", "templates", "patch"), [r[1:] for r in LEGITIMATE],
                         ids=[r[0] for r in LEGITIMATE])
def test_legitimate_pods_pass(fields: dict[str, Any], knobs: dict[str, str],
                              templates: Templates, patch: Any) -> None:
    site: Settings = settings(**{"ALLOWED_NAMESPACES": "osg-pilots", **knobs})
    if patch is not None:
        fields = {**fields, "extra_submit_args": json.dumps(patch)}
    req = request(**fields)
    pod = build_pod(req, site, templates, attempt=0)
    verify_pod(pod, templates, site, req=req)
    verify_pod(pod, templates, site)           # the caps-only check after building
    decorate_pod(pod, req, site.transfer)      # what the service adds before its own check
    verify_pod(pod, templates, site)


# (id, change to a built GPU pod, words): without the request, the caps still hold
AFTER_BUILDING: list[tuple[str, Any, str]] = [
    ("gpu-over-max-gpus", lambda c: c["resources"]["limits"].update({"nvidia.com/gpu": "9"}),
     "resources[nvidia.com/gpu] is not allowed"),
    ("made-up-resource", lambda c: c["resources"]["limits"].update({"example.com/x": "1"}),
     "resources[example.com/x] is not allowed"),
    ("cpu-over-max-cpus", lambda c: c["resources"]["requests"].update({"cpu": "65"}),
     "at most 64 CPUs (KGAHP_MAX_CPUS)"),
]


@pytest.mark.parametrize(("change", "message"), [r[1:] for r in AFTER_BUILDING],
                         ids=[r[0] for r in AFTER_BUILDING])
def test_caps_hold_without_the_request(change: Any, message: str) -> None:
    site = settings(**KNOBS)
    pod = build_pod(request(gpus=8), site, plain_templates(), attempt=0)
    change(pod["spec"]["containers"][0])
    with pytest.raises(PolicyError) as caught:
        verify_pod(pod, plain_templates(), site)
    assert message in str(caught.value)
