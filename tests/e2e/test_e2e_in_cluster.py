"""kgahp inside a pod, end to end: the real executable with no kubeconfig at all (no knob, no
$KUBECONFIG, no ~/.kube/config) and KUBERNETES_SERVICE_HOST/PORT set, so it talks https to the
API with the ServiceAccount token and CA at /var/run/secrets/kubernetes.io/serviceaccount, as a CE
in a pod (deploy/in-cluster-ce/) does. The kubelet's hourly rotation is played by swapping the
projected volume's `..data` link while the sim revokes the old token at once; no call may fail.

The ServiceAccount directory is put in place for the kgahp process only: it runs in a mount
namespace of its own (`unshare -m`, root needed) with a private tmpfs on /run, where
/run/secrets/kubernetes.io/serviceaccount links to the test's directory. Nothing outside that
process sees it; without `unshare` or root the test is skipped, saying so.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Gahp, self_signed_certificate

from kgahp.model import COMPLETED, RUNNING
from kgahp.testing import GahpDriver, condor_env
from kgahp_sim import SimCluster, SimConfig
from kgahp_sim.tokens import revoke, write_projected

SA_MOUNT = "/run/secrets/kubernetes.io/serviceaccount"   # /var/run is /run
_IN_NAMESPACE = ('mount -t tmpfs kgahp-test-run /run && mkdir -p "${0%/*}" && '
                 'ln -s "$KGAHP_TEST_SA" "$0" && exec "$@"')


def _namespaces_work() -> str:
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            _IN_NAMESPACE, SA_MOUNT, "test", "-d", SA_MOUNT],
                           env={"KGAHP_TEST_SA": "/", "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=30)
    return "" if probe.returncode == 0 else f"a private mount namespace is refused: " \
        f"{probe.stderr.strip()[:200]}"


WHY_NOT = _namespaces_work()
pytestmark = pytest.mark.skipif(bool(WHY_NOT), reason=f"needs root and unshare -m: {WHY_NOT}")


@pytest.fixture
def tls_sim(tmp_path: Path, sim: Any) -> Iterator[Any]:
    sim.require_sim("serves https with its own CA and issues tokens")
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    cluster = SimCluster(SimConfig(workdir=str(tmp_path / "tls-sim"), schedule_delay=0.01,
                                   start_delay=0.05, bookmark_interval=1.0),
                         ssl_context=context)
    cluster.is_sim = True  # type: ignore[attr-defined]
    cluster.start()
    cluster.ca = cert  # type: ignore[attr-defined]
    try:
        yield cluster
    finally:
        cluster.stop()


class InClusterGahp(Gahp):
    """A Gahp whose process sees `sa_dir` as its pod's ServiceAccount volume."""

    def __init__(self, sim: Any, tmp: Path, sa_dir: Path, home: Path) -> None:
        self.sa_dir = sa_dir
        self.home = home
        super().__init__(sim, tmp, {"KUBECONFIG": ""})

    def start(self) -> GahpDriver:
        env = condor_env(self.knobs)
        env.pop("KUBECONFIG", None)
        env.update({"HOME": str(self.home), "KGAHP_TEST_SA": str(self.sa_dir),
                    "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                    "KUBERNETES_SERVICE_PORT": str(self.sim.port)})
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", _IN_NAMESPACE,
                SA_MOUNT, sys.executable, "-m", "kgahp"]
        with open(self.stderr_path, "ab") as err:
            driver = GahpDriver(env=env, argv=argv, stderr=err)
        driver.handshake()
        self.driver = driver
        self.starts += 1
        return driver


def _project(sa: Path, sim: Any, token: str) -> None:
    write_projected(sa, {"token": token, "ca.crt": sim.ca.read_text(), "namespace": "default"})


def test_in_a_pod_kgahp_uses_the_serviceaccount_and_survives_its_rotation(
        tls_sim: Any, tmp_path: Path) -> None:
    sa, home = tmp_path / "serviceaccount", tmp_path / "home"
    home.mkdir()
    token = tls_sim.issue_token(3600)
    _project(sa, tls_sim, token)
    gahp = InClusterGahp(tls_sim, tmp_path / "gahp", sa, home)
    try:
        first = gahp.submit("incluster_1.0", KubernetesImage="sim.invalid/ok:3s")
        gahp.wait_status(first, {RUNNING})
        for round_ in range(3):            # three rotations, each revoking the old token
            old, token = token, tls_sim.issue_token(3600)
            _project(sa, tls_sim, token)
            tls_sim.call(lambda old=old: revoke(tls_sim.config, old))
            job = gahp.submit(f"incluster_{round_ + 2}.0", KubernetesImage="sim.invalid/ok:300ms")
            _, ad = gahp.wait_status(job, {COMPLETED}, timeout=60)
            assert ad.eval("ExitCode") == 0
        _, ad = gahp.wait_status(first, {COMPLETED}, timeout=60)
        assert ad.eval("ExitCode") == 0
        assert gahp.driver.proc.poll() is None
    finally:
        gahp.close()
    log = gahp.log.read_text()
    # the token the process read is the pod's ServiceAccount file, and it followed each swap
    assert log.count("bearer token file /var/run/secrets/kubernetes.io/serviceaccount/token "
                     "changed; using the new token") >= 3
    assert token not in log and token not in gahp.stderr_path.read_text()
    assert "Traceback" not in gahp.stderr_path.read_text()
    assert not (home / ".kube").exists()           # nothing fell back to a kubeconfig


def test_without_the_mount_namespace_nothing_is_left_on_the_host() -> None:
    assert not Path(SA_MOUNT).is_symlink()
