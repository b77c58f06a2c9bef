"""Kueue end to end: the real kgahp executable, a queue whose pods name a Kueue LocalQueue, and
the sim's Kueue stand-in (kgahp_sim.kueue: webhook gate, per-LocalQueue quota, preemption).

A gated job is Idle and `kgahp status` says it waits for quota in its LocalQueue; it runs once
admitted. A pod Kueue preempts (TerminationTarget, then DELETE; Kueue never recreates it) is a
disruption: kgahp creates the next attempt, NumRestarts + 1, and never reports a completion.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from harness import wait_until

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING
from kgahp.testing import condor_env


@pytest.fixture
def kueue_gahp(sim: Any, make_gahp: Any, tmp_path: Path) -> Any:
    sim.require_sim("runs the sim's Kueue stand-in")
    sim.config.kueue_queues = {"lq-a": {"pods": "1"}}      # one admitted pod at a time
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  kq: {kueueQueue: lq-a, kueuePriorityClass: batch-low}\n")
    return make_gahp(QUEUE_CONFIG=str(queues))


def _status_rows(gahp: Any) -> str:
    out = subprocess.run([sys.executable, "-m", "kgahp", "status"], env=condor_env(gahp.knobs),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_gated_job_waits_for_quota_then_runs(kueue_gahp):
    first = kueue_gahp.submit("kueue_a_1.0", KubernetesImage="sim.invalid/ok:2s", Queue="kq")
    kueue_gahp.wait_status(first, {RUNNING})
    second = kueue_gahp.submit("kueue_b_1.0", KubernetesImage="sim.invalid/ok:300ms", Queue="kq")
    base = second.split("/")[2]
    pod = next(p for p in kueue_gahp.pods() if p["metadata"]["name"].startswith(base))
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "lq-a"
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "batch-low"
    assert [g["name"] for g in pod["spec"]["schedulingGates"]] == ["kueue.x-k8s.io/admission"]
    status, _ = kueue_gahp.status(second)
    assert status == IDLE
    row = next(line for line in _status_rows(kueue_gahp).splitlines() if second in line)
    assert "waiting for quota in LocalQueue lq-a" in row
    _, ad = kueue_gahp.wait_status(first, {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 0
    seen = kueue_gahp.poll(second, 0.2, timeout=60)
    assert seen[-1][0] == COMPLETED and seen[-1][1].eval("ExitCode") == 0
    assert RUNNING in [s for s, _ in seen]
    assert seen[-1][1].eval("NumRestarts") == 0


def test_kueue_preemption_recreates_and_is_never_completed(kueue_gahp):
    job_id = kueue_gahp.submit("kueue_p_1.0", KubernetesImage="sim.invalid/sleep", Queue="kq")
    kueue_gahp.wait_status(job_id, {RUNNING})
    base = job_id.split("/")[2]
    victim = next(p for p in kueue_gahp.pods() if p["metadata"]["name"].startswith(base))
    kueue_gahp.sim.kueue_preempt("default", victim["metadata"]["name"])
    seen: list[int] = []

    def replaced() -> bool:
        status, ad = kueue_gahp.status(job_id)
        seen.append(status)
        names = {p["metadata"]["name"] for p in kueue_gahp.pods()
                 if p["metadata"]["name"].startswith(base)}
        return status == RUNNING and ad.eval("NumRestarts") == 1 and \
            victim["metadata"]["name"] not in names

    wait_until(replaced, 60, "a new attempt running after the preemption")
    assert not {COMPLETED, REMOVED, HELD} & set(seen), seen
    names = sorted(p["metadata"]["name"] for p in kueue_gahp.pods()
                   if p["metadata"]["name"].startswith(base))
    assert len(names) == 1 and names[0] != victim["metadata"]["name"]
    time.sleep(1.0)                                      # and it stays a live job
    status, ad = kueue_gahp.status(job_id)
    assert status == RUNNING and ad.eval("NumRestarts") == 1


def test_cancel_of_a_gated_job_leaves_no_pod(kueue_gahp):
    blocker = kueue_gahp.submit("kueue_c_1.0", KubernetesImage="sim.invalid/sleep", Queue="kq")
    kueue_gahp.wait_status(blocker, {RUNNING})
    gated = kueue_gahp.submit("kueue_c_2.0", KubernetesImage="sim.invalid/ok", Queue="kq")
    assert kueue_gahp.status(gated)[0] == IDLE
    for job_id in (gated, blocker):
        assert kueue_gahp.driver.cancel(job_id) == (0, "No error")
    # Kueue's finalizer holds each deleted pod until the stand-in releases it; then it goes
    wait_until(lambda: kueue_gahp.pods() == [], 60, "every pod gone after the cancels")
    for job_id in (gated, blocker):
        assert kueue_gahp.wait_status(job_id, {REMOVED}, timeout=30)[0] == REMOVED
