"""`kgahp provision` against the simulated cluster, with demand and startd ads from snapshot
files: pods appear within the caps and the creation rate, failing pilots back off, unclaimed
pilots go after the grace while busy ones stay, and a provisioner killed with SIGKILL and started
again creates no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from provision_support import startd

from kgahp.config import settings_from_mapping
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client
from kgahp.podspec import load_templates
from kgahp.provision.cycle import Provisioner
from kgahp.provision.shapes import load_shapes
from kgahp.testing import condor_env

SELECTOR = "kgahp.htcondor.org/role=pilot,kgahp.htcondor.org/instance=pilots"
REQ = ('(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk)'
       ' && (TARGET.Memory >= RequestMemory) && (TARGET.HasFileTransfer)')


def jobs_text(n: int, cpus: int = 1) -> str:
    return "\n".join(f"ClusterId = 7\nProcId = {i}\nJobStatus = 1\nJobUniverse = 5\n"
                     f'Owner = "alice"\nRequestCpus = {cpus}\nRequestMemory = 1024\n'
                     f"RequestDisk = 10000\nRequirements = {REQ}\n" for i in range(n))


class Setup:
    """Files an admin would write, and a provisioner built on them as `kgahp provision` does."""

    def __init__(self, sim: Any, kubeconfig: str, tmp: Path) -> None:
        sim.require_sim("scripted images (sim.invalid/...) and request counts")
        self.sim = sim
        self.kubeconfig = kubeconfig
        self.jobs = tmp / "jobs.ads"
        self.startds = tmp / "startds.ads"
        self.shapes = tmp / "shapes.yaml"
        self.queues = tmp / "queues.yaml"
        self.jobs.write_text("")
        self.startds.write_text("")
        self.queues.write_text(yaml.safe_dump({"queues": {"pilots": {"template": {
            "metadata": {"labels": {"example.org/pool": "cms"}},
            "spec": {"containers": [{"name": "job", "env": [
                {"name": "CONDOR_HOST", "value": "cm.example.org"}]}]}}}}}))
        self.offset = 0.0
        self.knobs: dict[str, str] = {
            "KUBECONFIG": kubeconfig, "QUEUE_CONFIG": str(self.queues),
            "PROVISION_SHAPES": str(self.shapes), "PROVISION_ATTENUATION": "1",
            "PROVISION_RESERVE": "0", "PROVISION_CREATE_RATE": "0",
            "RUN_AS_USER": "image", "RUN_AS_GROUP": "image"}
        self.write_shapes({"cpu-1": {"cpus": 1, "memory": "2Gi", "disk": "1Gi"}})
        self.kube = Kube(sim.api_client(), settings_from_mapping({}).kube, retry_deadline=5)

    def write_shapes(self, shapes: dict[str, Any], image: str = "sim.invalid/sleep") -> None:
        self.shapes.write_text(yaml.safe_dump({
            "defaults": {"queue": "pilots", "image": image}, "shapes": shapes}))

    def clock(self) -> float:
        return time.time() + self.offset

    def provisioner(self, **knobs: str) -> Provisioner:
        settings = settings_from_mapping({**self.knobs, **knobs})
        return Provisioner(settings, load_shapes(str(self.shapes)),
                           load_templates(settings.pod),
                           kube=Kube(api_client(settings.kube), settings.kube, retry_deadline=5),
                           jobs_file=str(self.jobs), startds_file=str(self.startds),
                           clock=self.clock)

    def pods(self, *, live: bool = True) -> list[dict[str, Any]]:
        items, _ = self.kube.list_pods("default", SELECTOR)
        return [p for p in items if not (live and p["metadata"].get("deletionTimestamp"))]

    def wait(self, what: str, ok: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)


@pytest.fixture
def setup(sim: Any, sim_kubeconfig: str, tmp_path: Path) -> Iterator[Setup]:
    yield Setup(sim, sim_kubeconfig, tmp_path)


def _phases(pods: list[dict[str, Any]]) -> list[str]:
    return sorted(p.get("status", {}).get("phase", "") for p in pods)


def test_pods_appear_through_the_queue_template_within_cap_and_rate(setup: Setup) -> None:
    setup.jobs.write_text(jobs_text(30))
    setup.write_shapes({"cpu-1": {"cpus": 1, "memory": "2Gi", "disk": "1Gi", "maxPilots": 8},
                        "gpu-1": {"cpus": 4, "gpus": 1, "start": "TARGET.RequestGPUs >= 1"}})
    creates_before = setup.sim.stats.count("create", "pods")
    # 0.05 pods/s over a 60 s interval: 3 pods at once, then one per 20 s
    prov = setup.provisioner(PROVISION_CREATE_RATE="0.05")
    report = prov.cycle()
    assert [(r.shape, r.idle_jobs, r.action) for r in report.rows] == [
        ("cpu-1", 30, "create 3"), ("gpu-1", 0, "none")]
    assert "creation rate limit" in report.rows[0].reason
    pods = setup.pods()
    assert len(pods) == 3
    pod = pods[0]
    labels = pod["metadata"]["labels"]
    assert labels["example.org/pool"] == "cms"                      # the queue's overlay
    assert labels["kgahp.htcondor.org/pilot-shape"] == "cpu-1"
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["CONDOR_HOST"] == "cm.example.org"
    assert env["_CONDOR_NUM_CPUS"] == "1"
    assert env["_CONDOR_K8sPodName"] == f'"{pod["metadata"]["name"]}"'
    assert pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "1"
    setup.offset += 40                                              # two more tokens
    assert prov.cycle().rows[0].action == "create 2"
    setup.offset += 600                                             # a full bucket; the cap: 8
    row = prov.cycle().rows[0]
    assert (row.action, row.target) == ("create 3", 8)
    setup.offset += 600
    row = prov.cycle().rows[0]
    assert (row.action, row.pending + row.idle_pilots) == ("none", 8)
    assert len(setup.pods()) == 8
    assert setup.sim.stats.count("create", "pods") - creates_before == 8


def test_a_shape_whose_pilots_cannot_pull_backs_off_and_says_why(setup: Setup) -> None:
    setup.jobs.write_text(jobs_text(2))
    setup.write_shapes({"cpu-1": {"cpus": 1, "memory": "2Gi", "disk": "1Gi"}},
                       image="sim.invalid/pull-error")
    prov = setup.provisioner(IMAGE_PULL_GRACE="0.5", PROVISION_BACKOFF="60")
    assert prov.cycle().rows[0].action == "create 2"
    setup.wait("the pulls to fail", lambda: all(
        (p.get("status", {}).get("containerStatuses") or [{}])[0].get("state", {}).get(
            "waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
        for p in setup.pods()))
    time.sleep(0.6)
    row = prov.cycle().rows[0]
    assert row.action == "none"
    assert "backoff" in row.reason and "2 failed pilot(s)" in row.reason, row.reason
    assert "sim.invalid/pull-error" in row.reason or "pull" in row.reason.lower()
    assert row.pending == 0                   # failed pilots are no supply
    setup.offset += 50                        # 2 failures: 120 s from the newest
    assert "backoff" in prov.cycle().rows[0].reason
    failed = {p["metadata"]["name"] for p in setup.pods()}
    setup.offset += 100
    row = prov.cycle().rows[0]
    assert (row.action, "one probe" in row.reason) == ("create 1", True)
    assert len(setup.pods()) == 3             # the failed pods stay as the record
    assert "probe" in prov.cycle().rows[0].reason
    setup.offset += 4000                      # past KGAHP_PROVISION_BACKOFF_MAX
    prov.cycle()
    setup.wait("the expired failure records to go",
               lambda: not failed & {p["metadata"]["name"] for p in setup.pods()})


def test_demand_gone_unclaimed_pilots_go_after_the_grace_busy_ones_never(setup: Setup
                                                                          ) -> None:
    setup.jobs.write_text(jobs_text(4))
    prov = setup.provisioner(PROVISION_IDLE_GRACE="300")
    assert prov.cycle().rows[0].action == "create 4"
    setup.wait("the pilots to run", lambda: _phases(setup.pods()) == ["Running"] * 4)
    names = sorted(p["metadata"]["name"] for p in setup.pods())
    now = time.time()
    ads = [startd(names[0], "Claimed", entered=now - 10), startd(names[1], entered=now)]
    ads += [startd(n, dynamic=1 if i == 0 else 0, entered=now) for i, n in enumerate(names[2:])]
    setup.startds.write_text("\n".join(ad.printOld() for ad in ads))
    setup.jobs.write_text("")                 # the jobs ran: no demand
    row = prov.cycle().rows[0]
    assert (row.idle_jobs, row.idle_pilots, row.busy, row.action) == (0, 2, 2, "none")
    costs = {p["metadata"]["name"]: p["metadata"].get("annotations", {}).get(
        "controller.kubernetes.io/pod-deletion-cost") for p in setup.pods()}
    assert costs == {names[0]: "100", names[1]: None, names[2]: "100", names[3]: None}
    setup.offset += 301
    row = prov.cycle().rows[0]
    assert row.action == "remove 2"
    assert sorted(p["metadata"]["name"] for p in setup.pods()) == [names[0], names[2]]
    for _ in range(3):                        # busy pilots stay, however long
        setup.offset += 3600
        assert prov.cycle().rows[0].action == "none"
    assert sorted(p["metadata"]["name"] for p in setup.pods()) == [names[0], names[2]]
    # the admin drops the shape: its busy pilots still stay, an idle one goes after the grace
    setup.startds.write_text(startd(names[0], "Claimed", entered=now).printOld() + "\n"
                             + startd(names[2], entered=now).printOld())
    setup.write_shapes({"cpu-2": {"cpus": 2, "memory": "2Gi", "disk": "1Gi"}})
    report = setup.provisioner(PROVISION_IDLE_GRACE="300").cycle()
    assert [r.shape for r in report.rows] == ["cpu-2"]
    assert [p["metadata"]["name"] for p in setup.pods()] == [names[0]]


def test_dry_run_creates_nothing_and_prints_the_table(setup: Setup) -> None:
    setup.jobs.write_text(jobs_text(5))
    env = condor_env({k: v for k, v in setup.knobs.items()})
    done = subprocess.run(
        [sys.executable, "-m", "kgahp", "provision", "--once", "--dry-run", "--jobs",
         str(setup.jobs), "--startds", str(setup.startds)],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["SHAPE", "IDLE", "JOBS", "PENDING", "IDLE", "PILOTS", "BUSY",
                                "TARGET", "ACTION", "WHY"]
    assert lines[1].split()[:8] == ["cpu-1", "5", "0", "0", "0", "5", "create", "5"]
    assert "shape cpu-1: idle matching jobs 5" in done.stderr
    assert setup.pods() == []


def test_killed_and_restarted_it_creates_no_duplicates(setup: Setup, tmp_path: Path) -> None:
    setup.jobs.write_text(jobs_text(12))
    env = condor_env({**setup.knobs, "PROVISION_INTERVAL": "0.3",
                      "PROVISION_CREATE_RATE": "4"})
    command = [sys.executable, "-m", "kgahp", "provision", "--jobs", str(setup.jobs),
               "--startds", str(setup.startds)]
    log = open(tmp_path / "provision.log", "w")
    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        setup.wait("some pilots", lambda: len(setup.pods()) >= 3)
        os.kill(first.pid, signal.SIGKILL)        # mid-way: not all 12 exist yet
        first.wait(timeout=10)
        assert 3 <= len(setup.pods()) < 12
        second = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            setup.wait("all pilots", lambda: len(setup.pods()) >= 12)
            time.sleep(2)                         # several more cycles
            assert len(setup.pods(live=False)) == 12
            os.kill(second.pid, signal.SIGKILL)
            second.wait(timeout=10)
            third = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
            time.sleep(2)
            third.send_signal(signal.SIGTERM)     # a clean stop, as condor_master asks
            assert third.wait(timeout=10) == 0
        finally:
            for proc in (second,):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        assert len(setup.pods(live=False)) == 12
    finally:
        log.close()


def test_the_pilots_demo_tells_its_story() -> None:
    done = subprocess.run([sys.executable, "-m", "kgahp", "demo", "--pilots"], env=condor_env({}),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    tables = done.stdout.split("\n== ")[1:]
    assert len(tables) == 4
    first = {line.split()[0]: line.split() for line in tables[0].splitlines()[2:5]}
    assert first["gpu-1"][1:2] == ["2"] and first["cpu-1"][6] == "create"
    assert "1 match no shape" in tables[0]
    last = {line.split()[0]: line.split() for line in tables[3].splitlines()[2:5]}
    assert last["cpu-1"][4] == "2" and last["cpu-1"][6:8] == ["remove", "3"]
    assert "2 pilot pods left" in done.stdout
