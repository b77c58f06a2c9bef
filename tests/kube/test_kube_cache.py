"""The watch-fed pod cache against the simulated cluster: list once, then follow watches from
the returned resourceVersion (bookmarks keep it fresh), relist only on 410 or the periodic
resync, and deliver every change to listeners."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from kubernetes import client

from kgahp.config import KubeSettings
from kgahp.kube.api import Kube
from kgahp.kube.cache import PodCache

SELECTOR = "app.kubernetes.io/managed-by=kgahp"
JOB = "kgahp.htcondor.org/job"


def _pod(name: str, job: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kgahp",
                                                   JOB: job}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "job", "image": "sim.invalid/sleep"}]}}


def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _cache(sim: Any, **kw: Any) -> tuple[PodCache, Kube]:
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    return PodCache(kube, ["default"], SELECTOR, job_label=JOB, **kw), kube


def test_watch_resumes_from_its_version_without_relisting(sim):
    sim.require_sim()
    cache, kube = _cache(sim, resync_interval=3600, watch_timeout=1)
    events: list[str] = []
    cache.add_listener(lambda kind, pod: events.append(kind))
    kube.create_pod("default", _pod("early-0", "early"))
    cache.start()
    try:
        assert cache.wait_synced(10)
        assert [p["metadata"]["name"] for p in cache.pods_for_job("default", "early")] == \
            ["early-0"]
        time.sleep(2.5)                      # several watch streams end and are resumed
        kube.create_pod("default", _pod("late-0", "late"))
        _until(lambda: cache.get("default", "late-0") is not None)
        assert sim.stats.count(verb="list", resource="pods") == 1   # only the first list
        assert sim.stats.count(verb="watch", resource="pods") >= 2
        assert "SYNC" in events and "ADDED" in events
    finally:
        cache.stop()


def test_periodic_resync_relists_and_reports_what_the_watch_missed(sim):
    sim.require_sim()
    cache, kube = _cache(sim, resync_interval=0.5, watch_timeout=1)
    gone = threading.Event()
    cache.add_listener(lambda kind, pod: kind == "DELETED" and gone.set())
    kube.create_pod("default", _pod("a-0", "a"))
    cache.start()
    try:
        assert cache.wait_synced(10)
        _until(lambda: sim.stats.count(verb="list", resource="pods") >= 2, timeout=10)
        core = client.CoreV1Api(sim.api_client())
        core.delete_namespaced_pod("a-0", "default", grace_period_seconds=0)
        assert gone.wait(10)
        assert cache.get("default", "a-0") is None
        assert cache.pods_for_job("default", "a") == []
    finally:
        cache.stop()


def test_compaction_forces_a_relist_and_the_cache_stays_right(sim):
    sim.require_sim()
    cache, kube = _cache(sim, resync_interval=3600, watch_timeout=1)
    cache.start()
    try:
        assert cache.wait_synced(10)
        lists = sim.stats.count(verb="list", resource="pods")
        sim.compact()                        # every older resourceVersion now gets 410
        # Nothing changes until the watch comes back (watch_timeout=1) from its old
        # resourceVersion: a pod created now would arrive on the open watch and move that
        # resourceVersion past the compaction, and no 410 (so no relist) would follow.
        _until(lambda: sim.stats.count(verb="list", resource="pods") > lists)
        kube.create_pod("default", _pod("b-0", "b"))
        _until(lambda: cache.get("default", "b-0") is not None)
    finally:
        cache.stop()


def test_cached_pods_are_slim(sim):
    sim.require_sim()
    cache, kube = _cache(sim)
    kube.create_pod("default", _pod("c-0", "c"))
    cache.start()
    try:
        assert cache.wait_synced(10)
        pod = cache.get("default", "c-0")
        assert pod is not None
        assert "managedFields" not in pod["metadata"]
        assert set(pod["spec"]["containers"][0]) <= {"name", "image", "resources"}
        assert pod["metadata"]["labels"][JOB] == "c"
    finally:
        cache.stop()


class _SlowListKube(Kube):
    """The real API, with a pause between the list's answer and the cache using it: the window
    in which kgahp may create (and note) a pod that the list's snapshot cannot contain."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.listed = threading.Event()
        self.proceed = threading.Event()

    def list_pods(self, *args: Any, **kw: Any) -> Any:
        answer = super().list_pods(*args, **kw)
        self.listed.set()
        self.proceed.wait(10)
        return answer


def test_a_relist_keeps_a_pod_created_after_its_snapshot(sim):
    """Regression (CI, crash campaign): the first list after a restart took its snapshot, kgahp
    created a pod for a resubmitted job and noted it, then the list replaced the cache and
    reported that live pod DELETED, which made a second pod for the job."""
    sim.require_sim()
    kube = _SlowListKube(sim.api_client(), KubeSettings(qps=0))
    cache = PodCache(kube, ["default"], SELECTOR, job_label=JOB, resync_interval=3600,
                     watch_timeout=5)
    events: list[tuple[str, str]] = []
    cache.add_listener(lambda kind, pod: events.append((kind, pod["metadata"]["name"])))
    cache.start()
    try:
        assert kube.listed.wait(10)
        created = kube.create_pod("default", _pod("fresh-0", "fresh"))
        cache.note(created)
        kube.proceed.set()
        assert cache.wait_synced(10)
        time.sleep(0.3)     # the watch from the list's version delivers fresh-0's ADDED
        assert cache.get("default", "fresh-0") is not None
        assert ("DELETED", "fresh-0") not in events
        kube.delete_pod("default", "fresh-0", grace_seconds=0)
        _until(lambda: cache.get("default", "fresh-0") is None)   # a real delete still shows
    finally:
        kube.proceed.set()
        cache.stop()


def test_a_noted_pod_still_reaches_listeners_and_older_versions_never_replace_newer(sim):
    """A pod noted from its create answer is announced when its ADDED event comes (same
    version), and a version older than the cached one is ignored."""
    sim.require_sim()
    cache, kube = _cache(sim, resync_interval=3600)
    seen: list[tuple[str, str]] = []
    cache.add_listener(lambda kind, pod: seen.append((kind, pod["metadata"]["name"])))
    cache.start()
    try:
        assert cache.wait_synced(10)
        created = kube.create_pod("default", _pod("noted-0", "noted"))
        cache.note(created)
        _until(lambda: ("ADDED", "noted-0") in seen)
        newer = dict(created, metadata={**created["metadata"], "resourceVersion": str(
            int(created["metadata"]["resourceVersion"]) + 1000)})
        cache.note(newer)
        cache.note(created)                  # older than the cached version: ignored
        got = cache.get("default", "noted-0")
        assert got is not None
        assert got["metadata"]["resourceVersion"] == newer["metadata"]["resourceVersion"]
        assert "managedFields" not in got["metadata"]
    finally:
        cache.stop()
