"""Who does what on which thread: the watch thread never waits for the store, and a status
answer never writes it. Real threads, the real cache and store, the simulated cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import classad2
import pytest
from harness import sim_service

from kgahp.app import build_service
from kgahp.config import settings_from_mapping
from kgahp.kube.api import Kube
from kgahp.kube.connect import api_client
from kgahp.model import COMPLETED, IDLE, REMOVED, RUNNING, JobState
from kgahp.podspec import names
from kgahp.service import Service
from kgahp.store import JobStore

NS = "default"
WRITES = ("record_submit", "update", "record_final", "import_record", "purge")


class Watched:
    """Wraps the store's methods: each call notes its thread; writes may be made slow."""

    def __init__(self, store: JobStore, write_delay: float = 0.0,
                 read_delay: float = 0.0) -> None:
        self.calls: list[tuple[str, str]] = []   # (method, thread name)
        self.lock = threading.Lock()
        self.in_status = threading.local()
        self.status_writes: list[str] = []
        for name in (*WRITES, "get"):
            original = getattr(store, name)
            delay = read_delay if name == "get" else write_delay
            setattr(store, name, self._wrap(name, original, delay))

    def _wrap(self, name: str, fn: Callable[..., Any], delay: float) -> Callable[..., Any]:
        def wrapped(*args: Any, **kw: Any) -> Any:
            with self.lock:
                self.calls.append((name, threading.current_thread().name))
                if name in WRITES and getattr(self.in_status, "on", False):
                    self.status_writes.append(name)
            if delay:
                time.sleep(delay)
            return fn(*args, **kw)
        return wrapped


def _service(sim_kubeconfig: str, tmp_path: Path, start: bool) -> Service:
    service: Service = sim_service(sim_kubeconfig, tmp_path / "state", start=start)
    return service


@pytest.fixture
def started(sim: Any, sim_kubeconfig: str, tmp_path: Path) -> Iterator[Service]:
    sim.require_sim()
    service = _service(sim_kubeconfig, tmp_path, start=True)
    assert service.cache.wait_synced(10)
    try:
        yield service
    finally:
        service.close(secrets_deadline=0)
        service.store.close()


def _pod(service: Service, job: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": names.pod_name(job, 0), "labels": {
                **service.instance_labels, names.LABEL_JOB: job, names.LABEL_ATTEMPT: "0"}},
            "spec": {"restartPolicy": "Never", "nodeSelector": {"kgahp-test": "nowhere"},
                     "containers": [{"name": "job", "image": "busybox:1.36"}]}}


def test_the_watch_keeps_consuming_events_while_the_store_is_slow(started: Service) -> None:
    service = started
    for i in range(6):   # jobs the store knows: their pods' events call for store writes
        service.store.record_submit(f"slow-{i}", NS, 0, "[]")
    watched = Watched(service.store, write_delay=1.0, read_delay=1.0)
    t0 = time.monotonic()
    for i in range(6):
        service.kube.create_pod(NS, _pod(service, f"slow-{i}"))
    deadline = t0 + 3.0   # six events behind one-second store calls would take 6 s and more
    while not all(service.cache.get(NS, names.pod_name(f"slow-{i}", 0)) for i in range(6)):
        assert time.monotonic() < deadline, "the watch fell behind the slow store"
        time.sleep(0.02)

    def calls_on(prefix: str) -> list[tuple[str, str]]:
        with watched.lock:
            return [c for c in watched.calls if c[1].startswith(prefix)]

    # a pending pod's events wait for the batch period (reconciler.EVENT_BATCH_SECONDS)
    deadline = time.monotonic() + 10.0
    while not calls_on("reconcile-"):
        assert time.monotonic() < deadline, "the reconcile workers never read the store"
        time.sleep(0.05)
    assert calls_on("watch-") == []


def test_status_answers_never_write_the_store(sim: Any, sim_kubeconfig: str,
                                              tmp_path: Path) -> None:
    sim.require_sim()
    service = _service(sim_kubeconfig, tmp_path, start=False)
    watched = Watched(service.store)
    iwd = tmp_path / "iwd"
    iwd.mkdir()

    def status(job_id: str) -> int:
        watched.in_status.on = True
        try:
            code, msg, state, _ = service.status(job_id)
        finally:
            watched.in_status.on = False
        assert code == 0, msg
        return state

    def submit(job_dir: str) -> str:
        ad = repr(classad2.ClassAd({
            "Cmd": "/bin/sleep", "Arguments": "600", "Iwd": str(iwd), "JobDirectory": job_dir,
            "In": "/dev/null", "RequestMemory": 64, "StageCmd": False}))
        code, msg, job_id = service.submit(ad)
        assert code == 0 and job_id, msg
        return job_id

    def put(job: str, **status: Any) -> None:
        pod = service.cache.get(NS, names.pod_name(job, 0))
        assert pod is not None
        pod = {**pod, "metadata": {**pod["metadata"], "resourceVersion": str(10**9 + len(
            watched.calls))}, "status": status}
        service.cache.note(pod)

    try:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # running, not yet recorded as started
        running = submit("/spool/running")
        job = running.split("/")[2]
        put(job, phase="Running", containerStatuses=[
            {"name": "job", "state": {"running": {"startedAt": now}}}])
        assert status(running) == RUNNING
        assert service.reconciler.wait_idle(10)
        rec = service.store.get(job)
        assert rec is not None and rec.started      # ... recorded by the reconcile instead

        # a completed result, answered: RUNNING once, then COMPLETED, marked reported later
        done = submit("/spool/done")
        job = done.split("/")[2]
        service.store.record_final(job, 0, JobState(COMPLETED, exit_code=0))
        answers = [status(done) for _ in range(3)]
        assert answers == [RUNNING, COMPLETED, COMPLETED]
        assert service.reconciler.wait_idle(10)
        rec = service.store.get(job)
        assert rec is not None and rec.reported

        # gone after it started (vanished): answered REMOVED, recorded by the reconcile
        gone = submit("/spool/gone")
        job = gone.split("/")[2]
        service.store.update(job, started=True, submitted_at=time.time() - 3600)
        pod = service.cache.get(NS, names.pod_name(job, 0))
        assert pod is not None
        service.kube.delete_pod(NS, names.pod_name(job, 0), grace_seconds=0)
        service.cache._drop(pod)
        service.cache._synced[NS].set()   # as after the first list: the pod is gone
        answer = status(gone)
        assert service.reconciler.wait_idle(10)
        rec = service.store.get(job)
        assert answer == REMOVED
        assert rec is not None and rec.final is not None and rec.final.job_status == REMOVED
        assert status(gone) == REMOVED
    finally:
        service.reconciler.wait_idle(10)
        service.close(secrets_deadline=0)
        service.store.close()
    assert watched.status_writes == []
    # the check itself works: a write made while a status is answered is seen
    watched.in_status.on = True
    service.store.update("nobody", reported=True)
    assert watched.status_writes == ["update"]


def test_a_burst_of_finalizer_releases_does_not_hold_up_the_answers(
        sim: Any, sim_kubeconfig: str, tmp_path: Path) -> None:
    """Pods that end together each need one rate-limited PATCH (the tracking finalizer's
    removal) after their result is recorded. Those PATCHes must queue on their own: on the
    reconcile workers they held every worker in the rate limiter, and the later jobs were
    answered COMPLETED only at the QPS (the scale benchmark's 10,000 pods: 20 a second)."""
    sim.require_sim()
    jobs = [f"burst-{i}" for i in range(12)]
    settings = settings_from_mapping({
        "KUBECONFIG": sim_kubeconfig, "STATE_DIR": str(tmp_path / "state"),
        "TRANSFER_MODE": "none", "QPS": "2", "BURST": "1", "POD_RETENTION": "3600"},
        user="tester")
    service = build_service(settings, start=True)
    unpaced = Kube(api_client(settings.kube), replace(settings.kube, qps=0))
    try:
        assert service.cache.wait_synced(10)
        for job in jobs:   # created by someone else's client: kgahp's own QPS is for its writes
            service.store.record_submit(job, NS, 0, "[]")
            pod = _pod(service, job)
            del pod["spec"]["nodeSelector"]
            pod["metadata"]["finalizers"] = [names.FINALIZER_COLLECT]
            pod["spec"]["containers"][0]["image"] = "sim.invalid/ok:2s"
            unpaced.create_pod(NS, pod)
        answered: set[str] = set()
        deadline = time.monotonic() + 30
        while len(answered) < len(jobs):
            assert time.monotonic() < deadline, f"answered COMPLETED: {sorted(answered)}"
            for job in jobs:
                code, msg, state, _ = service.status(f"kubernetes/{NS}/{job}")
                assert code == 0, msg
                if state == COMPLETED:
                    answered.add(job)
            time.sleep(0.05)
        # at 2 a second the twelve removals take about 6 s; behind them on the reconcile
        # workers, the last answer came after at least eight
        released = sim.stats.count(verb="patch", resource="pods")
        assert released <= 4, f"{released} finalizer removals went before the last answer"
        assert service.reconciler.wait_idle(30)
        for job in jobs:   # and every removal still happens
            ended = service.cache.get(NS, names.pod_name(job, 0))
            assert ended is not None and names.FINALIZER_COLLECT not in (
                ended["metadata"].get("finalizers") or ())
        assert sim.stats.count(verb="patch", resource="pods") == len(jobs)
    finally:
        service.close(secrets_deadline=0)
        service.store.close()


@pytest.mark.parametrize("freeze", [False, True])
def test_the_gahp_freezes_its_startup_heap_and_nothing_else_does(
        sim: Any, sim_kubeconfig: str, tmp_path: Path, freeze: bool) -> None:
    """The GAHP process leaves what its start made (~50,000 objects) out of every full garbage
    collection; a test or a tool building a service in its own process keeps its heap as is."""
    import gc

    from kgahp.app import StartingService

    settings = settings_from_mapping({
        "KUBECONFIG": sim_kubeconfig, "STATE_DIR": str(tmp_path / "state"),
        "TRANSFER_MODE": "none", "QPS": "0"}, user="tester")
    gc.unfreeze()
    handlers = StartingService(settings, freeze_heap=freeze)
    try:
        assert handlers.service() is not None
        assert (gc.get_freeze_count() > 10_000) is freeze
    finally:
        gc.unfreeze()
        handlers.close()


def test_status_now_answers_from_memory_or_declines_having_done_nothing(
        sim: Any, sim_kubeconfig: str, tmp_path: Path) -> None:
    """`status_now` (what the protocol thread answers itself) gives what `status` gives when
    memory holds the answer, without an API request or a store write; where `status` would wait
    for the cache's first list or read the API it declines (None) and has asked nothing."""
    sim.require_sim()
    service = _service(sim_kubeconfig, tmp_path, start=False)   # its cache never lists
    try:
        iwd = tmp_path / "iwd"
        iwd.mkdir()
        ad = repr(classad2.ClassAd({
            "Cmd": "/bin/sleep", "Arguments": "600", "Iwd": str(iwd),
            "JobDirectory": "/spool/now-1", "In": "/dev/null", "RequestMemory": 64,
            "StageCmd": False}))
        code, msg, job_id = service.submit(ad)
        assert code == 0 and job_id, msg
        service.store.record_submit("ghost", NS, 0, "[]")     # known, its pod not yet listed
        watched = Watched(service.store)
        watched.in_status.on = True
        before = service.kube.requests
        answer = service.status_now(job_id)                   # its created pod was noted
        assert service.status_now(f"kubernetes/{NS}/ghost") is None       # would wait
        assert service.status_now(f"kubernetes/{NS}/never-submitted") is None  # would read
        assert service.kube.requests == before
        assert watched.status_writes == []
        watched.in_status.on = False
        assert answer is not None and answer == service.status(job_id)
        assert answer[0] == 0 and answer[2] == IDLE
        assert service.kube.requests == before                # both from the cache
        assert service.status(f"kubernetes/{NS}/never-submitted")[2] == REMOVED
        assert service.kube.requests == before + 1            # the read status_now declined
    finally:
        service.close(secrets_deadline=0)
        service.store.close()


def test_a_graceful_exit_finishes_the_reconciles_already_queued(started: Service,
                                                                 tmp_path: Path) -> None:
    """Six final answers were given just before the GAHP is told to exit; each job's reconcile,
    queued to record that its answer went out, runs before the exit (with slow store writes,
    most were still queued), so the next GAHP has nothing to redo."""
    service = started
    iwd = tmp_path / "iwd"
    iwd.mkdir()
    jobs: list[tuple[str, str]] = []
    for i in range(6):
        ad = repr(classad2.ClassAd({
            "Cmd": "/bin/sleep", "Arguments": "600", "Iwd": str(iwd),
            "JobDirectory": f"/spool/drain-{i}", "In": "/dev/null", "RequestMemory": 64,
            "StageCmd": False}))
        code, msg, job_id = service.submit(ad)
        assert code == 0 and job_id, msg
        jobs.append((job_id, job_id.split("/")[2]))
    assert service.reconciler.wait_idle(10)
    for _, job in jobs:
        service.store.record_final(job, 0, JobState(COMPLETED, exit_code=0))
    Watched(service.store, write_delay=0.2)
    for job_id, _ in jobs:
        assert [service.status(job_id)[2] for _ in range(2)] == [RUNNING, COMPLETED]
    service.close(secrets_deadline=0)
    unreported = [job for _, job in jobs if not (rec := service.store.get(job)) or not rec.reported]
    assert unreported == []


def test_fifty_jobs_in_flight_seldom_share_a_job_lock(sim_kubeconfig: str,
                                                      tmp_path: Path) -> None:
    """Two jobs whose names hash to the same stripe wait for each other's submit. With the
    gridmanager's 50 requests in flight nearly all must be able to run at once: 64 stripes let
    about 35 through, 1024 about 49. (Python salts str hashes per process; 42 of 50 fails
    with odds below one in a million at 1024 stripes.)"""
    service = _service(sim_kubeconfig, tmp_path, start=False)
    try:
        jobs = [names.job_base_name(f"home_bl_10.0.0.1_9618_alice_ce_{i}.0_1795270358",
                                    service.settings.pod.pod_name_prefix) for i in range(50)]
        assert len(set(jobs)) == 50
        locks = {id(service.actions.lock_for(job)) for job in jobs}
        assert len(locks) >= 42
        assert service.actions.lock_for(jobs[0]) is service.actions.lock_for(jobs[0])
    finally:
        service.store.close()
