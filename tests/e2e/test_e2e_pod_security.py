"""Jobs in a namespace that enforces Pod Security "restricted" (issue 13), end to end through the
real kgahp executable. busybox's own user is root, so the simulated kubelet is told so: only a
numeric non-root user (KGAHP_RUN_AS_USER) lets it start under runAsNonRoot, as on a real node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from harness import RUN, TEST_IMAGE
from kubernetes import client

from kgahp.model import COMPLETED, HELD

NS = f"psa-restricted-{RUN}"      # unique: a real cluster may still be deleting a previous one
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted",
              "pod-security.kubernetes.io/enforce-version": "latest",
              "pod-security.kubernetes.io/warn": "restricted"}
JOB = """\
#!/bin/sh
echo "input: $(cat in.txt)"
echo "made" > result.txt
exit 3
"""


@pytest.fixture
def restricted_ns(sim: Any) -> Iterator[str]:
    core = client.CoreV1Api(sim.api_client())
    core.create_namespace({"metadata": {"name": NS, "labels": RESTRICTED}})
    if getattr(sim, "is_sim", False):
        sim.config.root_images = ("busybox", "busybox:*")   # what busybox really is
    try:
        yield NS
    finally:
        core.delete_namespace(NS)


def _write(path: str, text: str, mode: int = 0o644) -> None:
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def test_jobs_run_in_a_restricted_namespace(make_gahp, restricted_ns):
    g = make_gahp(NAMESPACE=restricted_ns, TRANSFER_MODE="api")
    iwd = str(g.iwd)
    _write(f"{iwd}/job.sh", JOB, 0o755)
    _write(f"{iwd}/in.txt", "hello\n")
    ok = g.submit("psa_ok_1.0", Cmd="/bin/sh", Arguments="-c 'exit 0'",
                  KubernetesImage=TEST_IMAGE)
    code = g.submit("psa_code_1.0", Cmd="/bin/sh", Arguments="-c 'exit 7'",
                    KubernetesImage=TEST_IMAGE)
    files = g.submit("psa_files_1.0", Cmd=f"{iwd}/job.sh", StageCmd=True,
                     KubernetesImage=TEST_IMAGE, Out="files.out", Err="files.err",
                     TransferInput="in.txt", TransferOutput="result.txt")
    for job_id, exit_code in ((ok, 0), (code, 7), (files, 3)):
        _, ad = g.wait_status(job_id, {COMPLETED, HELD}, timeout=60)
        assert ad.eval("JobStatus") == COMPLETED, ad.get("HoldReason")
        assert ad.eval("ExitCode") == exit_code
    assert open(f"{iwd}/files.out").read() == "input: hello\n"
    assert open(f"{iwd}/result.txt").read() == "made\n"
    pods = g.pods(restricted_ns)
    assert len(pods) == 3
    for pod in pods:
        context = pod["spec"]["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 65532
        assert context["fsGroup"] == 65532
        for container in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_template_that_breaks_restricted_is_refused_with_the_api_servers_message(
        make_gahp, restricted_ns, tmp_path):
    template = tmp_path / "pod.yaml"
    template.write_text(yaml.safe_dump({"spec": {"containers": [
        {"name": "job", "securityContext": {"allowPrivilegeEscalation": True}}]}}))
    g = make_gahp(NAMESPACE=restricted_ns, POD_TEMPLATE=str(template))
    code, message, _ = g.driver.submit(g.ad("psa_bad_1.0", Cmd="/bin/true"))
    assert code != 0
    assert f"Kubernetes refused pod {restricted_ns}/" in message
    assert ('violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false '
            '(container "job" must set securityContext.allowPrivilegeEscalation=false)') in message
    assert g.pods(restricted_ns) == []


def test_without_a_user_a_root_image_is_held_with_the_kubelets_reason(make_gahp, restricted_ns,
                                                                      tmp_path, sim):
    # busybox's own user is root: a real kubelet reads that from the image, the simulator is told
    # (the fixture above; a separately started one by `kgahp sim --root-image 'busybox*'`)
    template = tmp_path / "pod.yaml"
    template.write_text(yaml.safe_dump({"spec": {"securityContext": {"runAsNonRoot": True}}}))
    g = make_gahp(NAMESPACE=restricted_ns, POD_TEMPLATE=str(template), RUN_AS_USER="image",
                  RUN_AS_GROUP="image")
    job_id = g.submit("psa_root_1.0", Cmd="/bin/true", KubernetesImage=TEST_IMAGE)
    _, ad = g.wait_status(job_id, {HELD, COMPLETED}, timeout=60)
    assert ad.eval("JobStatus") == HELD
    assert "container has runAsNonRoot and image will run as root" in ad.eval("HoldReason")
