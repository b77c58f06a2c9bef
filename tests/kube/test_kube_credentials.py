"""Credentials that change under a running kgahp, against the sim: a ServiceAccount-style token
that expires, a token file the "kubelet" rotates (projected-volume symlink swap), the in-cluster
set-up (KUBERNETES_SERVICE_HOST, the ServiceAccount token and CA, https) and the one retry on 401.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import self_signed_certificate

from kgahp.config import KubeSettings
from kgahp.errors import ApiError, ConfigError, TransientApiError
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client
from kgahp_sim import SimCluster, SimConfig
from kgahp_sim.tokens import revoke, write_projected


def _token_kubeconfig(sim: Any, path: Path, token_file: Path) -> str:
    doc = sim.kubeconfig_dict()
    doc["users"][0]["user"] = {"tokenFile": str(token_file)}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _rotate(sim: Any, directory: Path, ttl: float | None = 60.0) -> str:
    token = sim.issue_token(ttl)
    write_projected(directory, {"token": token})
    return token


@pytest.fixture
def token_sim(sim: Any) -> Any:
    sim.require_sim("issues and expires tokens")
    return sim


def test_rotated_token_file_is_used_without_a_failed_call(token_sim, tmp_path):
    sa = tmp_path / "sa"
    old = _rotate(token_sim, sa)
    kube = Kube(api_client(KubeSettings(kubeconfig=_token_kubeconfig(
        token_sim, tmp_path / "kubeconfig", sa / "token"))), KubeSettings())
    assert kube.list_pods("default", "")[0] == []
    # the kubelet rotates the file and the old token stops working at once; the next call,
    # within the one-second stat throttle, gets 401, re-reads the file and succeeds
    _rotate(token_sim, sa)
    token_sim.call(lambda: revoke(token_sim.config, old))
    before = kube.requests
    assert kube.list_pods("default", "")[0] == []
    assert kube.requests - before == 2           # the 401, then the retry with the new token
    time.sleep(1.1)                               # after the throttle: picked up before sending
    newer = _rotate(token_sim, sa)
    before = kube.requests
    assert kube.list_pods("default", "")[0] == []
    assert kube.requests - before == 1
    assert kube.api_client.configuration.api_key["BearerToken"] == "Bearer " + newer


def test_expired_token_with_nothing_new_fails_once_with_401(token_sim, tmp_path):
    sa = tmp_path / "sa"
    _rotate(token_sim, sa, ttl=1.0)
    kube = Kube(api_client(KubeSettings(kubeconfig=_token_kubeconfig(
        token_sim, tmp_path / "kubeconfig", sa / "token"))), KubeSettings(),
        retry_deadline=2)
    kube.list_pods("default", "")
    time.sleep(1.2)
    before = kube.requests
    with pytest.raises(ApiError) as err:
        kube.list_pods("default", "")
    assert err.value.status == 401 and not isinstance(err.value, TransientApiError)
    assert kube.requests - before == 1            # no retry: the token file had nothing new


def test_exec_plugin_kubeconfig_is_reloaded_on_401(token_sim, tmp_path):
    """An exec credential plugin is run again when its token is refused."""
    current = tmp_path / "current-token"
    current.write_text(token_sim.issue_token(60))
    plugin = tmp_path / "plugin.sh"
    plugin.write_text('#!/bin/sh\nprintf \'{"apiVersion": "client.authentication.k8s.io/v1", '
                      '"kind": "ExecCredential", "status": {"token": "%s"}}\' '
                      f'"$(cat {current})"\n')
    plugin.chmod(0o755)
    doc = token_sim.kubeconfig_dict()
    doc["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                        "command": str(plugin), "interactiveMode": "Never"}}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    kube = Kube(api_client(KubeSettings(kubeconfig=str(path))), KubeSettings())
    assert kube.list_pods("default", "")[0] == []
    old = current.read_text()
    current.write_text(token_sim.issue_token(60))
    token_sim.call(lambda: revoke(token_sim.config, old))
    before = kube.requests
    assert kube.list_pods("default", "")[0] == []
    assert kube.requests - before == 2


# ----- in-cluster -----------------------------------------------------------------------------
@pytest.fixture
def tls_sim(tmp_path: Path, sim: Any) -> Any:
    sim.require_sim("serves https with its own CA")
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    cluster = SimCluster(SimConfig(workdir=str(tmp_path / "tls-sim")), ssl_context=context)
    cluster.start()
    cluster.ca = cert   # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        cluster.stop()


def test_in_cluster_uses_the_serviceaccount_and_follows_its_rotation(tls_sim, tmp_path,
                                                                     monkeypatch):
    sa = tmp_path / "serviceaccount"
    old = tls_sim.issue_token(60)
    write_projected(sa, {"token": old, "ca.crt": tls_sim.ca.read_text(),
                         "namespace": "default"})
    environ = {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
               "KUBERNETES_SERVICE_PORT": str(tls_sim.port)}
    monkeypatch.setenv("HOME", str(tmp_path))          # no ~/.kube/config: in-cluster chosen
    monkeypatch.delenv("KUBECONFIG", raising=False)
    kube = Kube(api_client(KubeSettings(), environ=environ, serviceaccount_dir=str(sa)),
                KubeSettings())
    assert kube.api_client.configuration.host == f"https://127.0.0.1:{tls_sim.port}"
    assert kube.list_pods("default", "")[0] == []
    write_projected(sa, {"token": tls_sim.issue_token(60), "ca.crt": tls_sim.ca.read_text(),
                         "namespace": "default"})
    tls_sim.call(lambda: revoke(tls_sim.config, old))
    for _ in range(3):
        assert kube.list_pods("default", "")[0] == []


def test_in_cluster_without_a_token_is_a_clear_config_error(tmp_path):
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match="no ServiceAccount token at"):
        api_client(KubeSettings(kubeconfig="in-cluster"), environ=environ,
                   serviceaccount_dir=str(tmp_path))
