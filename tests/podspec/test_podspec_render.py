"""`kgahp render`, run as its own process (knobs come from HTCondor's configuration/env)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from podspec_support import EXAMPLES, assert_valid_pod, job_container

NEW_AD = ('[ Cmd = "/bin/echo"; Iwd = "/home/u"; Arguments = "hello \'big world\'"; '
          'Environment = "FOO=bar"; RequestMemory = 512; KubernetesImage = "busybox:1.36"; '
          'JobDirectory = "home_bl_127.0.0.1_19618_gridtest_vm_1.0_1795270358" ]')
OLD_AD = """Cmd = "/bin/echo"
Iwd = "/home/u"
Arguments = "hello 'big world'"
Environment = "FOO=bar"
RequestMemory = 512
KubernetesImage = "busybox:1.36"
JobDirectory = "home_bl_127.0.0.1_19618_gridtest_vm_1.0_1795270358"
"""


def render(args: list[str], *, stdin: str = "", **knobs: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("_CONDOR_KGAHP_")}
    env.update({f"_CONDOR_KGAHP_{k}": v for k, v in knobs.items()})
    code = "import sys; from kgahp.render import main; raise SystemExit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def documents(result: subprocess.CompletedProcess[str]) -> list[Any]:
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def pod_from(result: subprocess.CompletedProcess[str]) -> Any:
    pod = documents(result)[0]
    assert pod["kind"] == "Pod"
    return pod


def test_renders_a_new_syntax_ad_file(tmp_path: Path) -> None:
    ad = tmp_path / "job.ad"
    ad.write_text(NEW_AD)
    pod = pod_from(render([str(ad)]))
    assert_valid_pod(pod)
    assert pod["metadata"]["name"].startswith("kg-gridtest-vm-1-0-")
    assert pod["metadata"]["name"].endswith("-0")     # a job's first pod is attempt 0
    container = job_container(pod)
    # what the GAHP creates: the wrapper runs the staged Cmd with the job's arguments
    assert container["args"][-2:] == ["hello", "big world"]
    assert container["args"][1].endswith("/echo")
    assert {"name": "FOO", "value": "bar"} in container["env"]
    assert container["resources"]["requests"]["memory"] == "512Mi"
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["kgahp-stage-in"]


def test_old_syntax_on_stdin_gives_the_same_pod(tmp_path: Path) -> None:
    ad = tmp_path / "job.ad"
    ad.write_text(NEW_AD)
    assert pod_from(render(["-"], stdin=OLD_AD)) == pod_from(render([str(ad)]))


def test_the_secrets_follow_the_pod_redacted_and_owned_by_it(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("secret words\n")
    proxy = tmp_path / "x509up"
    proxy.write_text("-----BEGIN CERTIFICATE-----\nMARKER\n")
    proxy.chmod(0o600)
    ad = NEW_AD.replace('Iwd = "/home/u"', f'Iwd = "{tmp_path}"; TransferInput = "in.txt"; '
                        f'x509userproxy = "{proxy}"')
    result = render(["-"], stdin=ad)
    pod, *secrets = documents(result)
    name = pod["metadata"]["name"]
    assert [s["metadata"]["name"] for s in secrets] == [f"{name}-input", f"{name}-proxy"]
    assert "secret words" not in result.stdout and "MARKER" not in result.stdout
    for secret in secrets:
        assert secret["kind"] == "Secret"
        assert all(v.startswith("<redacted: ") for v in secret["data"].values())
        assert secret["metadata"]["ownerReferences"][0]["name"] == name
        assert secret["metadata"]["labels"]["kgahp.htcondor.org/job"] == \
            pod["metadata"]["labels"]["kgahp.htcondor.org/job"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["kgahp-input"]["secret"]["secretName"] == f"{name}-input"


@pytest.mark.parametrize("memory", [1, 16, 32])
def test_small_memory_jobs_render_with_the_helper_budget_apart(memory: int) -> None:
    pod = pod_from(render(["-"], stdin=NEW_AD.replace("RequestMemory = 512",
                                                      f"RequestMemory = {memory}")))
    resources = job_container(pod)["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == f"{memory}Mi"
    helper = pod["spec"]["initContainers"][0]["resources"]
    assert helper == {"requests": {"cpu": "10m", "memory": "16Mi"},
                      "limits": {"cpu": "100m", "memory": "64Mi"}}


def test_render_refuses_what_submit_refuses(tmp_path: Path) -> None:
    ad = NEW_AD.replace('Iwd = "/home/u"', f'Iwd = "{tmp_path}"; TransferInput = "gone.txt"')
    result = render(["-"], stdin=ad)
    assert result.returncode == 1 and result.stdout == ""
    assert "gone.txt" in result.stderr and "Traceback" not in result.stderr


def test_attempt_and_knobs_are_used() -> None:
    pod = pod_from(render(["--attempt", "3"], stdin=NEW_AD, NAMESPACE="batch",
                          POD_NAME_PREFIX="ce1",
                          POD_TEMPLATE=str(EXAMPLES / "pod-templates" / "payload.yaml")))
    assert pod["metadata"]["name"].startswith("ce1-") and pod["metadata"]["name"].endswith("-3")
    assert pod["metadata"]["namespace"] == "batch"
    assert job_container(pod)["volumeMounts"][0] == {"name": "scratch", "mountPath": "/scratch"}


def test_render_shows_the_tracking_finalizer_the_gahp_puts_on_its_pods() -> None:
    assert pod_from(render([], stdin=NEW_AD))["metadata"]["finalizers"] == [
        "kgahp.htcondor.org/collect"]
    off = pod_from(render([], stdin=NEW_AD, TRACKING_FINALIZER="false"))
    assert "finalizers" not in off["metadata"]


@pytest.mark.parametrize(("args", "stdin", "knobs", "message"), [
    (["/nonexistent/job.ad"], "", {}, "Cannot read /nonexistent/job.ad"),
    (["-"], "", {}, "The submit ad is empty"),
    (["-"], "[ Cmd = ", {}, "not valid ClassAd syntax"),
    (["-"], NEW_AD, {"ALLOWED_IMAGES": "registry.example.org/*"}, "KubernetesImage is not allowed"),
    (["-"], NEW_AD.replace('KubernetesImage = "busybox:1.36"; ', ""), {}, "No container image"),
    (["-"], NEW_AD, {"POD_TEMPLATE": "/nonexistent/pod.yaml"}, "cannot be read"),
    (["--attempt", "-1", "-"], NEW_AD, {}, "--attempt must be between"),
])
def test_errors_are_one_sentence_on_stderr(args: list[str], stdin: str, knobs: dict[str, str],
                                           message: str) -> None:
    result = render(args, stdin=stdin, **knobs)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_server_dry_run_is_accepted_and_creates_nothing(sim: Any, sim_kubeconfig: str) -> None:
    result = render(["--server-dry-run", "-"], stdin=NEW_AD, KUBECONFIG=sim_kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "# server dry run: accepted by the API server in namespace default" in result.stdout
    from kubernetes import client

    pods = client.CoreV1Api(sim.api_client()).list_namespaced_pod("default")
    assert pods.items == []


def test_server_dry_run_reports_the_api_refusal(sim: Any, sim_kubeconfig: str) -> None:
    result = render(["--server-dry-run", "-"], stdin=NEW_AD, KUBECONFIG=sim_kubeconfig,
                    NAMESPACE="no-such-namespace")
    assert result.returncode == 1
    assert "The API server refused the pod" in result.stderr
    assert "no-such-namespace" in result.stderr


def test_server_dry_run_without_a_cluster_is_one_sentence(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    result = render(["--server-dry-run", "-"], stdin=NEW_AD, KUBECONFIG=str(kubeconfig),
                    API_TIMEOUT="5")
    assert result.returncode == 1
    assert "could not be reached" in result.stderr
    assert "not-a-real-token" not in result.stderr
