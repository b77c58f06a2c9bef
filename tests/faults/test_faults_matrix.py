"""The fault matrix: a real kgahp, driven as the gridmanager drives it, while the simulated API
server misbehaves in one way per case. Every case checks the same four promises:

* every immediate reply (and every RESULTS line) within the gridmanager's 20 s;
* no status error while the cache can answer (the gridmanager holds after five);
* no job held, removed or failed because of a transient fault;
* the right final statuses, one pod per job, and a submit made during the fault succeeds.

The simulated API server keeps an open watch stream flowing even while it is "down" or
faulted, so each case first makes watches end every couple of events (as real ones end often):
that way the faults reach the watch's reconnections too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from harness import GM_RESPONSE_TIMEOUT, STATUS_NAMES, Gahp, RuleClock, wait_until

from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING

# The API-down window: 20 s in CI, 120 s in the long run (KGAHP_FAULTS_DOWN_SECONDS=120).
DOWN_SECONDS = float(os.environ.get("KGAHP_FAULTS_DOWN_SECONDS", "20"))
WATCH_EVENTS_PER_STREAM = 3


@dataclass
class FaultCase:
    inject: Callable[[Any], None]       # called with the sim when the fault starts
    window: float                       # seconds the fault lasts before sim.faults.clear()
    during: Callable[[Any], None] = field(default=lambda sim: None)  # every poll of the window
    knobs: dict[str, str] = field(default_factory=dict)


def _storm_429(sim: Any) -> None:
    sim.faults.add(status=429, retry_after=1, probability=0.6, times=80)


def _bursts_5xx(sim: Any) -> None:
    sim.faults.add(status=500, probability=0.5, times=20)
    sim.faults.add(status=503, probability=0.5, times=20)
    sim.faults.add(status=504, times=5)


def _resets(sim: Any) -> None:
    sim.faults.add(drop=True, probability=0.4, times=40)


def _slow(sim: Any) -> None:
    # just under the gridmanager's 20 s and well under KGAHP_API_TIMEOUT (30 s)
    sim.faults.add(watch=False, latency=17.0, times=4)


def _cut_mid_event(sim: Any) -> None:
    sim.faults.add(watch=True, cut_after_events=1, cut_mid_event=True, times=12)


def _compact(sim: Any) -> None:
    sim.compact()


def _down(sim: Any) -> None:
    sim.faults.down(DOWN_SECONDS)


CASES: dict[str, FaultCase] = {
    "429-storm": FaultCase(_storm_429, 6.0),
    "5xx-bursts": FaultCase(_bursts_5xx, 6.0),
    "connection-resets": FaultCase(_resets, 6.0),
    "slow-responses": FaultCase(_slow, 20.0),
    "watch-cut-mid-event": FaultCase(_cut_mid_event, 6.0),
    "compaction-410": FaultCase(_compact, 6.0, during=_compact),
    "api-down": FaultCase(_down, DOWN_SECONDS + 1.0),
}


def _poll_window(gahp: Gahp, jobs: dict[str, str], case: FaultCase,
                 codes: list[int]) -> dict[str, list[int]]:
    """Poll every job's status for the fault's window; return the statuses seen per job."""
    seen: dict[str, list[int]] = {name: [] for name in jobs}
    deadline = time.monotonic() + case.window
    while time.monotonic() < deadline:
        for name, job_id in jobs.items():
            code, msg, status, _ad = gahp.driver.status(job_id)
            codes.append(code)
            assert code == 0, f"{name}: status failed during the fault: {msg}"
            seen[name].append(status)
            assert status not in (HELD, REMOVED), f"{name}: {STATUS_NAMES[status]} by a fault"
        case.during(gahp.sim)
        time.sleep(0.3)
    return seen


@pytest.mark.timeout(200)
@pytest.mark.parametrize("name", list(CASES))
def test_fault_case(make_gahp: Callable[..., Gahp], fsim: Any, name: str) -> None:
    case = CASES[name]
    fsim.faults.cut_watch(WATCH_EVENTS_PER_STREAM)   # watches end often (see module doc)
    gahp = make_gahp(**case.knobs)
    run = max(4.0, case.window * 0.6)      # the jobs finish inside the fault's window
    jobs = {
        "ok": gahp.submit(f"{name}_ok.0", KubernetesImage=f"sim.invalid/ok:{run:.1f}s"),
        "exit3": gahp.submit(f"{name}_exit.0", KubernetesImage=f"sim.invalid/exit3:{run:.1f}s"),
        "sleep": gahp.submit(f"{name}_sleep.0", KubernetesImage="sim.invalid/sleep"),
    }
    for job_id in jobs.values():
        gahp.wait_status(job_id, {RUNNING}, timeout=30)

    codes: list[int] = []
    case.inject(fsim)
    late = gahp.driver.send("BLAH_JOB_SUBMIT", gahp.ad(f"{name}_late.0",
                                                       KubernetesImage="sim.invalid/ok:1s"))
    seen = _poll_window(gahp, jobs, case, codes)
    fsim.faults.clear()
    fsim.faults.cut_watch(WATCH_EVENTS_PER_STREAM)

    # a submit made during the fault answers within the gridmanager's 300 s, successfully
    result = gahp.driver.wait([late], timeout=240)[late]
    assert result[1] == "0", f"submit during {name} failed: {result}"
    jobs["late"] = result[3]
    _, ad = gahp.wait_status(jobs["ok"], {COMPLETED}, timeout=90)
    assert ad.eval("ExitCode") == 0 and ad.eval("ExitBySignal") is False
    _, ad = gahp.wait_status(jobs["exit3"], {COMPLETED}, timeout=60)
    assert ad.eval("ExitCode") == 3
    _, ad = gahp.wait_status(jobs["late"], {COMPLETED}, timeout=90)
    assert ad.eval("ExitCode") == 0
    assert gahp.status(jobs["sleep"])[0] == RUNNING
    assert all(s in (IDLE, RUNNING, COMPLETED) for s in seen["ok"] + seen["exit3"])
    assert set(seen["sleep"]) == {RUNNING}

    # one pod per job: no retried create made a second one
    per_job: dict[str, int] = {}
    for pod in gahp.pods():
        job = pod["metadata"]["labels"]["kgahp.htcondor.org/job"]
        per_job[job] = per_job.get(job, 0) + 1
    assert sorted(per_job.values()) == [1, 1, 1, 1], per_job

    assert gahp.driver.cancel(jobs["sleep"]) == (0, "No error")
    wait_until(lambda: not any(p["metadata"]["name"].startswith(jobs["sleep"].split("/")[2])
                               for p in gahp.pods()), 30, "the cancelled pod to go")
    assert gahp.driver.max_reply_seconds < GM_RESPONSE_TIMEOUT
    assert codes and set(codes) == {0}


@pytest.mark.timeout(120)
def test_retry_after_is_honoured_never_faster(make_gahp: Callable[..., Gahp],
                                              fsim: Any) -> None:
    gahp = make_gahp()
    gahp.submit("warm_0.0", KubernetesImage="sim.invalid/sleep")   # cache synced, client warm
    rule = fsim.faults.add(method="POST", path=r"/namespaces/default/pods$", status=429,
                           retry_after=2, times=3)
    clock = RuleClock(rule)
    t0 = time.monotonic()
    job_id = gahp.submit("throttled_0.0", KubernetesImage="sim.invalid/sleep")
    elapsed = time.monotonic() - t0
    stamps = clock.stop()
    assert rule.times == 0 and len(stamps) == 3
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(gap >= 2.0 - 0.05 for gap in gaps), gaps       # never faster than asked
    assert elapsed >= 3 * 2.0 - 0.1, elapsed                   # ... nor after the last 429
    assert elapsed < 3 * 2.0 + 6.0, elapsed                    # ... and not much slower
    assert gahp.status(job_id)[0] in (IDLE, RUNNING)
    assert len([p for p in gahp.pods() if "throttled" in str(p)]) <= 1


@pytest.mark.timeout(120)
def test_pod_deleted_behind_kgahps_back(make_gahp: Callable[..., Gahp], fsim: Any) -> None:
    """Started and then deleted by someone else: REMOVED, never COMPLETED. Deleted before it
    ever started: created again under the same job id, still IDLE, never held."""
    from kubernetes import client

    gahp = make_gahp()
    core = client.CoreV1Api(fsim.api_client())
    started = gahp.submit("vanish_run.0", KubernetesImage="sim.invalid/sleep")
    pending = gahp.submit("vanish_pending.0", KubernetesImage="sim.invalid/ok", GPUNumber=1)
    gahp.wait_status(started, {RUNNING})
    assert gahp.status(pending)[0] == IDLE
    for job_id in (started, pending):
        base = job_id.split("/")[2]
        for pod in gahp.pods():
            if pod["metadata"]["name"].startswith(base):
                core.delete_namespaced_pod(pod["metadata"]["name"], "default",
                                           grace_period_seconds=0)
    status, _ = gahp.wait_status(started, lambda s: s not in (IDLE, RUNNING), timeout=30)
    assert status == REMOVED
    base = pending.split("/")[2]
    wait_until(lambda: any(p["metadata"]["name"] == f"{base}-1" for p in gahp.pods()), 30,
               "the never-started job to be created again")
    for _ in range(5):
        status, ad = gahp.status(pending)
        assert status == IDLE, ad
    assert ad.eval("NumRestarts") == 1


@pytest.mark.timeout(120)
def test_node_lost_recreates_and_completes(make_gahp: Callable[..., Gahp]) -> None:
    gahp = make_gahp(UNKNOWN_GRACE="2")
    job_id = gahp.submit("nodelost_0.0", KubernetesImage="sim.invalid/node-lost:500ms")
    statuses = []
    deadline = time.monotonic() + 90
    while True:
        status, ad = gahp.status(job_id)
        statuses.append(status)
        assert status in (IDLE, RUNNING, COMPLETED), (statuses, ad)
        if status == COMPLETED or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert status == COMPLETED, statuses
    assert ad.eval("ExitCode") == 0 and ad.eval("NumRestarts") == 1
