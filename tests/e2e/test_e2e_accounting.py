"""What a job is granted and what HTCondor's accounting sees (issue 12, items 5 and 6), end to end
through the real kgahp executable and the simulator's real local processes:
small jobs run with exactly what they asked for (helper containers are budgeted apart),
`kgahp render` prints what submit creates, a job that ended between two polls is still seen
RUNNING once, and RemoteUserCpu/RemoteSysCpu are what the job burned."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import TEST_IMAGE, Gahp, exits, wait_until

from kgahp.model import COMPLETED, RUNNING
from kgahp.testing import condor_env

HELPER = {"requests": {"cpu": "10m", "memory": "16Mi"},
          "limits": {"cpu": "100m", "memory": "64Mi"}}
BURN_SECONDS = 2.0
# Burns CPU in the shell itself until its own /proc/<pid>/stat shows BURN_SECONDS of user+system
# time (fields 14 and 15, in clock ticks of 1/100 s), then prints what it measured, in seconds.
# Plain sh and /proc: runs in the test image on a real node as on the simulator's host.
BURN = f"""#!/bin/sh
want={int(BURN_SECONDS * 100)}
i=0
while :; do
    i=$((i + 1))
    if [ $((i % 5000)) -eq 0 ]; then
        set -- $(cat /proc/$$/stat)
        [ $((${{14}} + ${{15}})) -ge $want ] && break
    fi
done
set -- $(cat /proc/$$/stat)
t=$((${{14}} + ${{15}}))
printf '%d.%02d\\n' $((t / 100)) $((t % 100))
"""


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _raw(sim: Any, kind: str, namespace: str = "default") -> list[dict[str, Any]]:
    """Objects exactly as the API serves them (no client model in between)."""
    from kubernetes import client

    core = client.CoreV1Api(sim.api_client())
    call = core.list_namespaced_pod if kind == "pods" else core.list_namespaced_secret
    resp = call(namespace, label_selector="app.kubernetes.io/managed-by=kgahp",
                _preload_content=False)
    return list(json.loads(resp.data)["items"])


@pytest.mark.parametrize("memory", [8, 16, 32])   # 1 MiB: no runtime starts a shell in it
def test_small_jobs_in_api_mode_run_with_exactly_what_they_asked(make_gahp, memory: int):
    g: Gahp = make_gahp(TRANSFER_MODE="api")
    _write(g.iwd / "in.txt", "small input\n")
    _write(g.iwd / "small.sh", "#!/bin/sh\ncat in.txt\n", 0o755)
    job_id = g.submit(f"small{memory}_1.0", Cmd=str(g.iwd / "small.sh"), StageCmd=True,
                      KubernetesImage=TEST_IMAGE, RequestMemory=memory, RequestCpus=1,
                      TransferInput="in.txt", Out="small.out")
    _, ad = g.wait_status(job_id, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    assert (g.iwd / "small.out").read_text() == "small input\n"
    (pod,) = _raw(g.sim, "pods")
    job = next(c for c in pod["spec"]["containers"] if c["name"] == "job")
    assert job["resources"] == {"requests": {"cpu": "1", "memory": f"{memory}Mi"},
                                "limits": {"cpu": "1", "memory": f"{memory}Mi"}}
    (stage_in,) = pod["spec"]["initContainers"]
    assert stage_in["name"] == "kgahp-stage-in" and stage_in["resources"] == HELPER


def _assert_within(rendered: Any, stored: Any, where: str = "") -> None:
    """Everything render printed is in the stored object, unchanged; lists match element by
    element (the API server only adds defaults and its own metadata)."""
    if isinstance(rendered, dict):
        assert isinstance(stored, dict), where
        for key, value in rendered.items():
            assert key in stored, f"{where}.{key} is not in what the GAHP created"
            _assert_within(value, stored[key], f"{where}.{key}")
    elif isinstance(rendered, list):
        assert isinstance(stored, list) and len(rendered) == len(stored), where
        for i, (a, b) in enumerate(zip(rendered, stored)):
            _assert_within(a, b, f"{where}[{i}]")
    else:
        assert rendered == stored, f"{where}: rendered {rendered!r}, created {stored!r}"


def test_render_prints_exactly_what_submit_creates(make_gahp, tmp_path):
    g: Gahp = make_gahp(TRANSFER_MODE="api")
    _write(g.iwd / "in.txt", "render me\n")
    _write(g.iwd / "job.sh", "#!/bin/sh\nsleep 30\n", 0o755)
    proxy = tmp_path / "x509up"
    _write(proxy, "-----BEGIN CERTIFICATE-----\nMARKER-0badc0de\n", 0o600)
    attrs: dict[str, object] = {
        "Cmd": str(g.iwd / "job.sh"), "StageCmd": True, "KubernetesImage": "busybox:1.36",
        "TransferInput": "in.txt", "x509userproxy": str(proxy), "RequestMemory": 16,
        "Arguments": "'two words' $(x)", "Environment": "A=1 B='x y'"}
    g.submit("render_1.0", **attrs)
    wait_until(lambda: len(_raw(g.sim, "secrets")) == 2, 30, "the job's two Secrets")
    result = subprocess.run([sys.executable, "-m", "kgahp", "render", "-"],
                            input=g.ad("render_1.0", **attrs), env=condor_env(g.knobs),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "MARKER-0badc0de" not in result.stdout and "render me" not in result.stdout
    pod, *secrets = yaml.safe_load_all(result.stdout)
    # items of a list carry no apiVersion/kind (as from a real API server)
    assert (pod.pop("apiVersion"), pod.pop("kind")) == ("v1", "Pod")
    for secret in secrets:
        assert (secret.pop("apiVersion"), secret.pop("kind")) == ("v1", "Secret")
    (created,) = _raw(g.sim, "pods")
    assert pod["metadata"]["name"] == created["metadata"]["name"]       # attempt 0, as submit
    _assert_within(pod, created, "pod")
    assert set(pod["metadata"]["labels"]) == set(created["metadata"]["labels"])
    assert set(pod["spec"]) >= {"containers", "initContainers", "volumes"}
    stored = {s["metadata"]["name"]: s for s in _raw(g.sim, "secrets")}
    assert sorted(stored) == sorted(s["metadata"]["name"] for s in secrets)
    for secret in secrets:
        real = stored[secret["metadata"]["name"]]
        owner = secret["metadata"]["ownerReferences"][0]
        assert owner["name"] == created["metadata"]["name"]
        owner["uid"] = created["metadata"]["uid"]                    # known only once created
        sizes = {k: f"<redacted: {len(base64.b64decode(v))} bytes>"
                 for k, v in real["data"].items()}
        assert secret.pop("data") == sizes
        _assert_within(secret, real, f"secret {secret['metadata']['name']}")


def test_a_job_shorter_than_one_poll_is_seen_running_once(gahp):
    job_id = gahp.submit("short_1.0", **exits(3))
    wait_until(lambda: any((p.get("status") or {}).get("phase") == "Failed"
                           for p in gahp.pods()), 30, "the pod to finish")
    time.sleep(1.0)                  # the GAHP has collected the result by now
    seen = gahp.poll(job_id, interval=1.0, timeout=30)
    assert [s for s, _ in seen] == [RUNNING, COMPLETED]
    assert seen[0][1].get("WorkerNode") and seen[-1][1].eval("ExitCode") == 3
    # once COMPLETED was answered it stays the answer, after a restart too
    assert gahp.status(job_id)[0] == COMPLETED
    wait_until(lambda: gahp.answer_recorded(job_id), 10, "the answer to be recorded")
    gahp.restart()
    status, ad = gahp.status(job_id)
    assert status == COMPLETED and ad.eval("ExitCode") == 3
    # `none` transfer mode runs no wrapper: no CPU figures, rather than made-up ones
    assert "RemoteUserCpu" not in ad and "RemoteSysCpu" not in ad


@pytest.mark.parametrize("mode", ["api", "shared"])
def test_cpu_seconds_of_the_job_are_reported(make_gahp, sim, tmp_path, mode: str):
    if mode == "shared":
        sim.require_sim("simulator only: the shared volume is a host path of this machine")
    shared = tmp_path / "shared"
    shared.mkdir()
    knobs = {"TRANSFER_MODE": mode}
    if mode == "shared":
        knobs["SHARED_VOLUME"] = f"hostPath:{shared}"
    g: Gahp = make_gahp(**knobs)
    iwd = shared / "job" if mode == "shared" else g.iwd
    _write(iwd / "burn.sh", BURN, 0o755)
    job_id = g.submit(f"burn{mode}_1.0", Cmd=str(iwd / "burn.sh"), Iwd=str(iwd),
                      StageCmd=True, KubernetesImage=TEST_IMAGE, Out="burn.out")
    _, ad = g.wait_status(job_id, {COMPLETED}, timeout=120)
    assert ad.eval("ExitCode") == 0
    reported = ad.eval("RemoteUserCpu") + ad.eval("RemoteSysCpu")
    own = float((iwd / "burn.out").read_text())      # what the payload measured of itself
    assert own >= BURN_SECONDS
    assert abs(reported - BURN_SECONDS) <= 0.2 * BURN_SECONDS, (reported, own)
    assert abs(reported - own) <= 0.2 * own, (reported, own)
    assert "RemoteWallClockTime" not in ad        # the gridmanager measures wall time itself
    assert os.path.exists(iwd / "burn.out")
