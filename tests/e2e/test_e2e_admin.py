"""What the admin sees: ping's verdict on credentials, `kgahp status`, the config snippet, and
the protocol under load through the installed executable."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import sleeps

from kgahp.config.settings import ServerSettings
from kgahp.knob_reference import config_snippet
from kgahp.model import RUNNING
from kgahp.testing import GahpDriver, condor_env

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_snippet_lists_every_knob_with_its_default():
    assert (ROOT / "condor_config.d" / "50-kgahp.conf").read_text() == config_snippet()


def test_ping_says_why_when_the_identity_may_not_create_pods(sim, tmp_path):
    kubeconfig = sim.write_kubeconfig(str(tmp_path / "kc"), restricted=True)
    driver = GahpDriver(env=condor_env({"KUBECONFIG": kubeconfig, "STATE_DIR": str(tmp_path)}))
    try:
        driver.handshake()
        code, msg = driver.ping()
    finally:
        driver.close()
    assert code == 1
    assert "may not create pods" in msg or "forbidden" in msg.lower()


def test_fifty_requests_in_flight_never_delay_an_immediate_reply(gahp):
    ids = [gahp.submit(f"load_{i}.0", **sleeps()) for i in range(10)]
    reqids = []
    t0 = time.monotonic()
    for i in range(50):
        if i % 5 == 0:
            reqids.append(gahp.driver.send("BLAH_JOB_SUBMIT", gahp.ad(
                f"burst_{i}.0", **sleeps())))
        else:
            reqids.append(gahp.driver.send("BLAH_JOB_STATUS", ids[i % len(ids)]))
    sent = time.monotonic() - t0
    results = gahp.driver.wait(reqids, timeout=60)
    assert len(results) == 50
    assert all(r[1] == "0" for r in results.values())
    assert gahp.driver.max_reply_seconds < 1.0, gahp.driver.max_reply_seconds
    assert sent < 5.0


def test_kgahp_status_lists_jobs_with_their_job_status(gahp):
    job_id = gahp.submit("admin_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    env = condor_env(gahp.knobs)
    out = subprocess.run([sys.executable, "-m", "kgahp", "status"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:5] == ["JOB", "ID", "POD", "OWNER", "PHASE"]
    row = next(line for line in lines if job_id in line)
    assert "Running" in row


def test_help_and_version(tmp_path):
    env = dict(os.environ, CONDOR_CONFIG="/dev/null")
    out = subprocess.run([sys.executable, "-m", "kgahp", "--version"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.startswith("kgahp ")
    out = subprocess.run([sys.executable, "-m", "kgahp", "--help"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert "kgahp sim" in out.stdout and "kgahp demo" in out.stdout


def test_top_shows_which_of_kgahps_threads_is_busy(gahp):
    """`top -H` and `ps -L` name each thread (/proc/<pid>/task/*/comm), so an admin can see
    whether the submit workers, the watch or the reconcilers are busy."""
    if not Path("/proc/self/task").is_dir():
        pytest.skip("no /proc here")
    job_id = gahp.submit("named_threads.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING}, timeout=60)
    pid = gahp.driver.proc.pid
    names = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.add((task / "comm").read_text().strip())
        except OSError:     # a thread that ended while the folder was read
            continue
    last = f"gahp-submit-{ServerSettings().workers - 1}"
    assert {"gahp-submit-0", last, "gahp-status-0", "reconcile-0", "log-writer"} <= names
    assert any(n.startswith("watch-") for n in names)
    # status threads serve only pings and cache misses: 8 at most, however many submit threads
    assert "gahp-status-7" in names and "gahp-status-8" not in names


def test_a_slow_api_server_under_a_burst_never_overflows_the_connection_pool(sim, make_gahp):
    """50 slow creates at once, beside a watch in each of 13 namespaces: urllib3 throws no
    connection away. It discards, with a warning, a connection that comes back to a full
    pool, which would cost a slow API server a new TCP (and TLS) handshake each time. This
    catches a pool smaller than the submit workers (it fails with a pool of 9). The watches'
    own connections come back only when a watch ends, minutes later; the test does not wait
    for that."""
    if not getattr(sim, "is_sim", True):
        pytest.skip("slows the simulator's pod creates")
    from kubernetes import client

    spaces = [f"burst-{i}" for i in range(12)]
    core = client.CoreV1Api(sim.api_client())
    for name in spaces:
        core.create_namespace({"metadata": {"name": name}})
    gahp = make_gahp(ALLOWED_NAMESPACES=",".join(["default", *spaces]), QPS="1000",
                     BURST="2000")
    sim.faults.add(method="POST", path="/pods$", latency=1.0)   # 50 creates in flight at once
    try:
        reqids = [gahp.driver.send("BLAH_JOB_SUBMIT", gahp.ad(
            f"burst_{i}.0", KubernetesImage="sim.invalid/sleep",
            KubernetesNamespace=spaces[i % len(spaces)])) for i in range(60)]
        results = gahp.driver.wait(reqids, timeout=60)
    finally:
        sim.faults.clear()
    assert [r for r in results.values() if r[1] != "0"] == []
    gahp.driver.close()
    assert "Connection pool is full" not in gahp.log.read_text()
