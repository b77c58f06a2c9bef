"""Crash consistency, bounded and seeded for CI: 150 jobs, 15 SIGKILLs of the GAHP (about half
aimed between a pod's creation and the gridmanager reading the submit result). The long version
(1,000+ jobs, 100+ kills) is `python tests/faults/long_run.py`."""

from __future__ import annotations

import time
from typing import Callable

import pytest
from crashrun import run_campaign
from harness import Gahp, PodCensus, job_label, managed_objects, wait_until

from kgahp.model import COMPLETED, IDLE, RUNNING

CI_JOBS = 150
CI_KILLS = 15
CI_SEED = 8


@pytest.mark.timeout(240)
def test_sigkill_campaign_loses_duplicates_and_leaks_nothing(
        make_gahp: Callable[..., Gahp]) -> None:
    gahp = make_gahp(POD_RETENTION="1", CONFIG_ERROR_GRACE="20", QPS="200", BURST="400")
    report = run_campaign(gahp, jobs=CI_JOBS, kills=CI_KILLS, seed=CI_SEED, timeout=150)
    print(report.summary())
    assert report.kills == CI_KILLS and report.kills_after_create >= 1
    assert report.problems() == {}, report.summary()


@pytest.mark.timeout(200)
def test_sigkill_campaign_in_job_mode(make_gahp: Callable[..., Gahp]) -> None:
    """The same campaign with every attempt a batch/v1 Job (KGAHP_WORKLOAD = job), smaller:
    also no Job left behind, and never two pods of one attempt."""
    gahp = make_gahp(WORKLOAD="job", POD_RETENTION="1", CONFIG_ERROR_GRACE="20", QPS="200",
                     BURST="400")
    report = run_campaign(gahp, jobs=60, kills=8, seed=CI_SEED + 1, timeout=120)
    print(report.summary())
    assert report.kills == 8 and report.kills_after_create >= 1
    assert report.problems() == {}, report.summary()


@pytest.mark.timeout(120)
def test_completed_before_the_lost_submit_answer_is_not_run_again(
        make_gahp: Callable[..., Gahp]) -> None:
    """The submit's answer is lost (kill), the job finishes meanwhile, the gridmanager submits
    again: kgahp must answer with the same job and its result, not run the job a second time
    (it never reported that result, so this cannot be a hold/release resubmission)."""
    gahp = make_gahp(POD_RETENTION="600")
    ad = gahp.ad("quick_0.0", KubernetesImage="sim.invalid/exit6:200ms")
    gahp.driver.send("BLAH_JOB_SUBMIT", ad)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pods = managed_objects(gahp.sim, "pods")
        if any((p.get("status") or {}).get("phase") == "Failed" for p in pods):
            break
        time.sleep(0.05)
    gahp.restart(kill=True)
    code, msg, job_id = gahp.driver.submit(ad)
    assert code == 0, msg
    status, result = gahp.status(job_id)
    assert status in (IDLE, RUNNING, COMPLETED)
    status, result = gahp.wait_status(job_id, {COMPLETED}, timeout=30)
    assert result.eval("ExitCode") == 6
    time.sleep(1.0)    # a second attempt, if one was wrongly made, would show by now
    names = {p["metadata"]["name"] for p in managed_objects(gahp.sim, "pods")
             if job_label(p) == job_id.split("/")[2]}
    assert names == {job_id.split("/")[2] + "-0"}, names
    # once the result was reported, a new submit is a hold/release rerun: a new attempt
    assert gahp.submit("quick_0.0", KubernetesImage="sim.invalid/exit6:200ms") == job_id
    wait_until(lambda: any(p["metadata"]["name"].endswith("-1")
                           for p in managed_objects(gahp.sim, "pods")), 20, "the rerun")


@pytest.mark.timeout(120)
def test_a_create_that_lands_after_the_crash_is_not_a_second_pod(
        make_gahp: Callable[..., Gahp]) -> None:
    """SIGKILL while the pod's create is still on its way through the API server (it lands
    after the restart, as a real API server finishes a request whose client died). The
    resubmitted job must end up with that one pod, never a second one beside it."""
    gahp = make_gahp(POD_RETENTION="600")
    census = PodCensus(gahp.sim, interval=0.05)
    gahp.sim.faults.add(method="POST", path="/pods$", latency=4.0, times=1)
    try:
        ad = gahp.ad("late_0.0", KubernetesImage="sim.invalid/exit4:1.5s")
        gahp.driver.send("BLAH_JOB_SUBMIT", ad)
        wait_until(lambda: gahp.sim.stats.count(verb="create", resource="pods") >= 1, 10,
                   "the create request")
        gahp.restart(kill=True)
        code, msg, job_id = gahp.driver.submit(ad)     # before the first create lands
        assert code == 0, msg
        _, result = gahp.wait_status(job_id, {COMPLETED}, timeout=40)
        assert result.eval("ExitCode") == 4
        assert (result.eval("NumRestarts") if "NumRestarts" in result else 0) == 0
        time.sleep(4.5)                                  # the late create has surely landed
    finally:
        census.stop()
        gahp.sim.faults.clear()
    label = job_id.split("/")[2]
    assert gahp.sim.stats.count(verb="create", resource="pods") == 2
    assert census.names_by_job.get(label) == {label + "-0"}
    assert census.max_active.get(label) == 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("lands", [True, False], ids=["create-lands-late", "create-lost"])
def test_a_recreation_cut_short_by_a_crash_is_finished_by_the_next_instance(
        make_gahp: Callable[..., Gahp], lands: bool) -> None:
    """The pod is evicted; kgahp records the new attempt and sends its create, and is killed
    before the answer. The create lands later, or never. The next instance must end with
    exactly one replacement pod and report the disruption (NumRestarts 1)."""
    gahp = make_gahp(POD_RETENTION="600")
    census = PodCensus(gahp.sim, interval=0.05)
    try:
        job_id = gahp.submit("evicted_0.0", KubernetesImage="sim.invalid/evict:2s")
        label = job_id.split("/")[2]
        # the replacement's create: held 3 s by the API server, then made or dropped
        gahp.sim.faults.add(method="POST", path="/pods$", latency=3.0, drop=not lands,
                            times=1)
        creates = gahp.sim.stats.count(verb="create", resource="pods")
        while gahp.sim.stats.count(verb="create", resource="pods") == creates:
            gahp.status(job_id)            # the status that sees the eviction
            time.sleep(0.1)
        gahp.restart(kill=True)
        _, result = gahp.wait_status(job_id, {COMPLETED}, timeout=60)
        assert result.eval("ExitCode") == 0
        assert result.eval("NumRestarts") == 1
        time.sleep(3.5)
    finally:
        census.stop()
        gahp.sim.faults.clear()
    assert census.names_by_job.get(label) == {label + "-0", label + "-1"}


@pytest.mark.timeout(120)
def test_a_resubmitted_pod_whose_maker_died_before_its_secret_gets_the_secret(
        make_gahp: Callable[..., Gahp]) -> None:
    """SIGKILL between creating a proxy job's pod and its credential Secret (whose create the
    API server never completes): the pod waits for a volume that nobody will make. The
    resubmit adopts the pod and makes the Secret, and the job runs."""
    gahp = make_gahp(POD_RETENTION="600", CONFIG_ERROR_GRACE="60")
    proxy = gahp.iwd / "orphan.proxy"
    proxy.write_text("proxy of orphan\n")
    gahp.sim.faults.add(method="POST", path="/secrets$", latency=3.0, drop=True, times=1)
    ad = gahp.ad("orphan_0.0", KubernetesImage="sim.invalid/ok:200ms",
                 x509userproxy=str(proxy))
    gahp.driver.send("BLAH_JOB_SUBMIT", ad)
    wait_until(lambda: gahp.sim.stats.count(verb="create", resource="secrets") >= 1, 10,
               "the secret's create")
    gahp.restart(kill=True)
    gahp.sim.faults.clear()
    assert not managed_objects(gahp.sim, "secrets")
    code, msg, job_id = gahp.driver.submit(ad)     # the pod is there already: adopted
    assert code == 0, msg
    _, result = gahp.wait_status(job_id, {COMPLETED}, timeout=60)
    assert result.eval("ExitCode") == 0     # it ran: its volume, the Secret, was made
    assert gahp.sim.stats.count(verb="create", resource="secrets") >= 2
    # and, the result recorded, the Secret goes (issue 12: not left to the pod's retention)
    wait_until(lambda: not managed_objects(gahp.sim, "secrets"), 10, "the Secret to go")


@pytest.mark.timeout(120)
def test_a_replacement_pod_whose_maker_died_before_its_secret_gets_the_secret(
        make_gahp: Callable[..., Gahp]) -> None:
    """The same without a resubmit: a proxy job's pod is evicted, its replacement's create
    lands after kgahp was killed, so no Secret was ever sent for it. The next instance finds
    the replacement waiting, reads its FailedMount event, makes the Secret; the job runs."""
    gahp = make_gahp(POD_RETENTION="600", CONFIG_ERROR_GRACE="60")
    proxy = gahp.iwd / "orphan2.proxy"
    proxy.write_text("proxy of orphan2\n")
    job_id = gahp.submit("orphan2_0.0", KubernetesImage="sim.invalid/evict:1s",
                         x509userproxy=str(proxy))
    label = job_id.split("/")[2]
    # lands well before the next instance lists pods: only its events can tell what is wrong
    gahp.sim.faults.add(method="POST", path="/pods$", latency=0.3, times=1)
    creates = gahp.sim.stats.count(verb="create", resource="pods")
    while gahp.sim.stats.count(verb="create", resource="pods") == creates:
        gahp.status(job_id)
        time.sleep(0.02)
    gahp.restart(kill=True)
    _, result = gahp.wait_status(job_id, {COMPLETED}, timeout=60)
    assert "missing Secret(s) " + label + "-1-proxy; recreated" in gahp.log.read_text()
    assert result.eval("NumRestarts") == 1
    # the result recorded, the replacement's Secret goes too (issue 12)
    wait_until(lambda: label + "-1-proxy" not in {
        s["metadata"]["name"] for s in managed_objects(gahp.sim, "secrets")}, 10,
        "the replacement's Secret to go")
