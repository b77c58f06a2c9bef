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


def pod_from(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_renders_a_new_syntax_ad_file(tmp_path: Path) -> None:
    ad = tmp_path / "job.ad"
    ad.write_text(NEW_AD)
    pod = pod_from(render([str(ad)]))
    assert_valid_pod(pod)
    assert pod["metadata"]["name"].startswith("kg-gridtest-vm-1-0-")
    assert pod["metadata"]["name"].endswith("-1")
    container = job_container(pod)
    assert container["args"] == ["hello", "big world"]
    assert container["env"] == [{"name": "FOO", "value": "bar"}]
    assert container["resources"]["requests"]["memory"] == "512Mi"


def test_old_syntax_on_stdin_gives_the_same_pod(tmp_path: Path) -> None:
    ad = tmp_path / "job.ad"
    ad.write_text(NEW_AD)
    assert pod_from(render(["-"], stdin=OLD_AD)) == pod_from(render([str(ad)]))


def test_attempt_and_knobs_are_used() -> None:
    pod = pod_from(render(["--attempt", "3"], stdin=NEW_AD, NAMESPACE="batch",
                          POD_NAME_PREFIX="ce1",
                          POD_TEMPLATE=str(EXAMPLES / "pod-templates" / "payload.yaml")))
    assert pod["metadata"]["name"].startswith("ce1-") and pod["metadata"]["name"].endswith("-3")
    assert pod["metadata"]["namespace"] == "batch"
    assert job_container(pod)["volumeMounts"] == [{"name": "scratch", "mountPath": "/scratch"}]


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
