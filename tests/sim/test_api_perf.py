"""Throughput of the sim API, measured with the official client.

The rates are printed (run with -s) and bounded below by generous floors, so a regression
that makes the sim unusable for the 10,000-pod benchmarks fails here.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from kgahp_sim import SimCluster, SimConfig


@pytest.fixture
def fast_sim(tmp_path: Any) -> Any:
    config = SimConfig(workdir=str(tmp_path), run_processes=False, nodes=4, cpu="1000",
                       memory="4Ti")
    with SimCluster(config) as cluster:
        yield cluster


def _pod(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"perf-{i}", "labels": {"app": "perf"}},
            "spec": {"restartPolicy": "Never", "schedulerName": "perf-manual",
                     "containers": [{"name": "main", "image": "sim.invalid/sleep",
                                     "resources": {"requests": {"cpu": "100m",
                                                                "memory": "64Mi"}}}]}}


def test_creates_per_second_with_the_official_client(fast_sim):
    local = threading.local()

    def api() -> client.CoreV1Api:
        if not hasattr(local, "api"):
            local.api = client.CoreV1Api(fast_sim.api_client())
        return local.api

    total = 2000
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: api().list_namespaced_pod("default", limit=1), range(8)))
        started = time.monotonic()
        list(pool.map(lambda i: api().create_namespaced_pod("default", _pod(i)), range(total)))
        elapsed = time.monotonic() - started
    rate = total / elapsed
    print(f"\nsim: {total} pod creates from 8 client threads in {elapsed:.2f}s = {rate:.0f}/s")
    assert fast_sim.call(lambda: len(fast_sim.store.scan("pods", "default"))) == total
    assert rate > 150


def test_ten_thousand_pods_reach_several_watchers(fast_sim):
    total, watchers = 10_000, 3
    api = client.CoreV1Api(fast_sim.api_client())
    rv = api.list_namespaced_pod("default").metadata.resource_version
    counts = [0] * watchers

    def watch(slot: int) -> None:
        raw = client.CoreV1Api(fast_sim.api_client()).list_namespaced_pod(
            "default", watch=True, resource_version=rv, timeout_seconds=60,
            _preload_content=False)
        buffer = b""
        for chunk in raw.stream(65536):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            counts[slot] += sum(1 for line in lines if line.startswith(b'{"type":"ADDED"'))
            if counts[slot] >= total:
                raw.release_conn()
                return

    threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(watchers)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    started = time.monotonic()

    def create_all() -> None:
        for i in range(total):
            fast_sim.store.create("pods", "default", _pod(i))

    fast_sim.call(create_all)
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - started
    print(f"\nsim: {total} pods delivered to {watchers} watchers in {elapsed:.2f}s")
    assert counts == [total] * watchers
    listed = api.list_namespaced_pod("default", limit=500, _preload_content=False)
    page = json.loads(listed.data)
    assert len(page["items"]) == 500
    assert page["metadata"]["remainingItemCount"] == total - 500
