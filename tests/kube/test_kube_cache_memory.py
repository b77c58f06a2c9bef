"""What the pod cache costs at scale: a cached pod takes a bounded few KB (issue 16: 100,000
tracked jobs in ≤ 600 MB), a list is slimmed page by page rather than held whole, and a status
arriving before the cache is synced waits for its own namespace's list while that list moves."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from typing import Any, Callable, Optional

import orjson
import pytest

from kgahp import finalizers
from kgahp.config import KubeSettings, settings_from_mapping
from kgahp.finalizers import FinalizerKeeper
from kgahp.kube import jsonio
from kgahp.kube.api import Kube
from kgahp.kube.cache import PodCache, slim
from kgahp.model import COMPLETED, JobState
from kgahp.podspec.templates import load_templates
from kgahp.render import render_text
from kgahp.store import JobStore

SELECTOR = "app.kubernetes.io/managed-by=kgahp"
JOB = "kgahp.htcondor.org/job"
AD = ('[ Cmd = "/bin/sleep"; Arguments = "1000"; Iwd = "/tmp/iwd"; JobDirectory = '
      '"/tmp/iwd/job.42"; In = "/dev/null"; Out = "/tmp/iwd/job.42.out"; Err = '
      '"/tmp/iwd/job.42.err"; GridResource = "batch kubernetes"; RequestMemory = 64; '
      'StageCmd = false; KubernetesImage = "sim.invalid/sleep"; Owner = "bench" ]')


def _until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)
    return got


def _running_pod(sim: Any, kube: Kube) -> dict:
    """A pod as kgahp renders it, running, as the API server lists it."""
    settings = settings_from_mapping({"DEFAULT_IMAGE": "busybox:1.36"}, user="bench")
    pod = render_text(AD, settings, load_templates(settings.pod))
    kube.create_pod("default", pod)

    def running() -> Optional[dict]:
        items, _ = kube.list_pods("default", SELECTOR)
        return next((p for p in items if (p.get("status") or {}).get("phase") == "Running"),
                    None)
    found: dict = _until(running)
    return found


def test_a_cached_pod_costs_a_few_kb_and_reads_back_as_its_slim_dict(sim):
    """Measured: ~2.7 KB per realistic running pod (7.5 KB when each was kept as a slim dict)."""
    sim.require_sim()
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    full = _running_pod(sim, kube)
    raw = orjson.dumps(full)
    assert len(raw) > 5000     # the wrapper script, env, volumes: 7-8 KB of JSON
    count = 1000
    pods = []
    for i in range(count):
        pod = orjson.loads(raw)
        pod["metadata"]["name"] = f"kg-job-{i:06d}-0"
        pod["metadata"]["uid"] = f"{i:08d}-0000-4000-8000-000000000000"
        pod["metadata"]["resourceVersion"] = str(1000 + i)
        pod["metadata"]["labels"][JOB] = f"kg-job-{i:06d}"
        pods.append(orjson.dumps(pod))
    cache = PodCache(kube, ["default"], SELECTOR, job_label=JOB)
    gc.collect()
    tracemalloc.start()
    try:
        for data in pods:
            cache.note(orjson.loads(data))
        gc.collect()
        per_pod = tracemalloc.get_traced_memory()[0] / count
    finally:
        tracemalloc.stop()
    assert len(cache) == count
    assert per_pod < 4000, f"{per_pod:.0f} bytes per cached pod"
    # reads give the slim pod, each a copy of its own
    first = cache.get("default", "kg-job-000000-0")
    assert first == slim(orjson.loads(pods[0]))
    first["status"]["phase"] = "Failed"
    assert cache.pods_for_job("default", "kg-job-000000") == [slim(orjson.loads(pods[0]))]


def test_a_list_is_slimmed_page_by_page(sim):
    """The transform runs on each page as it arrives: the list never holds all full pods."""
    sim.require_sim()
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    kube.list_page_size = 2
    for i in range(5):
        kube.create_pod("default", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{i}", "labels": {"app.kubernetes.io/managed-by": "kgahp",
                                                       JOB: f"p{i}"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "job", "image": "sim.invalid/sleep"}]}})
    lists_before = sim.stats.count(verb="list", resource="pods")
    pages_seen: list[int] = []

    def transform(pod: dict) -> dict:
        pages_seen.append(sim.stats.count(verb="list", resource="pods") - lists_before)
        return {"slim": pod["metadata"]["name"]}

    items, rv = kube.list_pods("default", SELECTOR, transform=transform)
    assert sorted(i["slim"] for i in items) == [f"p-{i}" for i in range(5)]
    assert pages_seen == [1, 1, 2, 2, 3]
    assert rv


class _GatedKube(Kube):
    """The real API, with one namespace's list held back, and pods of another listed slowly
    (a pause after each), as a big namespace's list paced by QPS is."""

    def __init__(self, *args: Any, held: str, slow: str, pause: float, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.held, self.slow, self.pause = held, slow, pause
        self.release = threading.Event()

    def list_pods(self, namespace: str, *args: Any, **kw: Any) -> Any:
        if namespace == self.held:
            self.release.wait(30)
        transform = kw.get("transform")
        if namespace == self.slow and transform is not None:
            def paced(pod: dict) -> dict:
                time.sleep(self.pause)
                return transform(pod)   # type: ignore[no-any-return]
            kw["transform"] = paced
        return super().list_pods(namespace, *args, **kw)


def _namespace(kube: Kube, name: str) -> None:
    kube.request("POST", "/api/v1/namespaces",
                 body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
                 ).read()


def test_the_startup_wait_is_per_namespace_and_lasts_while_the_list_moves(sim):
    sim.require_sim()
    kube = _GatedKube(sim.api_client(), KubeSettings(qps=0), held="held", slow="slow",
                      pause=0.3)
    for ns in ("held", "slow"):
        _namespace(kube, ns)
    for i in range(8):
        kube.create_pod("slow", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"s-{i}", "labels": {"app.kubernetes.io/managed-by": "kgahp",
                                                       JOB: f"s{i}"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "job", "image": "sim.invalid/sleep"}]}})
    cache = PodCache(kube, ["default", "held", "slow"], SELECTOR, job_label=JOB,
                     resync_interval=3600)
    cache.start()
    try:
        # one namespace's list held back does not hold up another's answer
        t0 = time.monotonic()
        assert cache.wait_namespace_synced("default", stall=5.0, bound=10.0)
        assert time.monotonic() - t0 < 3.0
        assert not cache.is_synced("held")
        # a list that moves is waited for past the stall time (8 pods x 0.3 s = 2.4 s)...
        t0 = time.monotonic()
        assert cache.wait_namespace_synced("slow", stall=1.0, bound=20.0)
        assert time.monotonic() - t0 > 1.0
        assert len(cache.pods_for_job("slow", "s7")) == 1
        # ... one that does not move only for the stall time, and none beyond the bound
        t0 = time.monotonic()
        assert not cache.wait_namespace_synced("held", stall=0.5, bound=10.0)
        assert 0.4 < time.monotonic() - t0 < 3.0
        assert not cache.wait_namespace_synced("unknown", stall=0.5, bound=1.0)
    finally:
        kube.release.set()
        cache.stop()


def test_a_first_list_never_holds_more_than_its_packed_pods_and_one_page(sim):
    """The high-water mark of a list is what stays as RSS (the allocator keeps it): each pod is
    packed as its page arrives, so a namespace's list holds ~2.7 KB per pod until it is in,
    not a slim dict (7.5 KB; measured 175 -> 135 MB RSS at 10,000 jobs)."""
    sim.require_sim()
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    raw = orjson.dumps(_running_pod(sim, kube))
    count, page = 1000, 20

    def body(i: int) -> bytes:
        pod = orjson.loads(raw)
        pod["metadata"]["name"] = f"kg-job-{i:06d}-0"
        pod["metadata"]["resourceVersion"] = str(1000 + i)
        pod["metadata"]["labels"][JOB] = f"kg-job-{i:06d}"
        return orjson.dumps(pod)

    pages = [b"[" + b",".join(body(i) for i in range(start, start + page)) + b"]"
             for start in range(0, count, page)]
    stop = threading.Event()

    def lister(namespace: str, selector: str, *, retry: bool, transform: Any) -> Any:
        items: list[Any] = []
        for text in pages:     # as Kube.list_all: one page decoded at a time
            items.extend(map(transform, orjson.loads(text)))
        return items, "5000"

    def watcher(namespace: str, selector: str, rv: str, timeout: int) -> Any:
        stop.wait(30)
        return iter(())

    cache = PodCache(kube, ["default"], SELECTOR, job_label=JOB, lister=lister,
                     watcher=watcher, resync_interval=3600)
    gc.collect()
    tracemalloc.start()
    try:
        cache.start()
        assert cache.wait_synced(30)
        peak = tracemalloc.get_traced_memory()[1] / count
    finally:
        tracemalloc.stop()
        stop.set()
        cache.stop()
    assert len(cache) == count
    assert len(cache.pods_for_job("default", "kg-job-000999")) == 1
    assert peak < 5000, f"{peak:.0f} bytes per pod at the list's high-water mark"


def _noted_cache(kube: Kube, raw: bytes, count: int) -> PodCache:
    """A cache holding `count` copies of the pod `raw` (JSON), one job each."""
    cache = PodCache(kube, ["default"], SELECTOR, job_label=JOB,
                     summarize=finalizers.summarize)
    for i in range(count):
        pod = orjson.loads(raw)
        pod["metadata"]["name"] = f"kg-job-{i:06d}-0"
        pod["metadata"]["resourceVersion"] = str(1000 + i)
        pod["metadata"]["labels"][JOB] = f"kg-job-{i:06d}"
        cache.note(pod)
    return cache


def test_tracked_jobs_give_the_garbage_collector_nothing_to_walk(sim, tmp_path):
    """Each full collection walks every object the collector tracks, holding the GIL: at
    100,000 jobs a set per job in the cache's index and a record (and its result) per job in
    the store's mirror made 250,000 of them, collections of 60-180 ms, twenty of them while a
    restart loaded its state. Tuples of strings and numbers are not tracked."""
    sim.require_sim()
    count = 5000
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    raw = orjson.dumps(_running_pod(sim, kube))
    store = JobStore(str(tmp_path / "jobs.db"))
    gc.collect()
    before = len(gc.get_objects())
    cache = _noted_cache(kube, raw, count)
    for i in range(count):
        store.record_submit(f"kg-job-{i:06d}", "default", 0, AD)
        if i % 2:
            store.record_final(f"kg-job-{i:06d}", 0, JobState(COMPLETED, exit_code=0))
    gc.collect()
    gc.collect()    # a tuple holding a tuple is untracked once the inner one is
    added = len(gc.get_objects()) - before
    # before: 2.5 per job (12,500 here); what is left is the cache's and store's own few
    assert added < count // 20, f"{added} tracked objects for {count} jobs"
    # and the mirror still gives whole records, each a copy of its own
    rec = store.get("kg-job-000001")
    assert rec is not None and rec.final == JobState(COMPLETED, exit_code=0)
    rec.attempt = 7
    assert store.get("kg-job-000001").attempt == 0    # type: ignore[union-attr]
    assert [p["metadata"]["name"] for p in cache.pods_for_job("default", "kg-job-000003")] \
        == ["kg-job-000003-0"]
    store.close()


def test_the_finalizer_sweep_decodes_no_pod(sim, tmp_path, monkeypatch):
    """The sweeper looks at every cached pod every two minutes. Decoding them all first held
    every pod as a dict at once (~7 KB each: 700 MB at 100,000 jobs, and full collections grew
    to 0.7 s meanwhile); decoding them one at a time still took 0.7 s of CPU at 100,000 jobs.
    It reads what the cache keeps beside each pod instead."""
    sim.require_sim()
    count = 1000
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    cache = _noted_cache(kube, orjson.dumps(_running_pod(sim, kube)), count)
    store = JobStore(str(tmp_path / "jobs.db"))
    for i in range(0, count, 2):    # the even jobs are tracked and running: not due
        store.record_submit(f"kg-job-{i:06d}", "default", 0, "[]")
    asked: list[tuple[str, str]] = []
    keeper = FinalizerKeeper(kube, store, cache, lambda ns, job: asked.append((ns, job)))
    decoded: list[bytes] = []
    real_loads = jsonio.loads
    monkeypatch.setattr(jsonio, "loads", lambda data: decoded.append(data) or real_loads(data))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        keeper.sweep()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    # the odd jobs have no record, and their pods carry the finalizer: each is asked about
    assert asked == [("default", f"kg-job-{i:06d}") for i in range(1, count, 2)]
    assert decoded == []
    assert peak < 1_000_000, f"the sweep held {peak / 1e6:.1f} MB at once"
    store.close()


def test_a_finalizer_keeper_refuses_a_cache_that_keeps_no_summary(sim):
    """Built on a cache that keeps no summaries, the sweep would find nothing, silently."""
    sim.require_sim()
    kube = Kube(sim.api_client(), KubeSettings(qps=0))
    with pytest.raises(ValueError, match="summarize"):
        FinalizerKeeper(kube, None, PodCache(kube, ["default"], SELECTOR, job_label=JOB),  # type: ignore[arg-type]
                        lambda ns, job: None)
