"""Cancel, idempotent resubmission, crash recovery and the cost of status, end to end."""

from __future__ import annotations

import time

from harness import exits, sleeps, succeeds

from kgahp.model import COMPLETED, IDLE, REMOVED, RUNNING


def test_handshake_ping_and_protocol_timing(gahp):
    assert gahp.driver.ping() == (0, "No error")
    assert gahp.driver.banner[0].startswith("$GahpVersion")
    assert gahp.driver.max_reply_seconds < 2.0


def test_resubmit_same_job_directory_adopts_the_live_pod(gahp):
    first = gahp.submit("resub_1.0", **sleeps())
    second = gahp.submit("resub_1.0", **sleeps())
    assert first == second
    assert len(gahp.pods()) == 1


def test_resubmit_after_completion_makes_a_new_attempt(gahp):
    job_id = gahp.submit("again_1.0", **exits(2))
    _, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 2
    assert gahp.submit("again_1.0", **exits(5)) == job_id
    _, ad = gahp.wait_status(job_id, {COMPLETED})
    assert ad.eval("ExitCode") == 5       # the new attempt's result, not the old one
    names = {p["metadata"]["name"] for p in gahp.pods()}
    assert any(n.endswith("-1") for n in names)


def test_cancel_idle_running_finished_and_unknown(gahp):
    idle = gahp.submit("cancel_idle_1.0", **succeeds(), GPUNumber=1)   # no GPU: stays pending
    running = gahp.submit("cancel_run_1.0", **sleeps())
    done = gahp.submit("cancel_done_1.0", **succeeds())
    gahp.wait_status(running, {RUNNING})
    gahp.wait_status(done, {COMPLETED})
    assert gahp.status(idle)[0] == IDLE
    for job_id in (idle, running, done, "kubernetes/default/kg-unknown-0123abcd"):
        assert gahp.driver.cancel(job_id) == (0, "No error")
    deadline = time.monotonic() + 30
    while gahp.pods() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert gahp.pods() == []


def test_cancel_reports_failure_when_the_api_refuses(gahp):
    gahp.sim.require_sim("simulator only: the API's refusal is a fault injected into the sim")
    job_id = gahp.submit("cancel_fail_1.0", **sleeps())
    gahp.sim.faults.add(method="DELETE", path=r"/pods", status=403, times=1000)
    try:
        code, msg = gahp.driver.cancel(job_id)
    finally:
        gahp.sim.faults.clear()
    assert code != 0 and msg


def test_sigkill_mid_flight_and_restart_recovers_every_job(gahp):
    jobs = {"exit7": exits(7, after=2), "sleep": sleeps(), "ok": succeeds(after=3)}
    ids = {what: gahp.submit(f"crash_{i}.0", **attrs) for i, (what, attrs) in
           enumerate(jobs.items())}
    gahp.wait_status(ids["sleep"], {RUNNING})
    driver = gahp.restart(kill=True)     # SIGKILL, then a fresh GAHP as the gridmanager would
    assert driver.ping()[0] == 0
    _, ad = gahp.wait_status(ids["exit7"], {COMPLETED})
    assert ad.eval("ExitCode") == 7
    _, ad = gahp.wait_status(ids["ok"], {COMPLETED})
    assert ad.eval("ExitCode") == 0
    assert gahp.status(ids["sleep"])[0] == RUNNING
    # the gridmanager resubmits a job whose submit got no answer: still one pod
    again = gahp.submit("crash_1.0", **sleeps())
    assert again == ids["sleep"]
    names = [p["metadata"]["name"] for p in gahp.pods()]
    assert len(names) == len(set(names)) == 3


def test_finished_result_survives_restart_and_pod_deletion(make_gahp):
    gahp = make_gahp(POD_RETENTION="0")
    job_id = gahp.submit("keep_1.0", **exits(4))
    gahp.wait_status(job_id, {COMPLETED})
    deadline = time.monotonic() + 30
    while gahp.pods() and time.monotonic() < deadline:    # cleaned up after retention 0
        time.sleep(0.2)
    assert gahp.pods() == []
    gahp.restart(kill=True)
    status, ad = gahp.status(job_id)
    assert status == COMPLETED and ad.eval("ExitCode") == 4


def test_status_makes_no_api_requests_in_steady_state(gahp):
    gahp.sim.require_sim("simulator only: counts the requests the API server received")
    ids = [gahp.submit(f"quiet_{i}.0", **sleeps()) for i in range(5)]
    for job_id in ids:
        gahp.wait_status(job_id, {RUNNING})
    time.sleep(0.5)
    before = gahp.sim.stats.count()
    for _ in range(20):
        for job_id in ids:
            assert gahp.status(job_id)[0] == RUNNING
    assert gahp.sim.stats.count() - before == 0


def test_two_instances_never_touch_each_others_pods(make_gahp):
    alice = make_gahp(INSTANCE="alice")
    bob = make_gahp(INSTANCE="bob")
    a = alice.submit("same_dir_1.0", **sleeps())
    b = bob.submit("other_dir_1.0", **sleeps())
    alice.wait_status(a, {RUNNING})
    assert bob.driver.cancel(a)[0] == 0          # bob cannot see alice's job ...
    assert alice.status(a)[0] == RUNNING         # ... so alice's pod lives on
    assert bob.status(b)[0] in (IDLE, RUNNING)
    assert bob.status(a)[0] in (REMOVED,)
