"""Issue 12's rules below the protocol: one final answer per attempt (the store refuses a
second, raced by real threads), the collect worker against the watch's DELETED handler, and the
default instance identity."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from kgahp.app import build_service
from kgahp.config import default_instance, settings_from_mapping
from kgahp.model import COMPLETED, REMOVED, RUNNING, JobState
from kgahp.podspec import names
from kgahp.store import JobStore

FOUR = JobState(COMPLETED, exit_by_signal=True, exit_signal=15)
THREE = JobState(REMOVED, remove_reason="deleted by someone else")


def test_the_first_final_is_the_answer_and_survives_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "jobs.sqlite")
    store = JobStore(path)
    store.record_submit("j", "ns", 0, "[]")
    assert store.record_final("j", 0, THREE) is True
    assert store.record_final("j", 0, FOUR) is False
    assert store.record_final("j", 1, FOUR) is False          # not this attempt
    rec = store.get("j")
    assert rec is not None and rec.final == THREE
    store.close()
    again = JobStore(path)
    rec = again.get("j")
    assert rec is not None and rec.final == THREE
    again.record_submit("j", "ns", 1, "[]")                     # a new attempt starts clean
    assert again.record_final("j", 1, FOUR) is True
    rec = again.get("j")
    assert rec is not None and rec.final == FOUR


def test_two_writers_racing_never_change_the_answer(tmp_path: Path) -> None:
    """Real threads released together, 200 times: exactly one writer wins each race, and a
    reader polling all the while sees no answer or the winner's, never the loser's."""
    store = JobStore(str(tmp_path / "jobs.sqlite"))
    for round_ in range(200):
        job = f"job-{round_}"
        store.record_submit(job, "ns", 0, "[]")
        gate = threading.Barrier(3)
        won: dict[str, bool] = {}
        seen: list[Any] = []
        stop = threading.Event()

        def write(name: str, state: JobState, job: str = job,
                  gate: threading.Barrier = gate, won: dict[str, bool] = won) -> None:
            gate.wait()
            won[name] = store.record_final(job, 0, state)

        def read(job: str = job, gate: threading.Barrier = gate, seen: list[Any] = seen,
                 stop: threading.Event = stop) -> None:
            gate.wait()
            while not stop.is_set():
                rec = store.get(job)
                seen.append(rec.final if rec else None)

        threads = [threading.Thread(target=write, args=("collect", FOUR)),
                   threading.Thread(target=write, args=("deleted", THREE)),
                   threading.Thread(target=read)]
        for t in threads:
            t.start()
        for t in threads[:2]:
            t.join()
        stop.set()
        threads[2].join()
        assert sorted(won.values()) == [False, True], won
        winner = FOUR if won["collect"] else THREE
        rec = store.get(job)
        assert rec is not None and rec.final == winner
        assert {s for s in seen if s is not None} <= {winner}


def _graceful_deleted_pod(job: str, attempt: int) -> dict:
    """The last state of a pod kubectl deleted: stopped by SIGTERM, grace 0 (23d2's DELETED)."""
    return {
        "metadata": {"namespace": "default", "name": names.pod_name(job, attempt),
                     "labels": {names.LABEL_JOB: job, names.LABEL_ATTEMPT: str(attempt)},
                     "deletionTimestamp": "2026-12-01T22:41:16Z",
                     "deletionGracePeriodSeconds": 0},
        "spec": {"nodeName": "sim-node-1", "containers": [{"name": "job", "image": "x"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "job", "state": {
            "terminated": {"exitCode": 143, "reason": "Error",
                           "startedAt": "2026-12-01T22:41:11Z",
                           "finishedAt": "2026-12-01T22:41:16Z"}}}]},
    }


def test_collect_worker_and_deleted_handler_race_to_one_answer(sim_kubeconfig: str,
                                                               tmp_path: Path) -> None:
    """The collect (a worker thread) and the DELETED event (the watch thread) of one attempt,
    run together by real threads, while status is asked all the time: one final answer is
    recorded, and every final status answer is that one."""
    settings = settings_from_mapping({"KUBECONFIG": sim_kubeconfig,
                                      "STATE_DIR": str(tmp_path / "state")}, user="tester")
    service = build_service(settings, start=False)
    try:
        for round_ in range(40):
            job = f"kg-race-{round_}"
            job_id = f"kubernetes/default/{job}"
            service.store.record_submit(job, "default", 0, "[]")
            service.store.update(job, started=True)
            pod = _graceful_deleted_pod(job, 0)
            gate = threading.Barrier(3)
            answers: list[int] = []
            stop = threading.Event()

            def collect(pod: dict = pod, job: str = job, gate: threading.Barrier = gate) -> None:
                gate.wait()
                service.reconciler._collect(pod, job, FOUR)

            def deleted(pod: dict = pod, job: str = job, gate: threading.Barrier = gate) -> None:
                gate.wait()
                service.reconciler.on_pod_event("DELETED", pod)   # notes the pod's last state
                service.reconciler.reconcile("default", job)  # ... which the reconcile judges

            def poll(job_id: str = job_id, gate: threading.Barrier = gate,
                     answers: list[int] = answers, stop: threading.Event = stop) -> None:
                gate.wait()
                while not stop.is_set():
                    rec = service.store.get(job_id.split("/")[2])
                    if rec is not None and rec.final is not None:
                        answers.append(service.status(job_id)[2])

            threads = [threading.Thread(target=f) for f in (collect, deleted, poll)]
            for t in threads:
                t.start()
            for t in threads[:2]:
                t.join()
            stop.set()
            threads[2].join()
            rec = service.store.get(job)
            assert rec is not None and rec.final is not None
            final = rec.final.job_status
            assert final in (COMPLETED, REMOVED)
            # every final answer is the recorded one; a completion may be preceded by RUNNING
            # (the gridmanager must see a start), never followed by it
            finals = [a for a in answers if a != RUNNING]
            assert set(finals) <= {final}, answers
            if RUNNING in answers:
                assert final == COMPLETED and answers[:answers.count(RUNNING)] == [RUNNING] * \
                    answers.count(RUNNING), answers
            assert service.status(job_id)[2] in (final, RUNNING)
            assert service.status(job_id)[2] == final
    finally:
        service.reconciler.wait_idle(10)    # the Secret deletions, before the sim goes
        service.close(secrets_deadline=0)
        service.store.close()


@pytest.mark.parametrize("user", ["alice", "a" * 80, "ünïcode user", ""])
def test_default_instance_is_a_stable_label_per_owner_and_schedd(user: str) -> None:
    a = default_instance(user, "schedd-a.example.org")
    b = default_instance(user, "schedd-b.example.org")
    assert a != b
    assert a == default_instance(user, "schedd-a.example.org")    # stable across restarts
    for value in (a, b):
        assert names.is_label_value(value) and len(value) <= 63
    if user.isalnum():
        assert a.startswith(user[:50])
    assert default_instance("alice", "") == "alice"               # no schedd: the old default


def test_kgahp_instance_overrides_and_there_is_no_legacy_then() -> None:
    fixed = settings_from_mapping({"INSTANCE": "site-ce"}, user="alice", schedd="s")
    assert fixed.instance == "site-ce" and fixed.legacy_instance is None
    derived = settings_from_mapping({}, user="alice", schedd="s")
    assert derived.instance.startswith("alice-") and derived.legacy_instance == "alice"
