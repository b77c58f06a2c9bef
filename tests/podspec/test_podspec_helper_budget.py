"""kgahp's own helper containers (the stage-in init container) are budgeted apart from the job:
they never shrink what a job is granted nor refuse a small job, and they cannot be used to widen
it. Kubernetes counts a pod as max(largest init container, sum of the others), so a helper adds
nothing to the job's own containers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from podspec_support import job_container, plain_templates, request, settings

from kgahp.config import Settings
from kgahp.errors import ConfigError, JobAdError, PolicyError
from kgahp.manifests import assemble
from kgahp.podspec import build_pod, templates_from_data, verify_pod
from kgahp.sandbox.inputs import InputBundle
from kgahp.sandbox.wrapper import STAGE_IN_NAME

BUNDLE = InputBundle(data={"f0": "aGk="}, items=(("f0", "s/in.txt", 0o644),), total_bytes=2)


def decorated(memory: int, site: Settings, **fields: Any) -> dict[str, Any]:
    req = request(memory_mib=memory, **fields)
    return assemble(req, site, plain_templates(), attempt=0, restarts=0, bundle=BUNDLE,
                    creds={}).pod


def helper(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["initContainers"] if c["name"] == STAGE_IN_NAME)


@pytest.mark.parametrize("memory", [1, 16, 32, 63, 64, 4096])
def test_a_small_job_keeps_exactly_what_it_asked_for(memory: int) -> None:
    pod = decorated(memory, settings())
    resources = job_container(pod)["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == f"{memory}Mi"
    assert helper(pod)["resources"] == {"requests": {"cpu": "10m", "memory": "16Mi"},
                                        "limits": {"cpu": "100m", "memory": "64Mi"}}


def test_the_helper_budget_is_the_admins_knobs() -> None:
    site = settings(HELPER_CPU_REQUEST="50m", HELPER_CPU_LIMIT="0.5",
                    HELPER_MEMORY_REQUEST="32Mi", HELPER_MEMORY_LIMIT="128Mi")
    pod = decorated(8, site)
    assert helper(pod)["resources"] == {"requests": {"cpu": "50m", "memory": "32Mi"},
                                        "limits": {"cpu": "0.5", "memory": "128Mi"}}
    assert job_container(pod)["resources"]["limits"]["memory"] == "8Mi"


@pytest.mark.parametrize(("knobs", "message"), [
    ({"HELPER_MEMORY_REQUEST": "128Mi"}, "KGAHP_HELPER_MEMORY_REQUEST = 128Mi is more than"),
    ({"HELPER_CPU_LIMIT": "a lot"}, "KGAHP_HELPER_CPU_LIMIT = 'a lot' is not valid"),
    ({"HELPER_MEMORY_LIMIT": "-1Mi"}, "KGAHP_HELPER_MEMORY_LIMIT"),
])
def test_bad_helper_knobs_are_config_errors(knobs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(**knobs)
    assert message in str(caught.value)


@pytest.mark.parametrize(("field", "resource", "amount", "knob"), [
    ("limits", "memory", "65Mi", "KGAHP_HELPER_MEMORY_LIMIT"),
    ("requests", "memory", "17Mi", "KGAHP_HELPER_MEMORY_REQUEST"),
    ("limits", "cpu", "2", "KGAHP_HELPER_CPU_LIMIT"),
    ("requests", "cpu", "11m", "KGAHP_HELPER_CPU_REQUEST"),
])
def test_a_helper_above_its_budget_is_refused(field: str, resource: str, amount: str,
                                              knob: str) -> None:
    site = settings()
    req = request(memory_mib=4096)
    pod = decorated(4096, site)
    helper(pod)["resources"][field][resource] = amount
    with pytest.raises(PolicyError) as caught:
        verify_pod(pod, plain_templates(), site, req=req)
    assert f"spec.initContainers[{STAGE_IN_NAME}].resources.{field}[{resource}]" in \
        str(caught.value)
    assert knob in str(caught.value)


def test_a_helper_gets_no_devices_or_disk() -> None:
    site = settings()
    for extra, words in (({"nvidia.com/gpu": "1"}, "resources[nvidia.com/gpu]"),
                         ({"ephemeral-storage": "1Gi"}, "get no ephemeral-storage")):
        pod = decorated(64, site)
        for field in ("requests", "limits"):
            helper(pod)["resources"][field].update(extra)
        with pytest.raises(PolicyError) as caught:
            verify_pod(pod, plain_templates(), site, req=request(memory_mib=64))
        assert words in str(caught.value)


def test_the_job_part_is_still_held_to_the_request_beside_a_helper() -> None:
    """The helper's room (64Mi limit) is not room for the job: a 1 MiB job whose container
    was raised to the helper's size is refused, although Kubernetes' pod total is unchanged."""
    site = settings()
    req = request(memory_mib=1)
    pod = decorated(1, site)
    job_container(pod)["resources"]["limits"]["memory"] = "64Mi"
    with pytest.raises(PolicyError) as caught:
        verify_pod(pod, plain_templates(), site, req=req)
    assert "(64 MiB asked, 1 granted; raise RequestMemory" in str(caught.value)


def test_only_init_containers_with_the_prefix_are_helpers() -> None:
    """A kgahp- name on a running container or a sidecar is no helper: it counts for the job."""
    site = settings()
    req = request(memory_mib=1)
    for kind, extra in (("containers", {}), ("initContainers", {"restartPolicy": "Always"})):
        pod = decorated(1, site)
        moved = copy.deepcopy(helper(pod))
        moved.update(name="kgahp-other", **extra)
        pod["spec"].setdefault(kind, []).append(moved)
        with pytest.raises(PolicyError) as caught:
            verify_pod(pod, plain_templates(), site, req=req)
        assert "requests may not exceed what the job's" in str(caught.value)


def test_duplicate_container_names_are_refused() -> None:
    """verify_pod keys containers by name: a second `kgahp-stage-in` must not hide the first."""
    site = settings()
    pod = decorated(64, site)
    big = copy.deepcopy(helper(pod))
    big["resources"] = {"limits": {"memory": "1Ti"}}
    pod["spec"]["initContainers"].insert(0, big)
    with pytest.raises(PolicyError) as caught:
        verify_pod(pod, plain_templates(), site, req=request(memory_mib=64))
    assert "container names must be unique" in str(caught.value)


def test_a_patch_may_not_name_a_helper() -> None:
    site = settings(EXTRA_ARGS_FIELDS="initContainers")
    patch = {"initContainers": [{"name": "kgahp-stage-in", "image": "busybox:1.36",
                                 "resources": {"limits": {"memory": "64Mi"}}}]}
    req = request(memory_mib=1, extra_submit_args=json.dumps(patch))
    with pytest.raises(JobAdError) as caught:
        build_pod(req, site, plain_templates(), attempt=0)
    assert "reserved for kgahp's own containers" in str(caught.value)


def test_a_template_may_not_name_a_helper() -> None:
    templates = templates_from_data(
        {"spec": {"initContainers": [{"name": "kgahp-setup", "image": "busybox:1.36"}]}}, {})
    with pytest.raises(ConfigError) as caught:
        build_pod(request(), settings(), templates, attempt=0)
    assert "the pod template names a container 'kgahp-setup'" in str(caught.value)


def test_without_the_request_the_helper_is_held_to_its_budget_too() -> None:
    site = settings()
    pod = decorated(1, site)
    verify_pod(pod, plain_templates(), site)      # the caps-only check passes
    helper(pod)["resources"]["limits"]["memory"] = "1Gi"
    with pytest.raises(PolicyError):
        verify_pod(pod, plain_templates(), site)


def test_assemble_verifies_the_finished_pod() -> None:
    """build does not verify for assemble; the one check on the decorated pod still refuses
    what a patch widened."""
    site = settings(EXTRA_ARGS_FIELDS="containers")
    patch = {"containers": [{"name": "side", "image": "busybox:1.36",
                             "resources": {"limits": {"memory": "1Ti"}}}]}
    req = request(memory_mib=16, extra_submit_args=json.dumps(patch))
    with pytest.raises(PolicyError) as caught:
        assemble(req, site, plain_templates(), attempt=0, restarts=0, bundle=BUNDLE, creds={})
    assert "spec.containers.resources.requests[memory]" in str(caught.value)
