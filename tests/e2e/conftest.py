"""End-to-end fixtures: the installed kgahp executable, driven through the GAHP protocol as the
gridmanager drives it, against the simulated cluster over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import classad2
import pytest

from kgahp.driver import GahpDriver, condor_env


class Gahp:
    """A running kgahp plus what a test needs around it."""

    def __init__(self, sim: Any, tmp: Path, knobs: dict[str, str]) -> None:
        self.sim = sim
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.iwd = tmp / "iwd"
        self.iwd.mkdir(exist_ok=True)
        self.log = tmp / "KGahpLog"
        self.knobs = {
            "KUBECONFIG": sim.write_kubeconfig(str(tmp / "kubeconfig")),
            "STATE_DIR": str(tmp / "state"),
            "LOG": str(self.log),
            "DEBUG": "DEBUG",
            "DEFAULT_IMAGE": "busybox:1.36",
            "TRANSFER_MODE": "none",
            "IMAGE_PULL_GRACE": "1",
            "CONFIG_ERROR_GRACE": "1",
            "POD_RETENTION": "600",
            **knobs,
        }
        self.driver = self.start()

    def start(self) -> GahpDriver:
        driver = GahpDriver(env=condor_env(self.knobs), stderr=open(self.tmp / "stderr", "ab"))
        driver.handshake()
        self.driver = driver
        return driver

    def restart(self, kill: bool = True) -> GahpDriver:
        if kill:
            self.driver.kill()
        else:
            self.driver.close()
        return self.start()

    def ad(self, job_dir: str, **attrs: object) -> str:
        base: dict[str, object] = {
            "Cmd": "/bin/true", "Iwd": str(self.iwd), "JobDirectory": job_dir,
            "In": "/dev/null", "Out": f"{job_dir}.out", "Err": f"{job_dir}.err",
            "GridResource": "batch kubernetes", "gridtype": "kubernetes",
            "RequestMemory": 64, "StageCmd": False,
        }
        base.update(attrs)
        return repr(classad2.ClassAd(base))

    def submit(self, job_dir: str, **attrs: object) -> str:
        code, msg, job_id = self.driver.submit(self.ad(job_dir, **attrs))
        assert code == 0, msg
        return job_id

    def status(self, job_id: str) -> tuple[int, classad2.ClassAd]:
        code, msg, status, ad_text = self.driver.status(job_id)
        assert code == 0, msg
        return status, classad2.parseOne(ad_text)

    def wait_status(self, job_id: str, want: Callable[[int], bool] | set[int],
                    timeout: float = 60.0) -> tuple[int, classad2.ClassAd]:
        test = want if callable(want) else (lambda s: s in want)
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            status, ad = self.status(job_id)
            seen.append(status)
            if test(status):
                return status, ad
            if time.monotonic() > deadline:
                raise AssertionError(f"{job_id}: statuses seen {seen[-20:]}, last ad {ad}")
            time.sleep(0.2)

    def pods(self, namespace: str = "default") -> list[dict]:
        from kubernetes import client

        core = client.CoreV1Api(self.sim.api_client())
        items = core.list_namespaced_pod(
            namespace, label_selector="app.kubernetes.io/managed-by=kgahp").items
        return [core.api_client.sanitize_for_serialization(p) for p in items]

    def close(self) -> None:
        if self.driver.proc.poll() is None:
            self.driver.close()


@pytest.fixture
def make_gahp(sim: Any, tmp_path: Path) -> Iterator[Callable[..., Gahp]]:
    made: list[Gahp] = []

    def make(**knobs: str) -> Gahp:
        g = Gahp(sim, tmp_path / f"g{len(made)}", {k: str(v) for k, v in knobs.items()})
        made.append(g)
        return g

    yield make
    for g in made:
        g.close()


@pytest.fixture
def gahp(make_gahp: Callable[..., Gahp]) -> Gahp:
    return make_gahp()
