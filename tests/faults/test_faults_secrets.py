"""Secrets stay secret: a job's X.509 proxy and a token in its environment never show up in
kgahp's log or stderr, nor in any world-readable file kgahp wrote, nor in a submit/status
message; the proxy reaches the cluster only as the job's Secret, never inside the pod object.
Exercised on the ordinary path and on the error paths (refused submits, unreadable proxy,
failed API calls, refresh), since those are where secrets usually leak."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any, Callable

import pytest
from harness import Gahp, files_under, managed_objects, wait_until, world_readable

from kgahp.model import COMPLETED, RUNNING


def _marker() -> str:
    return f"MARKER-{secrets.token_hex(4)}"


def _proxy_text(marker: str) -> str:
    body = base64.b64encode((marker * 8).encode()).decode()
    return f"-----BEGIN CERTIFICATE-----\n{marker}\n{body}\n-----END CERTIFICATE-----\n"


@pytest.mark.timeout(120)
def test_proxy_and_token_never_leak(make_gahp: Callable[..., Gahp], fsim: Any,
                                    tmp_path: Path) -> None:
    proxy_marker, token_marker, renewed_marker = _marker(), _marker(), _marker()
    markers = (proxy_marker, token_marker, renewed_marker)
    gahp = make_gahp(ALLOWED_IMAGES="sim.invalid/*,busybox:*")
    proxy = gahp.iwd / "x509up_u1000"
    proxy.write_text(_proxy_text(proxy_marker))
    proxy.chmod(0o600)
    token_env = f"BEARER_TOKEN={token_marker}"

    # the ordinary path: submit, run, refresh the proxy, finish
    job_id = gahp.submit("secret_run.0", KubernetesImage="sim.invalid/sleep",
                         x509userproxy=str(proxy), Environment=token_env)
    gahp.wait_status(job_id, {RUNNING})
    proxy.write_text(_proxy_text(renewed_marker))
    assert gahp.driver.refresh_proxy(job_id, str(proxy)) == (0, "Proxy renewed")
    done = gahp.submit("secret_done.0", KubernetesImage="sim.invalid/exit2:200ms",
                       x509userproxy=str(proxy), Environment=token_env)
    gahp.wait_status(done, {COMPLETED})

    # the error paths: every message must be free of secrets too
    messages: list[str] = []
    for attrs in (
        {"KubernetesImage": "evil.example/x", "x509userproxy": str(proxy),
         "Environment": token_env},                                  # policy refusal
        {"KubernetesNamespace": "kube-system", "Environment": token_env},
        {"RequestCpus": "lots", "Environment": token_env},           # wrong type
        {"x509userproxy": str(gahp.iwd / "missing"), "Environment": token_env},
        {"Environment": f"{token_env} BAD", "Arguments": token_marker, "Cmd": 3},
    ):
        code, msg, _ = gahp.driver.submit(gahp.ad("secret_bad.0", **attrs))
        assert code != 0, (attrs, msg)
        messages.append(msg)
    fsim.faults.add(method="PATCH", path="/secrets/", status=403, times=5)
    code, msg = gahp.driver.refresh_proxy(job_id, str(proxy))
    messages.append(msg)
    fsim.faults.add(method="POST", path=r"/pods$", status=422, times=1)
    messages.append(gahp.driver.submit(gahp.ad("secret_422.0", x509userproxy=str(proxy),
                                               Environment=token_env))[1])
    fsim.faults.clear()
    messages.append(" ".join(str(x) for x in gahp.driver.status(job_id)))
    for message in messages:
        assert not any(m in message for m in markers), message

    # the cluster: the proxy only in the Secret, never in the pod object
    pods = managed_objects(fsim, "pods")
    assert pods and not any(m in json.dumps(p) for p in pods for m in (proxy_marker,
                                                                        renewed_marker))
    kept = [s for s in managed_objects(fsim, "secrets") if s["metadata"]["name"].endswith(
        "-proxy")]
    assert any(renewed_marker in base64.b64decode(s["data"]["x509up"]).decode()
               for s in kept)

    assert gahp.driver.cancel(job_id) == (0, "No error")
    gahp.close()     # stderr and the log are complete once kgahp has exited

    # every file kgahp wrote: logs and stderr never hold a secret; anything else that does
    # (the state store keeps the submit ad, environment included) is readable by the owner only
    own = {proxy, gahp.iwd / "secret_run.0.out", gahp.iwd / "secret_run.0.err",
           gahp.iwd / "secret_done.0.out", gahp.iwd / "secret_done.0.err"}
    checked = 0
    private_hits = []
    for path in files_under(gahp.tmp):
        if path in own or path.name == "kubeconfig":
            continue
        data = path.read_bytes()
        checked += 1
        hits = [m for m in markers if m.encode() in data
                or base64.b64encode(m.encode()) in data]
        if path in (gahp.log, gahp.stderr_path):
            assert not hits, f"{path.name} holds {hits}"
        elif hits:
            assert not world_readable(path, tmp_path), f"{path} is world-readable with {hits}"
            private_hits.append(path)
    # the scan does see secrets: the state store keeps the submit ad (token included), 0600
    assert any(gahp.state in p.parents for p in private_hits), private_hits
    assert checked >= 2 and gahp.log.stat().st_size > 0
    assert not world_readable(gahp.log, tmp_path)
    wait_until(lambda: not any(job_id.split("/")[2] in p["metadata"]["name"]
                               for p in managed_objects(fsim, "pods")), 30, "the cancel")
