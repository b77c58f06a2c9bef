"""Issue 15, end to end through the real `kgahp` and the simulator: the disruption policy
(KGAHP_DISRUPTION_POLICY and a queue's disruptionPolicy) and the tracking finalizer.

- an eviction (Eviction API, 27*) under `recreate` gets a new pod; under `hold` the job is held
  with code 26 naming the eviction and no new pod; under `remove` it is reported Idle with the
  reason in ExitReason and no new pod; each answer survives a restart;
- a Kueue preemption under a queue's `hold` is held, never recreated and never completed;
- a pod deleted while its job ran and kgahp was down is a removal, never a completion;
- cancel leaves no pod, no Secret and no finalizer behind;
- the sweeper frees a pod whose job kgahp no longer tracks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness import Gahp, managed_objects, sleeps, wait_until
from kubernetes import client

from kgahp.finalizers import FINALIZER
from kgahp.model import COMPLETED, HELD, IDLE, REMOVED, RUNNING


def _core(gahp: Gahp) -> client.CoreV1Api:
    return client.CoreV1Api(gahp.sim.api_client())


def _pods_of(gahp: Gahp, job_id: str) -> list[dict]:
    base = job_id.split("/")[2]
    return [p for p in managed_objects(gahp.sim, "pods")
            if p["metadata"]["name"].startswith(base)]


def _creates(gahp: Gahp) -> int:
    return int(gahp.sim.stats.count(verb="create", resource="pods", subresource=""))


def _evict(gahp: Gahp, job_id: str) -> str:
    (pod,) = _pods_of(gahp, job_id)
    name = pod["metadata"]["name"]
    assert pod["metadata"].get("finalizers") == [FINALIZER]
    _core(gahp).create_namespaced_pod_eviction(name, "default", {
        "apiVersion": "policy/v1", "kind": "Eviction",
        "metadata": {"name": name, "namespace": "default"}})
    return name


def _answers_until(gahp: Gahp, job_id: str, want: int, timeout: float = 30) -> list[int]:
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] != want:
        assert time.monotonic() < deadline, seen[-20:]
        seen.append(gahp.status(job_id)[0])
        time.sleep(0.1)
    return seen


def test_eviction_under_recreate_runs_the_job_again(make_gahp: Any) -> None:
    gahp = make_gahp(DISRUPTION_POLICY="recreate")
    job_id = gahp.submit("dis_recreate_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    name = _evict(gahp, job_id)
    wait_until(lambda: [p["metadata"]["name"] for p in _pods_of(gahp, job_id)
                        if p["metadata"]["name"] != name] != [], 30, "a new pod")
    _, ad = gahp.wait_status(job_id, {RUNNING})
    assert ad.eval("NumRestarts") == 1
    wait_until(lambda: name not in {p["metadata"]["name"] for p in _pods_of(gahp, job_id)}, 30,
               "the evicted pod to go (its finalizer released)")


def test_eviction_under_hold_holds_with_26_and_makes_no_new_pod(make_gahp: Any) -> None:
    gahp = make_gahp(DISRUPTION_POLICY="hold")
    creates = _creates(gahp)
    job_id = gahp.submit("dis_hold_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    _evict(gahp, job_id)
    seen = _answers_until(gahp, job_id, HELD)
    assert not {COMPLETED, REMOVED, IDLE} & set(seen), seen
    _, ad = gahp.status(job_id)
    assert ad.eval("HoldReasonCode") == 26
    reason = ad.eval("HoldReason")
    assert "EvictionByEvictionAPI" in reason and "KGAHP_DISRUPTION_POLICY = hold" in reason, reason
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the evicted pod to go, none made")
    assert _creates(gahp) == creates + 1
    gahp.restart()
    status, again = gahp.status(job_id)
    assert status == HELD and again.eval("HoldReason") == reason


def test_eviction_under_remove_reports_idle_with_the_reason_and_no_new_pod(
        make_gahp: Any) -> None:
    gahp = make_gahp(DISRUPTION_POLICY="remove")
    creates = _creates(gahp)
    job_id = gahp.submit("dis_remove_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    _evict(gahp, job_id)
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the evicted pod to go")
    time.sleep(1.0)
    status, ad = gahp.status(job_id)
    assert status == IDLE, ad
    assert "KGAHP_DISRUPTION_POLICY = remove" in ad.eval("ExitReason")
    assert ad.eval("NumRestarts") == 1
    assert _creates(gahp) == creates + 1
    # killed before that answer is recorded, the next GAHP would show the start once more
    wait_until(lambda: gahp.answer_recorded(job_id), 10, "the Idle answer to be recorded")
    gahp.restart()
    time.sleep(1.0)
    assert gahp.status(job_id)[0] == IDLE
    assert not _pods_of(gahp, job_id)
    # the CE removes it: the gridmanager's cancel then finds nothing left to do
    assert gahp.driver.cancel(job_id) == (0, "No error")


def test_kueue_preemption_under_a_queue_hold_is_held(sim: Any, make_gahp: Any,
                                                     tmp_path: Path) -> None:
    sim.require_sim("runs the sim's Kueue stand-in")
    sim.config.kueue_queues = {"lq-a": {"pods": "1"}}
    queues = tmp_path / "queues.yaml"
    queues.write_text("queues:\n  kq: {kueueQueue: lq-a, disruptionPolicy: hold}\n")
    gahp = make_gahp(QUEUE_CONFIG=str(queues))      # the knob stays recreate
    creates = _creates(gahp)
    job_id = gahp.submit("dis_kueue_1.0", **sleeps(), Queue="kq")
    gahp.wait_status(job_id, {RUNNING})
    (victim,) = _pods_of(gahp, job_id)
    gahp.sim.kueue_preempt("default", victim["metadata"]["name"])
    seen = _answers_until(gahp, job_id, HELD)
    assert not {COMPLETED, REMOVED} & set(seen), seen
    _, ad = gahp.status(job_id)
    assert ad.eval("HoldReasonCode") == 26
    assert "Kueue" in ad.eval("HoldReason"), ad
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the preempted pod to go")
    assert _creates(gahp) == creates + 1


def test_pod_deleted_while_running_and_kgahp_down_is_removed_never_completed(
        make_gahp: Any) -> None:
    gahp = make_gahp()
    job_id = gahp.submit("dis_down_run_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    gahp.driver.kill()
    (pod,) = _pods_of(gahp, job_id)
    name = pod["metadata"]["name"]
    _core(gahp).delete_namespaced_pod(name, "default", grace_period_seconds=1)
    wait_until(lambda: (_core(gahp).read_namespaced_pod(name, "default").status.phase
                        in ("Succeeded", "Failed")), 30, "the kubelet to stop it")
    gahp.start()
    status, ad = gahp.wait_status(job_id, lambda s: s not in (IDLE, RUNNING), timeout=60)
    assert status == REMOVED, ad
    assert "ExitCode" not in ad
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the pod to go (finalizer released)")


def test_cancel_leaves_no_pod_secret_or_finalizer(make_gahp: Any) -> None:
    gahp = make_gahp(TRANSFER_MODE="api")
    (gahp.iwd / "in.txt").write_text("input\n")
    job_id = gahp.submit("dis_cancel_1.0", **sleeps(), TransferInput="in.txt")
    gahp.wait_status(job_id, {RUNNING})
    assert _pods_of(gahp, job_id)[0]["metadata"]["finalizers"] == [FINALIZER]
    gahp.driver.kill()                              # a cancel from a fresh instance
    gahp.start()
    assert gahp.driver.cancel(job_id) == (0, "No error")
    wait_until(lambda: not managed_objects(gahp.sim, "pods")
               and not managed_objects(gahp.sim, "secrets"), 30, "nothing left")
    assert gahp.status(job_id)[0] == REMOVED


def test_sweeper_frees_a_pod_whose_job_kgahp_no_longer_tracks(make_gahp: Any) -> None:
    gahp = make_gahp()
    job_id = gahp.submit("dis_sweep_1.0", **sleeps())
    gahp.wait_status(job_id, {RUNNING})
    gahp.driver.kill()
    for path in gahp.state.iterdir():               # the store is lost
        if path.is_file():
            path.unlink()
    (pod,) = _pods_of(gahp, job_id)
    name = pod["metadata"]["name"]
    _core(gahp).delete_namespaced_pod(name, "default", grace_period_seconds=1)
    time.sleep(3)
    assert _pods_of(gahp, job_id), "the finalizer holds the pod while nobody looks"
    gahp.start()
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the sweeper to free the pod")


def test_under_remove_a_start_no_answer_showed_is_shown_once_before_idle(
        make_gahp: Any) -> None:
    """The job ran and was evicted between two polls: the CE counts a start only on a Running
    answer and removes only a job Idle after a start, so kgahp shows Running once, then Idle."""
    gahp = make_gahp(DISRUPTION_POLICY="remove")
    job_id = gahp.submit("dis_remove_unseen_1.0", **sleeps())
    wait_until(lambda: any(p.get("status", {}).get("phase") == "Running"
                           for p in _pods_of(gahp, job_id)), 30, "the pod to run")
    time.sleep(1.0)                                 # the reconcile has seen it run
    _evict(gahp, job_id)
    wait_until(lambda: not _pods_of(gahp, job_id), 30, "the evicted pod to go")
    time.sleep(0.5)
    answers = [gahp.status(job_id)[0] for _ in range(3)]
    assert answers == [RUNNING, IDLE, IDLE], answers
